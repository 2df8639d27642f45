"""``active_width``: the one elastic width of a layer, checked against its ``max_width``.

Example:
    >>> class ElasticThing(ActiveWidth, nn.Module): ...   # sets max_width and _active
    >>> thing.active_width = 64                            # ConfigError past max_width
"""

from __future__ import annotations

from nas.elastic.conv import check_width


class ActiveWidth:
    """Mixin: an ``active_width`` property over ``max_width`` and ``_active`` (set by the
    layer's ``__init__``)."""

    max_width: int
    _active: int

    @property
    def active_width(self) -> int:
        """Width of the active configuration (what ``forward`` and ``export`` use)."""
        return self._active

    @active_width.setter
    def active_width(self, value: int) -> None:
        self._active = check_width("active_width", value, self.max_width)
