"""The Ray layer: the one place that imports ray (see ``local.py`` for starting it)."""
