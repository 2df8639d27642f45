"""After a search: choose subnets (best under the constraints, top-k of the front) and export them.

Exports go to ``runs/<run>/exports/<profile>/<arch_key>/`` through :func:`nas.export.export_subnet`
with ``metrics.json`` holding the search's metrics (and which were measured or predicted) plus
any metrics measured at export time.

Example:
    >>> supernet = load_trained_supernet("runs/demo")
    >>> keys = chosen_keys(pd.read_csv("runs/demo/search/pixel3/trials.csv"), "accuracy", "max", 3)
    >>> export_trials("runs/demo", "pixel3", supernet, keys)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.rundir import RunDir, read_json
from nas.search.pareto import pareto_mask

log = logging.getLogger(__name__)


def load_trained_supernet(run_dir: str | Path) -> Any:
    """The supernet of a run, with the weights of ``supernet/checkpoint.pt``."""
    from nas.checkpoint import load_checkpoint
    from nas.registry import create_space, create_supernet

    run_path = Path(run_dir)
    space = create_space(RunDir.space_name(run_path))
    config = read_json(run_path / "supernet" / "config.json")
    supernet = create_supernet(space.name, num_classes=int(config["num_classes"]))
    state = load_checkpoint(run_path / "supernet" / "checkpoint.pt", space=space)
    supernet.load_state_dict(state["model"])
    return supernet.eval()


def read_trials(run_dir: str | Path, profile: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A profile's ``trials.csv`` and ``plan.json``."""
    directory = Path(run_dir) / "search" / profile
    if not (directory / "trials.csv").is_file():
        raise FileNotFoundError(f"{directory}/trials.csv: no search for profile {profile!r}")
    return pd.read_csv(directory / "trials.csv"), dict(read_json(directory / "plan.json"))


def chosen_keys(trials: pd.DataFrame, objectives: Mapping[str, str], top_k: int) -> list[str]:
    """The best feasible trial on the first objective, then the top ``top_k`` of the feasible
    Pareto front (best first), without repeats."""
    names = list(objectives)
    F = np.stack(
        [
            -trials[n].to_numpy(float) if objectives[n] == "max" else trials[n].to_numpy(float)
            for n in names
        ],
        axis=1,
    )
    feasible = trials["feasible"].astype(bool).to_numpy()
    if not feasible.any():
        return []
    violation = np.where(feasible, 0.0, 1.0)
    front = np.flatnonzero(pareto_mask(F, violation))
    front = front[np.argsort(F[front, 0], kind="stable")]
    best = np.flatnonzero(feasible)[np.argmin(F[feasible, 0])]
    keys = [str(trials["key"].iloc[best])]
    for i in front:
        key = str(trials["key"].iloc[i])
        if key not in keys and len(keys) < top_k + 1:
            keys.append(key)
    return keys


def export_trials(
    run_dir: str | Path,
    profile: str,
    supernet: Any,
    keys: Sequence[str],
    *,
    measured: Mapping[str, Mapping[str, float]] | None = None,
    formats: Collection[str] | None = None,
) -> list[Path]:
    """Export the trials ``keys`` of ``profile``'s search to ``exports/<profile>/<key>/``."""
    from nas.export import FORMATS, export_subnet

    trials, plan = read_trials(run_dir, profile)
    space = supernet.space
    by_key = trials.set_index("key")
    out = []
    for key in keys:
        if key not in by_key.index:
            raise ValueError(
                f"arch key {key!r} is not a trial of profile {profile!r}; "
                f"known keys start with {list(by_key.index[:5])}"
            )
        row = by_key.loc[key]
        arch = space.arch(json.loads(str(row["arch"])))
        metric_cols = [
            c
            for c in trials.columns
            if c not in ("key", "arch", "iteration", "wall_time_s", "feasible")
        ]
        metrics = {
            "profile": profile,
            "search": {c: float(row[c]) for c in metric_cols},  # type: ignore[arg-type]
            "sources": plan.get("sources", {}),
            "feasible": bool(row["feasible"]),
            "constraints": plan.get("constraints", {}),
        }
        if measured and key in measured:
            metrics["measured"] = dict(measured[key])
        path = Path(run_dir) / "exports" / profile / key
        export_subnet(supernet, arch, path, metrics=metrics, formats=formats or FORMATS)
        log.info("exported %s for %s to %s", key, profile, path)
        out.append(path)
    return out
