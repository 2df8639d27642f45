"""``pareto.png``: every trial, the Pareto front and the constraint line; the hypervolume curve.

In a space with a quantization policy (:mod:`nas.quantization`) each trial is coloured by its
precision: the share of its quantized weights stored at low bits (int8), 0 (all float32) to 1
(all int8); a colour bar says so. Uses matplotlib's Agg canvas directly (no pyplot state), so
it is safe in workers and tests.

Example:
    >>> plot_pareto(result, "runs/demo/search/pixel3/pareto.png")
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from nas.rundir import atomic_write
from nas.search.result import SearchResult
from nas.space import ArchConfig, SearchSpace

PRECISION_LABEL = "share of weights at low bits (int8); 0 = all float32"


def low_bit_share(space: SearchSpace, archs: list[ArchConfig]) -> np.ndarray | None:
    """Per arch, the share of its policy's weights quantized below 32 bits (``None`` for a
    space without a quantization policy)."""
    from nas.quantization.space import is_quantized, policy_of
    from nas.quantization.support import FLOAT_BITS, quant_support

    if not is_quantized(space):
        return None
    weights_of = quant_support(space).weights
    out = []
    for arch in archs:
        policy, weights = policy_of(space, arch), weights_of(space, arch)
        total = sum(weights.get(g, 0) for g in policy)
        low = sum(weights.get(g, 0) for g, bits in policy.items() if bits < FLOAT_BITS)
        out.append(low / total if total else 0.0)
    return np.asarray(out, dtype=float)


def plot_pareto(result: SearchResult, path: str | Path) -> Path:
    """Draw the first two objectives (trials, front, constraint) and the hypervolume curve."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = result.problem.objectives.names
    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    ax, ax_hv = fig.subplots(1, 2)
    x_name = names[1] if len(names) > 1 else "iteration"
    y_name = names[0]
    cols = dict(result.columns)
    cols["iteration"] = result.iteration.astype(float)
    x, y = cols[x_name], cols[y_name]
    feas = result.feasible
    share = low_bit_share(result.space, result.archs)
    if share is None:
        ax.scatter(x[~feas], y[~feas], s=8, c="#cccccc", label="infeasible")
        ax.scatter(x[feas], y[feas], s=8, c="#7aa6d8", label="feasible")
    else:
        _precision_scatter(fig, ax, x, y, feas, share)
    front = result.pareto
    if len(front):
        order = np.argsort(front[x_name].to_numpy())
        ax.plot(
            front[x_name].to_numpy()[order],
            front[y_name].to_numpy()[order],
            "o-",
            c="#d62728",
            ms=4 if share is None else 7,
            mfc="#d62728" if share is None else "none",  # open: the precision colour shows
            label="Pareto front",
        )
    _constraint_lines(ax, result, x_name, y_name)
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    if share is not None:
        ax.set_title(f"{result.searcher or 'search'}: {len(result)} trials, by precision")
    else:
        ax.set_title(f"{result.searcher or 'search'}: {len(result)} trials")
    ax.legend(fontsize=8)
    hv = result.hypervolume_history()
    ax_hv.plot(hv["trials"], hv["hypervolume"], "o-", ms=3, c="#2ca02c")
    ax_hv.set_xlabel("trials")
    ax_hv.set_ylabel("hypervolume (reference: worst trial)")
    ax_hv.set_title("hypervolume")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))


def _precision_scatter(fig: Any, ax: Any, x: np.ndarray, y: np.ndarray, feas: np.ndarray,
                       share: np.ndarray) -> None:
    """Trials coloured by their low-bit share (feasible: dots, infeasible: crosses)."""
    style = {"cmap": "viridis", "vmin": 0.0, "vmax": 1.0}
    ax.scatter(x[~feas], y[~feas], s=12, marker="x", linewidths=0.7, c=share[~feas],
               label="infeasible (colour: precision)", **style)
    points = ax.scatter(x[feas], y[feas], s=10, c=share[feas],
                        label="feasible (colour: precision)", **style)
    bar = fig.colorbar(points, ax=ax)
    bar.set_label(PRECISION_LABEL, fontsize=8)


def _constraint_lines(ax: Any, result: SearchResult, x_name: str, y_name: str) -> None:
    """A dashed line at each constraint on a plotted metric."""
    for c in result.problem.constraints.items:
        label = f"{c.metric} {'≤' if c.bound == 'upper' else '≥'} {c.limit:g}"
        if c.metric == x_name:
            ax.axvline(c.limit, ls="--", c="k", lw=1, label=label)
        elif c.metric == y_name:
            ax.axhline(c.limit, ls="--", c="k", lw=1, label=label)
