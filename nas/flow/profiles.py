"""Flow step 4: device profiles: build a lookup table here, validate it, import measurements.

* :func:`build_profile` times every distinct layer of a space on this machine;
* :func:`validate_profile` times whole subnets and scores the profile (and, with
  ``fit_correction``, fits the lookup table's whole-network correction on them);
* :func:`import_profile` fits a device's latency model on measured whole architectures
  (a published table, or :func:`measure_profile`'s subnets timed here).

Profiles made for a run go to its ``profiles/``; others to a folder the caller names
(``nas profile`` defaults to the user's profile folder, never the installed package).

Example:
    >>> path = build_profile("ofa_mbv3_w1.0", "my_cpu", out="runs/profiles")
    >>> validate_profile("ofa_mbv3_w1.0", path, n=50, fit_correction=True)
    >>> measure_profile("runs/demo", "this_machine", n=24, timing=Timing(num_classes=10))
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import ConfigError
from nas.hardware.profile import (
    HardwareProfile,
    LatencyModel,
    Provenance,
    load_profile,
    runtime_version,
    save_profile,
)
from nas.registry import resolve_space
from nas.rundir import RunDir, atomic_write_text
from nas.scores import scores
from nas.space import ArchConfig, SearchSpace

Progress = Callable[[int, int], None]
CLOCKS, STATISTICS = ("wall", "thread_cpu"), ("median_ms", "min_ms")


@dataclass(frozen=True, kw_only=True)
class Timing:
    """How layers and subnets are timed (see :func:`nas.hardware.measure_latency`);
    ``seq_len``: tokens per sequence of a language-model space (``None``: its
    ``meta["seq_len"]``; must be ``None`` for an image space)."""

    runtime: str = "torch"
    batch_size: int = 1
    threads: int = 1
    device: str = "cpu"
    warmup: int = 2
    repeats: int = 5
    num_classes: int = 1000
    rounds: int = 1
    min_time_ms: float = 0.0
    clock: str = "wall"
    statistic: str = "median_ms"
    seq_len: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch_size", "threads", "repeats", "num_classes", "rounds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"warmup must be an int >= 0, got {self.warmup!r}")
        if not self.min_time_ms >= 0:
            raise ConfigError(f"min_time_ms must be >= 0, got {self.min_time_ms!r}")
        if self.clock not in CLOCKS:
            raise ConfigError(f"clock must be one of {list(CLOCKS)}, got {self.clock!r}")
        if self.statistic not in STATISTICS:
            raise ConfigError(f"statistic must be one of {list(STATISTICS)}, "
                              f"got {self.statistic!r}")
        if self.seq_len is not None and (
            not isinstance(self.seq_len, int) or isinstance(self.seq_len, bool) or self.seq_len < 1
        ):
            raise ConfigError(f"seq_len must be an int >= 1 or None, got {self.seq_len!r}")

    def for_space(self, space: SearchSpace) -> Timing:
        """A copy with ``seq_len`` resolved for ``space`` (its default; ``None`` for images)."""
        from nas.sequence import sequence_length

        return replace(self, seq_len=sequence_length(space, self.seq_len))

    def measure_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`nas.hardware.measure_subnets`."""
        out = {k: v for k, v in asdict(self).items() if k not in ("statistic", "min_time_ms")}
        return {**out, "min_time_s": self.min_time_ms / 1e3}


def _space(space: SearchSpace | str) -> SearchSpace:
    return space if isinstance(space, SearchSpace) else resolve_space(space)


def _here(device: str) -> str:
    return f"{platform.processor() or platform.machine()} ({device})"


def build_profile(
    space: SearchSpace | str,
    name: str,
    *,
    out: str | Path,
    timing: Timing | None = None,
    kind: str = "cpu",
    device_name: str = "",
    partial: str | Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Time every distinct layer of ``space`` here; write ``out/<name>.json`` (a lookup table).

    ``partial`` (default ``out/.<name>.partial.json``) keeps the layers timed so far: an
    interrupted build resumes there.
    """
    from nas.hardware.build import build_lookup_table

    space = _space(space)
    timing = (timing or Timing()).for_space(space)
    out = Path(out)
    partial = Path(partial) if partial else out / f".{name}.partial.json"
    HardwareProfile(name=name, kind=kind, device="-", runtime=timing.runtime,
                    provenance=Provenance(source="-", licence="-"))  # validates name and kind
    kwargs = timing.measure_kwargs()
    results = build_lookup_table(space, partial_path=partial, progress=progress, **kwargs)
    model = LatencyModel(space=space.name, fingerprint=space.fingerprint(),
                         lut={k: v[timing.statistic] for k, v in results.items()},
                         num_classes=timing.num_classes)
    notes = (f"{len(results)} layers, {timing.statistic} of {timing.rounds} x {timing.repeats} "
             f"runs after {timing.warmup} warm-up runs, clock {timing.clock}"
             + (f", {timing.seq_len} tokens per sequence" if timing.seq_len else "")
             + _precision_note(space))
    profile = HardwareProfile(
        name=name, kind=kind, device=device_name or _here(timing.device), runtime=timing.runtime,
        runtime_version=runtime_version(timing.runtime), batch_size=timing.batch_size,
        threads=timing.threads, dtype="float32", seq_len=timing.seq_len or 0,
        provenance=Provenance(source=f"measured here with nas on {platform.node() or 'a host'}",
                              licence="CC0-1.0", notes=notes),
        latency={space.name: model},
    )
    path = save_profile(profile, out)
    partial.unlink(missing_ok=True)
    return path


def _precision_note(space: SearchSpace) -> str:
    """For a quantized space: which precisions the table's layers are timed at, and how."""
    info = space.meta.get("quantization")
    if not info:
        return ""
    return (f"; one entry per (layer, precision), bits {info['bits']}, timed as "
            "nas.export_quantized deploys them (QDQ static, reduce_range "
            f"{info.get('reduce_range', True)})")


def validate_profile(
    space: SearchSpace | str,
    profile: str | Path,
    *,
    n: int = 50,
    seed: int = 0,
    timing: Timing | None = None,
    fit_correction: bool = False,
    csv: str | Path | None = None,
    progress: Progress | None = None,
    archs: Sequence[ArchConfig] | None = None,
) -> dict[str, Any]:
    """Time ``n`` random whole subnets (or ``archs``) here and score ``profile``'s predictions
    (without ``timing``: with the profile's runtime, head width and sequence length).

    With ``fit_correction`` (a lookup-table profile), the table's whole-network correction
    is scored on a held-out half, then fitted on all ``n`` and saved into the profile file.
    Returns ``{"uncorrected": scores, "corrected_holdout": scores, "saved": path}``.
    """
    from nas.hardware.build import measure_subnets
    from nas.predictor import latency_predictor

    space = _space(space)
    n = len(archs) if archs is not None else n
    if not isinstance(n, int) or n < 4:
        raise ConfigError(f"n must be an int >= 4 (architectures to time), got {n!r}")
    loaded = load_profile(profile)
    timing = timing or Timing(runtime=loaded.runtime,
                              num_classes=loaded.model_for(space).num_classes)
    if timing.seq_len is None and loaded.seq_len and "seq_len" in space.meta:
        timing = replace(timing, seq_len=loaded.seq_len)  # as the profile was timed
    timing = timing.for_space(space)
    archs = list(archs) if archs is not None else space.sample_many(n, np.random.default_rng(seed))
    predicted = np.asarray(latency_predictor(loaded, space).predict(archs), dtype=float)
    rows = measure_subnets(space, archs, progress=progress, **timing.measure_kwargs())
    measured = np.array([r[timing.statistic] for r in rows])
    result: dict[str, Any] = {"profile": loaded.name, "space": space.name, "n": n,
                              "uncorrected": scores(measured, predicted)}
    if fit_correction:
        result.update(_fit_correction(space, loaded, profile, archs, measured))
    if csv:
        _write_latency_csv(Path(csv), archs, {"measured_ms": measured, "predicted_ms": predicted})
    return result


def _fit_correction(space: SearchSpace, profile: HardwareProfile, location: str | Path,
                    archs: list[ArchConfig], measured: np.ndarray) -> dict[str, Any]:
    """Score the lookup table's correction on a held-out half, refit it on all, save."""
    from nas.predictor import create_predictor, predictor_to_json

    model = profile.model_for(space)
    if not model.lut:
        raise ConfigError(f"profile {profile.name!r}: fit_correction needs a lookup table")
    half = len(archs) // 2
    make = lambda: create_predictor("lut", space=space, table=dict(model.lut),  # noqa: E731
                                    num_classes=model.num_classes)
    held = make().fit(archs[:half], measured[:half])
    holdout = scores(measured[half:], held.predict(archs[half:]))
    validation = {**holdout, "n_train": float(half), "n_test": float(len(archs) - half)}
    corrected = replace(model, predictor=predictor_to_json(make().fit(archs, measured)),
                        validation=validation)
    saved = save_profile(profile.with_model(corrected), _profile_file(location).parent)
    return {"corrected_holdout": holdout, "saved": str(saved)}


def _profile_file(location: str | Path) -> Path:
    """The JSON file a profile name or path refers to."""
    from nas.hardware.profile import profile_dirs

    path = Path(location)
    if path.is_file():
        return path
    for folder in profile_dirs():
        if (folder / f"{location}.json").is_file():
            return folder / f"{location}.json"
    raise ConfigError(f"profile {str(location)!r}: no file to save the correction into")


def _write_latency_csv(path: Path, archs: Sequence[ArchConfig], columns: dict[str, Any]) -> None:
    import pandas as pd

    frame = pd.DataFrame({"key": [a.key for a in archs], "arch": [a.to_json() for a in archs],
                          **{k: np.asarray(v, dtype=float) for k, v in columns.items()}})
    atomic_write_text(path, frame.to_csv(index=False))


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    """What a profile says about the device and where its numbers come from."""

    kind: str = "cpu"
    device: str = ""
    runtime: str = "other"
    runtime_version: str = ""
    batch_size: int = 1
    threads: int = 0
    dtype: str = "float32"
    seq_len: int = 0
    source: str = ""
    licence: str = ""
    notes: str = ""


def import_profile(
    space: SearchSpace | str,
    archs: Sequence[ArchConfig],
    latency_ms: Sequence[float] | np.ndarray,
    *,
    name: str,
    out: str | Path,
    info: DeviceInfo,
    **fit_options: Any,
) -> tuple[Path, LatencyModel]:
    """Fit ``name``'s latency model for ``space`` on measured whole architectures and write
    ``out/<name>.json`` (merged into an existing profile of that name there).

    ``fit_options`` go to the latency-model fit (e.g. ``predictor=``, ``encoder=``).
    """
    from nas.predictor import fit_latency_model

    space = _space(space)
    if not info.source or not info.licence:
        raise ConfigError("a profile needs its source and licence (who measured, under what)")
    profile = HardwareProfile(
        name=name, kind=info.kind, device=info.device or name, runtime=info.runtime,
        runtime_version=info.runtime_version, batch_size=info.batch_size, threads=info.threads,
        dtype=info.dtype, seq_len=info.seq_len,
        provenance=Provenance(source=info.source, licence=info.licence, notes=info.notes),
    )
    model = fit_latency_model(space, archs, np.asarray(latency_ms, dtype=float), **fit_options)
    target = Path(out) / f"{name}.json"
    if target.is_file():
        fields = {k: v for k, v in profile.to_dict().items() if k != "latency"}
        fields["runtime_version"] = profile.runtime_version  # the new numbers' (may be "")
        profile = HardwareProfile.from_dict({**load_profile(target).to_dict(), **fields},
                                            source=str(target))
    return save_profile(profile.with_model(model), out), model


def measure_profile(
    run: RunDir | str | Path,
    name: str,
    *,
    n: int,
    seed: int = 0,
    timing: Timing | None = None,
    progress: Progress | None = None,
    **fit_options: Any,
) -> Path:
    """Time ``n`` random whole subnets of the run's space here, keep them in
    ``samples/latency_<name>.csv`` and import them as the run's profile ``profiles/<name>``."""
    from nas.hardware.build import measure_subnets

    run = run if isinstance(run, RunDir) else RunDir.open(run)
    timing = (timing or Timing()).for_space(run.space)
    if not isinstance(n, int) or n < 4:
        raise ConfigError(f"n must be an int >= 4, got {n!r}")
    started = time.perf_counter()
    archs = run.space.sample_many(n, np.random.default_rng(seed))
    rows = measure_subnets(run.space, archs, progress=progress, **timing.measure_kwargs())
    measured = np.array([r[timing.statistic] for r in rows])
    run.write_samples(f"latency_{name}", archs, [{"latency_ms": v} for v in measured])
    info = DeviceInfo(kind="cpu", device=_here(timing.device), runtime=timing.runtime,
                      runtime_version=runtime_version(timing.runtime),
                      batch_size=timing.batch_size, threads=timing.threads,
                      seq_len=timing.seq_len or 0,
                      source=f"measured here by nas ({n} whole subnets)", licence="CC0-1.0",
                      notes=f"{timing.statistic} of {timing.repeats} runs, clock {timing.clock}")
    path, _ = import_profile(run.space, archs, measured, name=name, out=run.subdir("profiles"),
                             info=info, **fit_options)
    run.record_timing(f"measure profile {name}", time.perf_counter() - started)
    return path
