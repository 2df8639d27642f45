"""Finding the run directory a verb's ``--run`` names (a path, or a name under ``--runs-dir``)."""

from __future__ import annotations

from pathlib import Path

from nas.cli import UsageError
from nas.rundir import RunDir


def resolve_run(run: str, runs_dir: str = "runs") -> RunDir:
    """The run ``run`` names: a run directory, else ``runs_dir/run``."""
    for path in (Path(run), Path(runs_dir) / run):
        if RunDir.is_run(path):
            return RunDir.open(path)
    raise UsageError(f"--run {run!r}: no run directory (no space.json) there or in {runs_dir}/")
