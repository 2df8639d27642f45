"""Progress bars for the CLI: live on a terminal, sparse in a log file.

tqdm redraws up to ten times a second; on a terminal that is one line, but redirected to a
file (``nas profile build ... > build.log 2>&1``) every redraw is kept. Here a bar on a
terminal refreshes as usual, and one that writes to a file or pipe refreshes at most every
``LOG_INTERVAL_S`` seconds.

Example:
    >>> with progress_bar(total=len(archs), desc="subnets") as bar:
    ...     bar.update(1)
"""

from __future__ import annotations

import sys
from typing import Any

LOG_INTERVAL_S = 30.0


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar on stderr (keyword arguments go to tqdm) that is sparse when not a terminal."""
    from tqdm import tqdm

    stream = kwargs.setdefault("file", sys.stderr)
    if not getattr(stream, "isatty", lambda: False)():
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
        kwargs.setdefault("maxinterval", 4 * LOG_INTERVAL_S)
    return tqdm(iterable, **kwargs)
