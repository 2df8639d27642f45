"""Saving and loading predictors as JSON (structure, hyper-parameters) + ``.npz`` (arrays).

Nothing is pickled: ``.npz`` files are read with ``allow_pickle=False``. Models whose fitted
form is not plain arrays (scikit-learn trees, SVR) are stored as their training matrix and
refitted on load (their estimators are seeded; see :mod:`predictors.sklearn_models`).

Example:
    >>> save_predictor(p, "runs/demo/predictors/accuracy")   # accuracy.json + accuracy.npz
    >>> p2 = load_predictor("runs/demo/predictors/accuracy", space)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import ConfigError
from nas.registry import create_space
from nas.rundir import atomic_write, atomic_write_json, read_json
from nas.space import SearchSpace
from predictors.base import BasePredictor
from predictors.registry import create_predictor, predictor_kind

FORMAT = 1


def predictor_to_dict(predictor: BasePredictor) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """JSON-able description and arrays of a fitted predictor."""
    state, arrays = predictor.get_state()
    meta = {
        "format": FORMAT,
        "predictor": predictor_kind(predictor),
        "space": predictor.space.name,
        "fingerprint": predictor.space.fingerprint(),
        "config": predictor.config(),
        "state": state,
    }
    return meta, {k: np.asarray(v) for k, v in arrays.items()}


def predictor_from_dict(
    meta: dict[str, Any], arrays: dict[str, np.ndarray], space: SearchSpace, *, source: str = ""
) -> BasePredictor:
    """Rebuild a predictor from :func:`predictor_to_dict` output."""
    where = f"{source}: " if source else ""
    for field in ("predictor", "space", "config", "state"):
        if field not in meta:
            raise ConfigError(f"{where}missing field {field!r}")
    if meta["space"] != space.name:
        raise ConfigError(
            f"{where}field 'space' is {meta['space']!r} but the predictor is loaded for "
            f"{space.name!r}"
        )
    if meta.get("fingerprint") not in (None, space.fingerprint()):
        raise ConfigError(
            f"{where}field 'fingerprint' {meta['fingerprint']} does not match space "
            f"{space.name!r} ({space.fingerprint()}): it was fitted on another version of it"
        )
    try:
        predictor = create_predictor(meta["predictor"], space=space, **meta["config"])
        predictor.set_state(meta["state"], arrays)
    except KeyError as exc:
        raise ConfigError(f"{where}state lacks {exc.args[0]!r}") from None
    except TypeError as exc:
        kind = meta["predictor"]
        raise ConfigError(f"{where}field 'config' does not fit {kind!r}: {exc}") from None
    return predictor


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".json", ".npz") else path
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")


def save_predictor(predictor: BasePredictor, path: str | Path) -> Path:
    """Write ``<path>.json`` and ``<path>.npz`` atomically; returns the JSON path."""
    meta, arrays = predictor_to_dict(predictor)
    json_path, npz_path = _paths(path)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write(npz_path, lambda f: f.write(buffer.getvalue()))
    meta["arrays"] = npz_path.name
    atomic_write_json(json_path, meta)
    return json_path


def load_predictor(path: str | Path, space: SearchSpace | None = None) -> BasePredictor:
    """Load a predictor saved by :func:`save_predictor` (for ``space``, or the one it names)."""
    json_path, npz_path = _paths(path)
    meta = read_json(json_path)
    if not isinstance(meta, dict):
        raise ConfigError(f"{json_path}: expected a JSON object")
    if space is None:
        space = create_space(str(meta.get("space")))
    arrays: dict[str, np.ndarray] = {}
    if npz_path.exists():
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    return predictor_from_dict(meta, arrays, space, source=str(json_path))


def predictor_to_json(predictor: BasePredictor) -> dict[str, Any]:
    """One JSON object (arrays inlined as lists): for small models kept inside profiles."""
    meta, arrays = predictor_to_dict(predictor)
    if meta["predictor"] == "lut":
        meta["config"] = {k: v for k, v in meta["config"].items() if k != "table"}
    meta["arrays"] = {
        k: {"dtype": str(v.dtype), "shape": list(v.shape), "data": v.ravel().tolist()}
        for k, v in arrays.items()
    }
    return meta


def _arrays_from_json(meta: dict[str, Any], source: str) -> dict[str, np.ndarray]:
    out = {}
    for k, v in (meta.get("arrays") or {}).items():
        try:
            out[k] = np.asarray(v["data"], dtype=v["dtype"]).reshape(v["shape"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{source}: field 'arrays.{k}' is not a valid array") from None
    return out


def predictor_from_json(
    meta: dict[str, Any],
    space: SearchSpace,
    *,
    source: str = "",
    table: dict[str, float] | None = None,
) -> BasePredictor:
    """Rebuild :func:`predictor_to_json` output (``table`` supplies a lookup table's layers)."""
    if not isinstance(meta, dict):
        raise ConfigError(f"{source}: a predictor is a JSON object")
    arrays = _arrays_from_json(meta, source)
    if meta.get("predictor") == "lut":
        if not table:
            raise ConfigError(f"{source}: a 'lut' predictor needs the profile's 'lut' table")
        meta = {**meta, "config": {**meta.get("config", {}), "table": table}}
    return predictor_from_dict(meta, arrays, space, source=source)


def latency_predictor(profile: Any, space: SearchSpace) -> BasePredictor:
    """The latency predictor (ms) a ``nas.HardwareProfile`` holds for ``space``.

    Example:
        >>> p = latency_predictor(nas.load_profile("nb201_pixel3"), nas.create_space("nb201"))
        >>> p.predict(archs)
    """
    model = profile.model_for(space)
    source = f"profile {profile.name!r}, field 'latency.{space.name}'"
    if model.predictor is not None:
        return predictor_from_json(
            dict(model.predictor), space, source=source, table=dict(model.lut)
        )
    from predictors.lookup_table import LookupTablePredictor

    return LookupTablePredictor(space, table=model.lut, num_classes=model.num_classes)
