"""Hardware profiles: one JSON file per device setting, with provenance and latency models.

A :class:`HardwareProfile` names a device setting (device, runtime, batch size, threads,
dtype), says where its numbers come from (:class:`Provenance`) and holds, per search space, a
:class:`LatencyModel`: a per-layer lookup table (milliseconds keyed by ``LayerSpec.key``)
and/or the JSON form of a fitted latency predictor, with the score it reached on held-out
measurements. Profiles are plain JSON (never pickle). The shipped ones live in
``hardware_profiles/`` at the project root, which is also a package whose data a wheel
installs (found through :mod:`importlib.resources`, see :data:`PROFILE_DIR`);
``$NAS_PROFILE_PATH`` (``:``-separated folders) adds more.

Example:
    >>> import nas
    >>> nas.list_profiles()[:2]
    ['nb201_1080ti_1', 'nb201_1080ti_32']
    >>> profile = nas.load_profile("nb201_pixel3")
    >>> profile.latency["nb201"].validation["kendall_tau"]
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from nas.errors import MissingFileError, ProfileError
from nas.rundir import atomic_write_json, read_json
from nas.space import SearchSpace

KINDS = ("cpu", "gpu", "phone", "accelerator")
RUNTIMES = ("torch", "onnxruntime", "tflite", "tensorrt", "pytorch-mobile", "other")
DTYPES = ("float32", "float16", "bfloat16", "int8")
FORMAT = 1


def shipped_profile_dir() -> Path:
    """The folder of the shipped profiles.

    The ``hardware_profiles`` package's resources when it is importable as a regular package
    (a wheel or an up-to-date editable install), else ``hardware_profiles/`` next to the
    ``nas`` package (a source checkout, or an editable install made before the folder became
    a package).
    """
    try:
        folder = resources.files("hardware_profiles")
    except ModuleNotFoundError:
        folder = None
    if isinstance(folder, Path) and (folder / "__init__.py").is_file():
        return folder.resolve()
    return Path(__file__).resolve().parents[2] / "hardware_profiles"


PROFILE_DIR = shipped_profile_dir()
"""Where the shipped profiles are (see :func:`shipped_profile_dir`)."""


@dataclass(frozen=True, kw_only=True)
class Provenance:
    """Where a profile's measurements come from.

    Args:
        source: who measured, and where the data is published (or ``"measured here"``).
        licence: the licence of the measurements (SPDX id where there is one).
        notes: anything a reader needs to trust the numbers (machine load, date...).
    """

    source: str
    licence: str
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class LatencyModel:
    """How a profile predicts the latency (ms) of one space's architectures.

    Args:
        space: the space's registry name.
        fingerprint: the space's fingerprint when the model was built.
        lut: per-layer median latency in ms, keyed by ``LayerSpec.key`` (may be empty).
        predictor: a fitted predictor in ``predictors.io.predictor_to_json`` form, or ``None``.
            With a ``lut`` it is the correction applied to the table's sum.
        validation: scores on measurements the model was not fitted on (``kendall_tau``,
            ``spearman``, ``rmse``, ``mape``, ``n``).
        num_classes: classifier width the layers were described with (lookup tables).
        selection: how the model was chosen, as JSON: the cross-validation table of the
            candidates, the priors a transfer used and its evidence, the advice on measuring
            more (empty when nothing was chosen).
    """

    space: str
    fingerprint: str = ""
    lut: Mapping[str, float] = field(default_factory=dict)
    predictor: Mapping[str, Any] | None = None
    validation: Mapping[str, float] = field(default_factory=dict)
    num_classes: int = 1000
    selection: Mapping[str, Any] = field(default_factory=dict)

    def check_space(self, space: SearchSpace, *, source: str = "") -> None:
        """Raise ``ValueError`` unless this model was built for ``space``."""
        where = f"{source}: " if source else ""
        if self.space != space.name:
            raise ProfileError(
                f"{where}latency model field 'space' is {self.space!r}, not {space.name!r}"
            )
        if self.fingerprint and self.fingerprint != space.fingerprint():
            raise ProfileError(
                f"{where}latency model for {space.name!r} has fingerprint {self.fingerprint}, "
                f"but the space's is {space.fingerprint()}: it was built for another version"
            )


@dataclass(frozen=True, kw_only=True)
class HardwareProfile:
    """One device setting and its latency models (see module docstring).

    Args:
        name: file stem and registry name, e.g. ``"nb201_pixel3"``.
        kind: one of :data:`KINDS`.
        device: the device in words, e.g. ``"Google Pixel 3 (big core)"``.
        runtime: one of :data:`RUNTIMES`.
        runtime_version: the runtime's version the numbers were measured with (e.g.
            ``"1.22.0"`` for onnxruntime, torch's for torch; ``""``: unknown, as in profiles
            from before it was recorded).
        batch_size: images (or sequences) per inference.
        threads: CPU threads (0 when not applicable or unknown).
        seq_len: tokens per sequence the language-model spaces were timed at (0: none timed;
            image spaces ignore it). Lookup-table keys name the space's layers whatever it is,
            as they do not name the batch either.
        dtype: one of :data:`DTYPES`.
        provenance: where the numbers come from.
        latency: space name -> :class:`LatencyModel`.
    """

    name: str
    kind: str
    device: str
    runtime: str
    runtime_version: str = ""
    batch_size: int = 1
    threads: int = 0
    dtype: str = "float32"
    provenance: Provenance
    seq_len: int = 0
    latency: Mapping[str, LatencyModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, KINDS)
        _check_choice("runtime", self.runtime, RUNTIMES)
        _check_choice("dtype", self.dtype, DTYPES)
        if not self.name or any(c in self.name for c in "/\\ "):
            raise ProfileError(
                f"profile field 'name' must be a non-empty file stem, got {self.name!r}"
            )
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ProfileError(
                f"profile field 'batch_size' must be an int >= 1, got {self.batch_size!r}"
            )
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ProfileError(f"profile field 'threads' must be an int >= 0, got {self.threads!r}")
        if not isinstance(self.seq_len, int) or isinstance(self.seq_len, bool) or self.seq_len < 0:
            raise ProfileError(f"profile field 'seq_len' must be an int >= 0, got {self.seq_len!r}")
        if not isinstance(self.runtime_version, str) or any(c.isspace()
                                                            for c in self.runtime_version):
            raise ProfileError("profile field 'runtime_version' must be a version string "
                               f"without spaces (e.g. '1.22.0'), got {self.runtime_version!r}")

    def model_for(self, space: SearchSpace) -> LatencyModel:
        """The latency model of ``space``; ``ValueError`` naming the spaces it has otherwise."""
        model = self.latency.get(space.name)
        if model is None:
            raise ProfileError(
                f"profile {self.name!r} has no latency model for space {space.name!r}; "
                f"it has {sorted(self.latency)}"
            )
        model.check_space(space, source=f"profile {self.name!r}")
        return model

    def with_model(self, model: LatencyModel) -> HardwareProfile:
        """A copy with ``model`` added (replacing the same space's)."""
        return replace(self, latency={**self.latency, model.space: model})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written by :func:`save_profile` (``seq_len`` and ``runtime_version``
        only when set, so older profiles keep their form)."""
        sequence = {"seq_len": self.seq_len} if self.seq_len else {}
        version = {"runtime_version": self.runtime_version} if self.runtime_version else {}
        return {
            "format": FORMAT,
            "name": self.name,
            "kind": self.kind,
            "device": self.device,
            "runtime": self.runtime,
            **version,
            "batch_size": self.batch_size,
            **sequence,
            "threads": self.threads,
            "dtype": self.dtype,
            "provenance": {
                "source": self.provenance.source,
                "licence": self.provenance.licence,
                "notes": self.provenance.notes,
            },
            "latency": {name: _model_to_dict(m) for name, m in self.latency.items()},
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "profile") -> HardwareProfile:
        """Parse :meth:`to_dict` output; ``ValueError`` naming ``source`` and the bad field."""
        if not isinstance(data, dict):
            raise ProfileError(f"{source}: a profile is a JSON object, got {type(data).__name__}")
        missing = [f for f in ("name", "kind", "device", "runtime", "provenance") if f not in data]
        if missing:
            raise ProfileError(f"{source}: missing field(s) {missing}")
        prov = data["provenance"]
        if not isinstance(prov, dict) or not {"source", "licence"} <= set(prov):
            raise ProfileError(f"{source}: field 'provenance' needs 'source' and 'licence'")
        latency = data.get("latency", {})
        if not isinstance(latency, dict):
            raise ProfileError(f"{source}: field 'latency' must map space names to models")
        try:
            models = {name: _model_from_dict(name, m, source) for name, m in latency.items()}
            return cls(
                name=str(data["name"]),
                kind=str(data["kind"]),
                device=str(data["device"]),
                runtime=str(data["runtime"]),
                runtime_version=data.get("runtime_version", ""),
                batch_size=data.get("batch_size", 1),
                seq_len=data.get("seq_len", 0),
                threads=data.get("threads", 0),
                dtype=str(data.get("dtype", "float32")),
                provenance=Provenance(
                    source=str(prov["source"]),
                    licence=str(prov["licence"]),
                    notes=str(prov.get("notes", "")),
                ),
                latency=models,
            )
        except ValueError as exc:
            message = str(exc)
            if not message.startswith(source):
                message = f"{source}: {message}"
            raise ProfileError(message) from None


def _model_to_dict(m: LatencyModel) -> dict[str, Any]:
    out = {
        "space": m.space,
        "fingerprint": m.fingerprint,
        "num_classes": m.num_classes,
        "validation": dict(m.validation),
        "lut": dict(m.lut),
        "predictor": m.predictor,
    }
    if m.selection:  # absent in profiles from before model selection: keep them unchanged
        out["selection"] = dict(m.selection)
    return out


def _model_from_dict(name: str, m: Any, source: str) -> LatencyModel:
    where = f"field 'latency.{name}'"
    if not isinstance(m, dict):
        raise ProfileError(f"{source}: {where} must be an object")
    lut = m.get("lut") or {}
    if not isinstance(lut, dict) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in lut.values()
    ):
        raise ProfileError(f"{source}: {where}.lut must map layer keys to milliseconds")
    predictor = m.get("predictor")
    if predictor is not None and not isinstance(predictor, dict):
        raise ProfileError(f"{source}: {where}.predictor must be an object or null")
    if not lut and predictor is None:
        raise ProfileError(f"{source}: {where} has neither a 'lut' nor a 'predictor'")
    if m.get("space", name) != name:
        raise ProfileError(f"{source}: {where}.space is {m.get('space')!r}, expected {name!r}")
    selection = m.get("selection") or {}
    if not isinstance(selection, dict):
        raise ProfileError(f"{source}: {where}.selection must be an object or absent")
    return LatencyModel(
        space=name,
        fingerprint=str(m.get("fingerprint", "")),
        lut={str(k): float(v) for k, v in lut.items()},
        predictor=predictor,
        validation={str(k): float(v) for k, v in (m.get("validation") or {}).items()},
        num_classes=int(m.get("num_classes", 1000)),
        selection=selection,
    )


def _check_choice(field_name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ProfileError(f"profile field {field_name!r} is {value!r}; allowed: {list(allowed)}")


def user_profile_dir() -> Path:
    """Where profiles a user builds or imports go by default: the first ``$NAS_PROFILE_PATH``
    folder, else ``$XDG_DATA_HOME/ofa-nas/profiles`` (``~/.local/share/...``); never the
    installed package."""
    extra = [p for p in os.environ.get("NAS_PROFILE_PATH", "").split(os.pathsep) if p]
    if extra:
        return Path(extra[0])
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "ofa-nas" / "profiles"


def profile_dirs() -> list[Path]:
    """Folders searched for profiles: ``$NAS_PROFILE_PATH`` entries, the user's profile folder
    (:func:`user_profile_dir`), then the shipped ones."""
    extra = [Path(p) for p in os.environ.get("NAS_PROFILE_PATH", "").split(os.pathsep) if p]
    return list(dict.fromkeys([*extra, user_profile_dir(), PROFILE_DIR]))


def list_profiles() -> list[str]:
    """Names of the profiles found in :func:`profile_dirs`, sorted."""
    names: set[str] = set()
    for folder in profile_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.json") if not p.name.startswith("."))
    return sorted(names)


def runtime_version(runtime: str) -> str:
    """The installed version of ``runtime`` (``torch`` or ``onnxruntime``; ``""`` for others
    or when it is not installed)."""
    import importlib

    if runtime not in ("torch", "onnxruntime"):
        return ""
    try:  # the module's own version: any distribution of it (onnxruntime-gpu...) has one
        module = importlib.import_module(runtime)
    except ImportError:
        return ""
    return str(getattr(module, "__version__", ""))


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """A profile by name (see :func:`list_profiles`) or by path to its JSON file.

    Raises:
        FileNotFoundError: no such profile (the message lists the known names).
        ValueError: the file is malformed (the message names the file and the field).
    """
    path = Path(name_or_path)
    if len(path.name) > 250:  # longer than any file system takes: no such profile
        raise MissingFileError(
            f"no hardware profile named {str(name_or_path)[:40]!r}... ({len(path.name)} "
            "characters; a profile name is a file name, at most 250)"
        )
    if path.suffix != ".json" and not path.is_file():
        for folder in profile_dirs():
            candidate = folder / f"{name_or_path}.json"
            if candidate.is_file():
                path = candidate
                break
        else:
            raise MissingFileError(
                f"no hardware profile {str(name_or_path)!r}; known profiles: {list_profiles()}"
            )
    return HardwareProfile.from_dict(read_json(path), source=str(path))


def save_profile(profile: HardwareProfile, path: str | Path | None = None) -> Path:
    """Write ``profile`` as JSON (atomically) to ``path`` or ``hardware_profiles/<name>.json``."""
    target = Path(path) if path is not None else PROFILE_DIR / f"{profile.name}.json"
    if target.suffix != ".json":
        target = target / f"{profile.name}.json"
    return atomic_write_json(target, profile.to_dict())
