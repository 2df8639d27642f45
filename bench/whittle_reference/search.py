"""Hypervolume of (validation loss, parameter share) after N evaluations: our multi-objective
searcher (``nsga2``) and ``nas.search``'s default (``evolution``, on the first objective)
against whittle's default (``multi_objective_search``: ``random_search`` through syne-tune),
over the same space of sub-networks whose layers share one head count and MLP ratio (what
whittle's ``set_sub_network`` takes as ints), with the hypervolume of the whole space.

Our trials are measured on our supernet, whittle's on whittle's GPT with the same weights
(their outputs are equal: bench_whittle.py's first table). Used by
``bench/bench_whittle.py --search-budget N``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.search import search
from nas.search.pareto import hypervolume
from nas.space import ArchConfig, SearchSpace, choice
from nas.tasks import DataSpec, create_task
from search_spaces.transformer_layers import layer_specs

DIMS = ("depth", "embed_dim", "heads", "mlp_ratio")
# nsga2: our multi-objective searcher; evolution: the default of nas.search (first objective)
SEARCHERS = ("nsga2", "evolution")


def uniform_space(space: SearchSpace) -> SearchSpace:
    """The four shared dimensions of a transformer space's uniform sub-networks."""
    values = [space["depth"].values, space["embed_dim"].values, space["l0.heads"].values,
              space["l0.mlp_ratio"].values]
    return SearchSpace(f"{space.name}_uniform", [choice(n, v) for n, v in zip(DIMS, values)])


def full_arch(space: SearchSpace, values: dict[str, Any]) -> ArchConfig:
    """The arch of ``space`` with ``values``' depth, width, heads and ratio in every layer."""
    out = space.largest().to_dict()
    out["depth"], out["embed_dim"] = int(values["depth"]), int(values["embed_dim"])
    for name in out:
        if name.endswith(".heads"):
            out[name] = int(values["heads"])
        elif name.endswith(".mlp_ratio"):
            out[name] = float(values["mlp_ratio"])
    return space.arch(out)


class Measure:
    """Validation loss (mean cross entropy over a fixed set of windows) and parameter share."""

    def __init__(self, supernet: Any, windows: int = 128) -> None:
        self.supernet = supernet
        _, val = create_task("language_modelling").load(DataSpec(data="pydoc", seq_len=64))
        self.x, self.y = val.batch(np.arange(min(windows, len(val))))
        self.full = self.params(supernet.space.largest())

    def params(self, arch: ArchConfig) -> int:
        return sum(s.params() for s in layer_specs(self.supernet.space, arch, 256))

    @torch.no_grad()
    def loss(self, forward: Any) -> float:
        logits = forward(self.x)
        return float(F.cross_entropy(logits.flatten(0, 1), self.y.flatten()))


def compare_search(supernet: Any, model: Any, budget: int, seeds: int = 1) -> None:
    """Run both searchers for ``budget`` evaluations with each of ``seeds`` seeds; print
    their hypervolumes and that of every sub-network of the space (the most there is)."""
    from bench_whittle import set_whittle
    from syne_tune.config_space import choice as st_choice
    from whittle.search import multi_objective_search

    measure, space = Measure(supernet.eval()), supernet.space
    small = uniform_space(space)

    def ours(archs: list[ArchConfig]) -> list[dict[str, float]]:
        rows = []
        for a in archs:
            arch = full_arch(space, a.to_dict())
            supernet.set_active(arch)
            rows.append({"loss": measure.loss(supernet),
                         "params": measure.params(arch) / measure.full})
        return rows

    def theirs(config: dict[str, Any]) -> tuple[float, float]:
        arch = full_arch(space, config)
        set_whittle(model, supernet, arch)
        return measure.loss(model.eval()), measure.params(arch) / measure.full

    reference = np.array([math.log(256), 1.0 + 1e-9])  # a uniform guess, the full model's size
    config_space = {n: st_choice(list(small[n].values)) for n in DIMS}
    everything = ours([small.arch(dict(zip(DIMS, combo)))
                       for combo in itertools.product(*(small[n].values for n in DIMS))])
    print(f"\nhypervolume of (val loss, params share) after {budget} evaluations "
          f"(space of {small.size()} uniform sub-networks; reference {reference.round(3)})")
    print(f"  all {len(everything)} sub-networks: "
          f"{hypervolume(np.array([[r['loss'], r['params']] for r in everything]), reference):.4f}")
    print(f"{'seed':>6}" + "".join(f"{'ours ' + s:>18}" for s in SEARCHERS)
          + f"{'whittle random':>18}")
    for seed in range(seeds):
        row = []
        for searcher in SEARCHERS:
            result = search(small, ours, objectives={"loss": "min", "params": "min"},
                            searcher=searcher, budget=budget, seed=seed)
            row.append(np.stack([result.columns["loss"], result.columns["params"]], axis=1))
        found = multi_objective_search(theirs, config_space, num_samples=budget, seed=seed,
                                       verbose=False)
        row.append(found["costs"])
        print(f"{seed:>6}" + "".join(f"{hypervolume(f, reference):>18.4f}" for f in row))
    distinct = len({tuple(sorted(c.items())) for c in found["configs"]})
    print(f"  ours: {budget} distinct trials each; whittle: {distinct} distinct of {budget} "
          "(last seed)")
