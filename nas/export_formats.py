"""Export formats that plug-ins add to :func:`nas.export_subnet` (e.g. ``"hf"``).

A plug-in registers an :class:`ExportFormat`; ``export_subnet(..., formats=[name])`` calls
its :meth:`~ExportFormat.check` before any work (so an arch the format cannot hold fails
first) and its :meth:`~ExportFormat.write` into the export folder, whose files are then
checksummed in ``arch.json`` like the built-in ones. The framework never imports the
plug-in: this project's ``search_spaces`` registers ``"hf"`` (Hugging Face
``save_pretrained`` folders) when it loads.

Example:
    >>> register_export_format(MyFormat())           # in a plug-in module
    >>> nas.export_subnet(supernet, arch, "out", formats=["torch", "my_format"])
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any, Protocol

from nas.errors import ConfigError
from nas.registry import SPACE_PLUGINS, load_plugins
from nas.space import ArchConfig


class ExportFormat(Protocol):
    """One extra export format."""

    name: str

    def check(self, supernet: Any, arch: ArchConfig) -> None:
        """Raise a ``nas.errors`` error if ``arch`` of ``supernet`` cannot be written."""

    def write(self, supernet: Any, arch: ArchConfig, out_dir: Path) -> list[Path]:
        """Write ``arch`` under ``out_dir``; the files written (to checksum)."""


class ExportFormats:
    """The registered formats by name (one default instance: :data:`EXPORT_FORMATS`)."""

    def __init__(self) -> None:
        self._formats: dict[str, ExportFormat] = {}

    def register(self, fmt: ExportFormat) -> None:
        """Register ``fmt`` under ``fmt.name`` (again: replaces)."""
        self._formats[fmt.name] = fmt

    def names(self) -> list[str]:
        """Registered names, after loading the plug-ins."""
        load_plugins(SPACE_PLUGINS)
        return sorted(self._formats)

    def select(self, names: Collection[str], builtin: Collection[str]) -> list[ExportFormat]:
        """The registered formats among ``names``; a :class:`ConfigError` listing the allowed
        ones for a name neither built in nor registered."""
        extra = [n for n in names if n not in builtin]
        if not extra:
            return []
        known = self.names()
        unknown = sorted(set(extra) - set(known))
        if unknown:
            raise ConfigError(f"formats: unknown {unknown}; allowed values are "
                              f"{[*builtin, *known]}")
        return [self._formats[n] for n in dict.fromkeys(extra)]


EXPORT_FORMATS = ExportFormats()


def register_export_format(fmt: ExportFormat) -> None:
    """Register an export format with :data:`EXPORT_FORMATS`."""
    EXPORT_FORMATS.register(fmt)
