"""CLI progress bars: live on a terminal, sparse when written to a log file."""

from __future__ import annotations

import io

from nas.cli.progress import LOG_INTERVAL_S, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_into_a_log_file_refreshes_rarely() -> None:
    log = io.StringIO()
    with progress_bar(total=10_000, desc="layers", file=log) as bar:
        for _ in range(10_000):
            bar.update(1)
    assert bar.mininterval == LOG_INTERVAL_S
    # the first and the final state only: no redraw per update in a log
    assert 1 <= log.getvalue().count("layers") <= 3


def test_bar_on_a_terminal_keeps_tqdm_defaults() -> None:
    with progress_bar(total=3, desc="subnets", file=_Terminal()) as bar:
        bar.update(3)
    assert bar.mininterval < 1.0


def test_explicit_settings_win() -> None:
    with progress_bar(total=3, file=io.StringIO(), mininterval=0.5, disable=True) as bar:
        bar.update(3)
    assert bar.disable
