"""Registers the Hugging Face import (``nas train --from-hf``) and the export format ``"hf"``.

Imported by :mod:`search_spaces` when the plug-in loads; it imports neither torch nor
``transformers`` (the importer's module is imported on first use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas.export_formats import register_export_format
from nas.importers import ImportedModel, register_importer
from search_spaces.hf_export import HFFormat


def import_hf(source: str | Path | Any, **options: Any) -> ImportedModel:
    """:func:`search_spaces.hf_space.from_hf` as an importer: space, weights, vocabulary."""
    from search_spaces.hf_space import from_hf

    supernet = from_hf(source, **options)
    return ImportedModel(supernet.space, supernet.state_dict(), supernet.num_classes)


register_importer("hf", import_hf)
register_export_format(HFFormat())
