"""Finding the run directory a verb's ``--run`` names (a path, or a name under ``--runs-dir``)."""

from __future__ import annotations

from pathlib import Path

from nas.cli import UsageError
from nas.rundir import RunDir, check_name, check_writable


def resolve_run(run: str, runs_dir: str = "runs", *, writable: bool = False) -> RunDir:
    """The run ``run`` names: a run directory, else ``runs_dir/run``; with ``writable``, a
    one-line :class:`~nas.errors.RunDirError` unless it can be written (checked first)."""
    for path in (Path(run), Path(runs_dir) / run):
        if _is_run(path):
            if writable:
                check_writable(path)
            return RunDir.open(path)
    raise UsageError(f"--run {run!r}: no run directory (no space.json) there or in {runs_dir}/")


def _is_run(path: Path) -> bool:
    """Whether ``path`` is a run directory (a name too long for the file system is not)."""
    try:
        return RunDir.is_run(path)
    except OSError:
        return False


def check_new_run(path: Path) -> Path:
    """Before a run is created or continued at ``path``: a usable name and a writable place
    (the run itself if it exists, else its nearest existing parent); one-line errors."""
    check_name("--run", path.name)
    existing = path
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    check_writable(existing, "run directory" if existing == path else "runs folder")
    return path


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def check_out_dir(path: Path, flag: str = "--out") -> Path:
    """``path`` if it is a folder (or can become one) that this process can write."""
    if _exists(path) and not path.is_dir():
        raise UsageError(f"{flag} {str(path)!r}: not a folder")
    existing = path
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {str(path)!r}: {existing} is not a folder")
    check_writable(existing, "output folder")
    return path


def check_report_dir(run: str) -> Path:
    """The folder ``nas report --run`` names: an existing, writable folder (a report is
    written from whatever steps a run has done, so ``space.json`` is not required)."""
    path = Path(run)
    try:
        is_dir = path.is_dir()
    except OSError:  # e.g. a name too long for the file system
        is_dir = False
    if not is_dir:
        raise UsageError(f"--run {run!r}: no such run directory")
    return check_writable(path)
