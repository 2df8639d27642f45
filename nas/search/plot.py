"""``pareto.png``: every trial, the Pareto front and the constraint line; the hypervolume curve.

Uses matplotlib's Agg canvas directly (no pyplot state), so it is safe in workers and tests.

Example:
    >>> plot_pareto(result, "runs/demo/search/pixel3/pareto.png")
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from nas.rundir import atomic_write
from nas.search.result import SearchResult


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
    ax.scatter(x[~feas], y[~feas], s=8, c="#cccccc", label="infeasible")
    ax.scatter(x[feas], y[feas], s=8, c="#7aa6d8", label="feasible")
    front = result.pareto
    if len(front):
        order = np.argsort(front[x_name].to_numpy())
        ax.plot(
            front[x_name].to_numpy()[order],
            front[y_name].to_numpy()[order],
            "o-",
            c="#d62728",
            ms=4,
            label="Pareto front",
        )
    for c in result.problem.constraints.items:
        if c.metric == x_name:
            ax.axvline(
                c.limit,
                ls="--",
                c="k",
                lw=1,
                label=f"{c.metric} {'≤' if c.bound == 'upper' else '≥'} {c.limit:g}",
            )
        elif c.metric == y_name:
            ax.axhline(
                c.limit,
                ls="--",
                c="k",
                lw=1,
                label=f"{c.metric} {'≤' if c.bound == 'upper' else '≥'} {c.limit:g}",
            )
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.set_title(f"{result.searcher or 'search'}: {len(result)} trials")
    ax.legend(fontsize=8)
    hv = result.hypervolume_history()
    ax_hv.plot(hv["trials"], hv["hypervolume"], c="#2ca02c")
    ax_hv.set_xlabel("trials")
    ax_hv.set_ylabel("hypervolume (reference: worst trial)")
    ax_hv.set_title("hypervolume")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write(path, lambda f: f.write(buf.getvalue()))
