"""Run directories: one folder per run; the only place its layout is spelled.

Layout (see README): ``run.json``, ``space.json``, ``supernet/``, ``samples/``,
``profiles/``, ``predictors/``, ``search/<profile>/``, ``exports/<profile>/<arch_key>/``,
``report.*`` and ``timings.json``. Every step reads and writes its artefacts through the
named paths and loaders of :class:`RunDir`; every file is written atomically. A loader that
finds something wrong names the file, what it found and what it expected.

Samples (``samples/<metric>.csv``) have one schema: a ``key`` column, an ``arch`` column
holding the architecture as JSON (:meth:`nas.ArchConfig.to_json`), then metric columns
named as the search objectives (e.g. ``accuracy``, ``loss``; ``latency_ms``).

Example:
    >>> run = RunDir.create("runs/demo", space, task="classification")
    >>> run.write_samples("accuracy", archs, [{"accuracy": 91.0, "loss": 0.3}, ...])
    >>> RunDir.open("runs/demo").read_samples("accuracy").frame
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nas.errors import MissingFileError, RunDirError
from nas.space import ArchConfig, InvalidArchError, SearchSpace

if TYPE_CHECKING:
    import pandas as pd

    from nas.tasks import DataSpec, Task

SUBDIRS = ("supernet", "samples", "profiles", "predictors", "search", "exports")
RUN_FILE, SPACE_FILE, TIMINGS_FILE = "run.json", "space.json", "timings.json"
# the files of one profile's search (written by nas.search.store)
TRIALS_FILE, PLAN_FILE, PARETO_FILE = "trials.csv", "plan.json", "pareto.csv"
HYPERVOLUME_FILE, PARETO_PLOT = "hypervolume.csv", "pareto.png"
# the files of one export (written by nas.export)
ARCH_FILE, WEIGHTS_FILE, PROGRAM_FILE = "arch.json", "weights.pt", "program.pt2"
ONNX_FILE, METRICS_FILE = "model.onnx", "metrics.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


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
        raise MissingFileError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc})") from None


def check_name(kind: str, name: str) -> str:
    """``name`` if it is usable as a file name (letters, digits, ``._-``, at most 100)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RunDirError(
            f"{kind} {name!r}: use 1-100 letters, digits, '.', '_' or '-' (first a letter or digit)"
        )
    return name


def check_writable(path: str | Path, what: str = "run directory") -> Path:
    """``path`` if this process can create files in it (probed with a file it removes at
    once: permission bits alone miss read-only mounts and root); else a :class:`RunDirError`
    before any work starts."""
    path = Path(path)
    try:
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
        fd, probe = tempfile.mkstemp(dir=path, prefix=".nas-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RunDirError(
            f"{path}: the {what} is not writable ({exc.strerror or exc}); make it writable "
            "or copy the run elsewhere"
        ) from None
    return path


@dataclass(frozen=True)
class Samples:
    """Architectures and their metrics, as ``samples/<metric>.csv`` holds them."""

    archs: list[ArchConfig]
    frame: pd.DataFrame

    def values(self, column: str) -> Any:
        """One metric column as a float array."""
        return self.frame[column].to_numpy(dtype=float)


class RunDir:
    """A run directory bound to one search space."""

    def __init__(self, path: str | Path, space: SearchSpace) -> None:
        self.path = Path(path)
        self.space = space

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(cls, path: str | Path, space: SearchSpace, **info: Any) -> RunDir:
        """Create (or reuse, if its space matches) the run directory at ``path``."""
        from nas.registry import space_module

        path = Path(path)
        if (path / SPACE_FILE).exists():
            return cls.open(path, space)
        check_name("run name", path.name)
        for sub in SUBDIRS:
            (path / sub).mkdir(parents=True, exist_ok=True)
        spec = {"fingerprint": space.fingerprint(), "module": space_module(space.name),
                **space.to_spec()}
        atomic_write_json(path / SPACE_FILE, spec)
        atomic_write_json(path / "run.json", {"space": space.name, **info})
        return cls(path, space)

    @classmethod
    def open(cls, path: str | Path, space: SearchSpace | None = None) -> RunDir:
        """Open an existing run (its space rebuilt from ``space.json`` unless given); a
        :class:`RunDirError` if it is no run or was made for another space."""
        from nas.space_recipes import resolve_recorded_space

        path = Path(path)
        if not (path / SPACE_FILE).is_file():
            raise RunDirError(f"{path}: not a run directory (no space.json)")
        spec = read_json(path / SPACE_FILE)
        if space is None:
            space = resolve_recorded_space(str(spec.get("name")), module=spec.get("module")
                                           or None, recipe=(spec.get("meta") or {}).get("recipe"))
        if spec.get("fingerprint") != space.fingerprint():
            raise RunDirError(
                f"{path}: run was made for space {spec.get('name')!r} "
                f"(fingerprint {spec.get('fingerprint')}), not {space.name!r} "
                f"(fingerprint {space.fingerprint()})"
            )
        return cls(path, space)

    @staticmethod
    def is_run(path: str | Path) -> bool:
        """Whether ``path`` holds a run directory (its ``space.json``)."""
        return (Path(path) / SPACE_FILE).is_file()

    @staticmethod
    def space_name(path: str | Path) -> str:
        """The name of the space a run was made for."""
        return str(read_json(Path(path) / SPACE_FILE)["name"])

    # ------------------------------------------------------------------ run.json
    def info(self) -> dict[str, Any]:
        """The contents of ``run.json``."""
        return dict(read_json(self.path / RUN_FILE))

    def update_info(self, **changes: Any) -> None:
        """Merge ``changes`` into ``run.json``."""
        atomic_write_json(self.path / RUN_FILE, {**self.info(), **changes})

    @property
    def task(self) -> Task:
        """The run's task (``run.json`` field ``task``, else the space's default)."""
        from nas.tasks import create_task, task_for_space

        name = self.info().get("task")
        return create_task(str(name)) if name else task_for_space(self.space)

    def data_spec(self) -> DataSpec:
        """The data the run was trained on (``run.json`` field ``data``)."""
        from nas.tasks import DataSpec

        data = self.info().get("data")
        if not isinstance(data, Mapping):
            raise RunDirError(
                f"{self.path / RUN_FILE}: field 'data' missing (train the run first)"
            )
        return DataSpec.from_dict(data, source=f"{self.path / RUN_FILE} field 'data'")

    def subdir(self, *parts: str) -> Path:
        """``path/parts...``, created if missing."""
        out = self.path.joinpath(*parts)
        out.mkdir(parents=True, exist_ok=True)
        return out

    # ------------------------------------------------------------------ supernet/
    @property
    def supernet_config(self) -> Path:
        """``supernet/config.json``: every option that rebuilds the trained network."""
        return self.path / "supernet" / "config.json"

    @property
    def checkpoint(self) -> Path:
        """``supernet/checkpoint.pt``."""
        return self.path / "supernet" / "checkpoint.pt"

    @property
    def history(self) -> Path:
        """``supernet/history.jsonl``: one line per epoch."""
        return self.path / "supernet" / "history.jsonl"

    def supernet_build(self) -> dict[str, Any]:
        """The keyword arguments of ``nas.create_supernet`` that rebuild the run's network."""
        config = read_json(self.supernet_config)
        build = config.get("build") or {"num_classes": config.get("num_classes")}
        if not isinstance(build.get("num_classes"), int):
            raise RunDirError(f"{self.supernet_config}: field 'build.num_classes' missing")
        return dict(build)

    def require_checkpoint(self) -> Path:
        """The checkpoint path, or a :class:`RunDirError` saying to train first."""
        if not self.checkpoint.is_file():
            raise RunDirError(f"{self.path}: no {self.checkpoint.relative_to(self.path)} "
                              "(train the run first: nas train)")
        return self.checkpoint

    # ------------------------------------------------------------------ samples/
    def samples_csv(self, metric: str) -> Path:
        """``samples/<metric>.csv`` (``latency_<profile>`` for a profile's latencies)."""
        return self.path / "samples" / f"{check_name('metric', metric)}.csv"

    def write_samples(
        self, metric: str, archs: Sequence[ArchConfig], rows: Sequence[Mapping[str, float]]
    ) -> Path:
        """Write ``samples/<metric>.csv``: ``key``, ``arch`` (JSON), then the row metrics."""
        import pandas as pd

        frame = pd.DataFrame({"key": [a.key for a in archs], "arch": [a.to_json() for a in archs]})
        metrics = pd.DataFrame([dict(r) for r in rows], index=frame.index)
        text = pd.concat([frame, metrics], axis=1).to_csv(index=False)
        return atomic_write_text(self.samples_csv(metric), text)

    def read_samples(self, metric: str, *, columns: Sequence[str] = ()) -> Samples:
        """``samples/<metric>.csv`` checked against the schema (and for ``columns``)."""
        import pandas as pd

        path = self.samples_csv(metric)
        if not path.is_file():
            return Samples(archs=[], frame=pd.DataFrame(columns=["key", "arch", *columns]))
        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RunDirError(f"{path}: not a readable CSV ({exc})") from None
        missing = [c for c in ("key", "arch", *columns) if c not in frame.columns]
        if missing:
            raise RunDirError(f"{path}: column(s) {missing} missing; expected key, arch "
                              f"(architecture JSON) and metric columns, got {list(frame.columns)}")
        archs = []
        for line, text in enumerate(frame["arch"], start=2):
            try:
                archs.append(self.space.from_json(str(text)))
            except (InvalidArchError, ValueError) as exc:
                raise RunDirError(f"{path}: line {line}, column 'arch' is not an architecture "
                                  f"of {self.space.name!r} as JSON: {exc}") from None
        return Samples(archs=archs, frame=frame)

    # ------------------------------------------------------------------ profiles/
    def profile_json(self, name: str) -> Path:
        """``profiles/<name>.json``: a profile made for this run."""
        return self.path / "profiles" / f"{check_name('profile', name)}.json"

    def profile_location(self, name: str) -> str:
        """Where profile ``name`` is: this run's ``profiles/`` first, else the name (for the
        shipped and ``$NAS_PROFILE_PATH`` folders)."""
        local = self.profile_json(name) if _NAME.match(name) else None
        return str(local) if local is not None and local.is_file() else name

    # ------------------------------------------------------------------ predictors/
    def predictor_stem(self, metric: str) -> Path:
        """``predictors/<metric>`` (the predictor's ``.json`` and ``.npz`` beside it)."""
        return self.path / "predictors" / check_name("metric", metric)

    def has_predictor(self, metric: str) -> bool:
        """Whether ``predictors/<metric>.json`` exists."""
        return self.predictor_stem(metric).with_suffix(".json").is_file()

    def predictor_report(self, metric: str) -> Path:
        """``predictors/<metric>_fit.json``: the fit's cross-validated scores."""
        return self.path / "predictors" / f"{check_name('metric', metric)}_fit.json"

    # ------------------------------------------------------------------ search/, exports/
    def search_dir(self, profile: str) -> Path:
        """``search/<profile>/``."""
        return self.path / "search" / check_name("profile", profile)

    def plan_json(self, profile: str) -> Path:
        """``search/<profile>/plan.json``: the search's problem and settings."""
        return self.search_dir(profile) / PLAN_FILE

    def trials_csv(self, profile: str) -> Path:
        """``search/<profile>/trials.csv``."""
        return self.search_dir(profile) / TRIALS_FILE

    def searched_profiles(self) -> list[str]:
        """Profiles with a ``trials.csv``, sorted."""
        return sorted(p.parent.name for p in self.path.glob(f"search/*/{TRIALS_FILE}"))

    def pareto_plots(self) -> list[tuple[str, Path]]:
        """``(profile, search/<profile>/pareto.png)`` of every search, sorted."""
        return [(p.parent.name, p) for p in sorted(self.path.glob(f"search/*/{PARETO_PLOT}"))]

    def export_dir(self, profile: str, key: str) -> Path:
        """``exports/<profile>/<arch_key>/``."""
        return self.path / "exports" / check_name("profile", profile) / check_name("key", key)

    def export_metrics(self) -> list[Path]:
        """Every ``exports/<profile>/<arch_key>/metrics.json``, sorted."""
        return sorted(self.path.glob(f"exports/*/*/{METRICS_FILE}"))

    # ------------------------------------------------------------------ report, timings
    @property
    def report_paths(self) -> tuple[Path, Path, Path]:
        """``report.html``, ``report.md``, ``report.json``."""
        return self.path / "report.html", self.path / "report.md", self.path / "report.json"

    @property
    def notes_json(self) -> Path:
        """``report_notes.json``: paragraphs explaining the run (optional)."""
        return self.path / "report_notes.json"

    @property
    def timings_json(self) -> Path:
        """``timings.json``: step name → seconds."""
        return self.path / TIMINGS_FILE

    def timings(self) -> dict[str, float]:
        """Step name → seconds (empty when none was recorded)."""
        path = self.timings_json
        return {str(k): float(v) for k, v in read_json(path).items()} if path.exists() else {}

    def record_timing(self, step: str, seconds: float) -> None:
        """Add (or replace) one step's wall time in ``timings.json``."""
        atomic_write_json(self.timings_json, {**self.timings(), step: round(seconds, 2)})
