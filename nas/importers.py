"""Model importers that plug-ins register: a pretrained model becomes a space + weights.

An importer turns a source (e.g. a Hugging Face ``save_pretrained`` folder) into an
:class:`ImportedModel`: the registered space derived from it, the supernet's state dict with
the model's weights and the output count. ``nas train --from-hf PATH`` uses the importer
``"hf"`` that this project's ``search_spaces`` registers; the framework never imports it.

Example:
    >>> imported = import_model("hf", "models/my-gpt2")
    >>> nas.flow.train("runs/ft", imported.space, initial_state=imported.state,
    ...                supernet_options={"num_classes": imported.num_classes})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from nas.errors import ConfigError
from nas.registry import SPACE_PLUGINS, load_plugins
from nas.space import SearchSpace


@dataclass(frozen=True)
class ImportedModel:
    """What an importer returns."""

    space: SearchSpace
    state: Mapping[str, Any]
    num_classes: int


Importer = Callable[..., ImportedModel]


class Importers:
    """Importers by name (one default instance: :data:`IMPORTERS`)."""

    def __init__(self) -> None:
        self._importers: dict[str, Importer] = {}

    def register(self, name: str, importer: Importer) -> None:
        """Register ``importer`` as ``name`` (again: replaces)."""
        self._importers[name] = importer

    def get(self, name: str) -> Importer:
        """The importer ``name``; a :class:`ConfigError` listing the registered ones."""
        load_plugins(SPACE_PLUGINS)
        if name not in self._importers:
            raise ConfigError(f"no model importer {name!r}; registered: {sorted(self._importers)}")
        return self._importers[name]


IMPORTERS = Importers()


def register_importer(name: str, importer: Importer) -> None:
    """Register a model importer with :data:`IMPORTERS`."""
    IMPORTERS.register(name, importer)


def import_model(name: str, source: Any, **options: Any) -> ImportedModel:
    """Run importer ``name`` on ``source`` with ``options``."""
    return IMPORTERS.get(name)(source, **options)
