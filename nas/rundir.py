"""Run directories: one folder per run, every file written atomically.

Layout (see README): ``run.json``, ``space.json``, ``supernet/``, ``samples/``,
``predictors/``, ``search/<profile>/``, ``exports/<profile>/<arch_key>/``. Loaders refuse a
run whose space fingerprint differs from the space they are given.

Example:
    >>> run = RunDir.create("runs/demo", space)
    >>> run.write_json(run.path / "samples" / "meta.json", {"n": 10})
    >>> RunDir.open("runs/demo", space)        # raises on a space mismatch
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from nas.space import SearchSpace

SUBDIRS = ("supernet", "samples", "predictors", "search", "exports")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` via ``write(fileobj)`` into a temporary sibling, then rename it into place.

    A crash mid-write leaves the previous file intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON to ``path``."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file, with an error naming the file when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


class RunDir:
    """A run directory bound to one search space."""

    def __init__(self, path: str | Path, space: SearchSpace) -> None:
        self.path = Path(path)
        self.space = space

    @classmethod
    def create(cls, path: str | Path, space: SearchSpace, **info: Any) -> RunDir:
        """Create (or reuse, if its space matches) the run directory at ``path``."""
        path = Path(path)
        if (path / "space.json").exists():
            return cls.open(path, space)
        for sub in SUBDIRS:
            (path / sub).mkdir(parents=True, exist_ok=True)
        spec = {"fingerprint": space.fingerprint(), **space.to_spec()}
        atomic_write_json(path / "space.json", spec)
        atomic_write_json(path / "run.json", {"space": space.name, **info})
        return cls(path, space)

    @classmethod
    def open(cls, path: str | Path, space: SearchSpace) -> RunDir:
        """Open an existing run; raises ``ValueError`` if it was made for another space."""
        path = Path(path)
        spec = read_json(path / "space.json")
        if spec.get("fingerprint") != space.fingerprint():
            raise ValueError(
                f"{path}: run was made for space {spec.get('name')!r} "
                f"(fingerprint {spec.get('fingerprint')}), not {space.name!r} "
                f"(fingerprint {space.fingerprint()})"
            )
        return cls(path, space)

    @staticmethod
    def space_name(path: str | Path) -> str:
        """The name of the space a run was made for (to create it before :meth:`open`)."""
        return str(read_json(Path(path) / "space.json")["name"])

    def info(self) -> dict[str, Any]:
        """The contents of ``run.json``."""
        return dict(read_json(self.path / "run.json"))

    def update_info(self, **changes: Any) -> None:
        """Merge ``changes`` into ``run.json``."""
        atomic_write_json(self.path / "run.json", {**self.info(), **changes})

    def subdir(self, *parts: str) -> Path:
        """``path/parts...``, created if missing."""
        out = self.path.joinpath(*parts)
        out.mkdir(parents=True, exist_ok=True)
        return out
