"""Feature encoders: how predictors turn architectures into a float matrix.

``onehot`` and ``ordinal`` are the space's own encodings (:meth:`nas.SearchSpace.encode`).
``features`` adds space-specific engineering on top of one-hot, chosen by ``space.meta``:

* NAS-Bench-201 cells: op counts, a path encoding (the op sequence of each of the 4 input →
  output paths), whether the cell is disconnected, the effective (live) op counts, the
  counts of ops whose output reaches the cell output, and the effective depth in convolutions.
* MobileNetV3-style elastic spaces: the per-block multiply-accumulates at the chosen
  resolution (zero for inactive blocks), per-stage sums and totals, the number of active
  blocks and the squared resolution, so that linear models can express cost.

``compact`` is a short cost-oriented vector for latency models: for NAS-Bench-201 the op
counts plus the counts of ops whose output reaches the cell output (runtimes prune the others:
this is what lifts Pixel 3 from τ 0.79 to 0.86); for MobileNetV3 spaces the MACs features
above; otherwise the ordinal encoding.

Everything is vectorised over the ``(n, dims)`` index matrix: no Python loop per arch.

Example:
    >>> X = encode(space, archs, "features")
    >>> X.shape[0] == len(archs)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import product

import numpy as np

from nas.space import ArchConfig, SearchSpace

ENCODERS = ("onehot", "ordinal", "features", "compact", "onehot+ordinal")


def encode(space: SearchSpace, archs: Sequence[ArchConfig], encoder: str = "onehot") -> np.ndarray:
    """The feature matrix of ``archs`` under ``encoder`` (one of :data:`ENCODERS`).

    Raises:
        ValueError: ``encoder`` is unknown.
    """
    if encoder == "onehot":
        return space.encode(archs, "onehot")
    if encoder == "ordinal":
        return space.encode(archs, "ordinal")
    if encoder == "onehot+ordinal":
        return np.hstack([space.encode(archs, "onehot"), space.encode(archs, "ordinal")])
    if encoder == "features":
        idx = space.indices(archs)
        return np.hstack([space.encode_indices(idx), features_function(space)(space, idx)])
    if encoder == "compact":
        return features_function(space, "compact")(space, space.indices(archs))
    raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}")


FeatureFunction = Callable[[SearchSpace, np.ndarray], np.ndarray]


def features_function(space: SearchSpace, kind: str = "features") -> FeatureFunction:
    """The hand-made features of ``space``'s family from an index matrix.

    ``kind``: ``features`` (added to the one-hot encoding) or ``compact`` (used alone).
    """
    family = space.meta.get("family")
    if family == "nb201":
        return nb201_compact if kind == "compact" else nb201_features
    if family == "mobilenetv3" and "resolution" in space.names:
        return mbv3_features
    return _ordinal_features


def _ordinal_features(space: SearchSpace, idx: np.ndarray) -> np.ndarray:
    sizes = np.array([len(c.values) for c in space.choices], dtype=np.float64)
    return np.where(idx >= 0, (idx + 1) / sizes, 0.0)


# ---------------------------------------------------------------- NAS-Bench-201
_NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# input -> output paths of the 4-node cell, as lists of (to, from) edges
_NB201_PATHS = (((3, 0),), ((1, 0), (3, 1)), ((2, 0), (3, 2)), ((1, 0), (2, 1), (3, 2)))


def nb201_features(space: SearchSpace, idx: np.ndarray) -> np.ndarray:
    """Engineered NAS-Bench-201 features for the index matrix ``idx`` (see module doc)."""
    col = _nb201_columns(space)
    n = idx.shape[0]
    none, skip, c1, c3, pool = range(5)
    counts = np.stack([(idx == k).sum(axis=1) for k in range(5)], axis=1).astype(np.float64)
    path_blocks = []
    live = np.zeros((n, len(_NB201_PATHS)), dtype=bool)
    convs_on_path = np.zeros((n, len(_NB201_PATHS)))
    edge_live = np.zeros((n, len(col)), dtype=bool)
    for p, path in enumerate(_NB201_PATHS):
        cols = [col[e] for e in path]
        codes = np.zeros(n, dtype=np.int64)
        for c in cols:
            codes = codes * 5 + idx[:, c]
        block = np.zeros((n, 5 ** len(cols)))
        block[np.arange(n), codes] = 1.0
        path_blocks.append(block)
        live[:, p] = np.all(idx[:, cols] != none, axis=1)
        convs_on_path[:, p] = np.isin(idx[:, cols], (c1, c3)).sum(axis=1)
        for c in cols:
            edge_live[:, c] |= live[:, p]
    disconnected = ~live.any(axis=1)
    eff = np.where(edge_live, idx, -1)
    eff_counts = np.stack([(eff == k).sum(axis=1) for k in (skip, c1, c3, pool)], axis=1)
    c3_on_path = np.stack(
        [(idx[:, [col[e] for e in path]] == c3).sum(axis=1) for path in _NB201_PATHS], axis=1
    )
    depth = np.where(live, convs_on_path, 0).max(axis=1)
    depth3 = np.where(live, c3_on_path, 0).max(axis=1)
    # a live path with no parameterised op is a pure skip/pool route to the output
    shortcut = (live & (convs_on_path == 0)).any(axis=1)
    scalars = np.column_stack(
        [
            disconnected,
            live.sum(axis=1),
            live,
            depth,
            depth3,
            shortcut,
            eff_counts,
            eff_counts[:, 1] + 9 * eff_counts[:, 2],  # conv parameters (1x1 = 1, 3x3 = 9)
        ]
    ).astype(np.float64)
    return np.hstack([counts, *path_blocks, scalars, _nb201_reaching_counts(idx, col)])


def _nb201_columns(space: SearchSpace) -> dict[tuple[int, int], int]:
    names = space.names
    if any(tuple(c.values) != _NB201_OPS for c in space.choices):
        raise ValueError(f"space {space.name!r}: nb201 features need the ops {_NB201_OPS}")
    return {(int(n[1]), int(n.split("from")[1])): i for i, n in enumerate(names)}


def _nb201_reaching_counts(idx: np.ndarray, col: dict[tuple[int, int], int]) -> np.ndarray:
    """Counts of skip/conv1x1/conv3x3/pool ops whose output reaches the cell output."""
    n_nodes = 1 + max(to for to, _ in col)
    reaches = np.zeros((idx.shape[0], n_nodes), dtype=bool)
    reaches[:, -1] = True
    for frm in range(n_nodes - 2, -1, -1):
        for to in range(frm + 1, n_nodes):
            reaches[:, frm] |= reaches[:, to] & (idx[:, col[(to, frm)]] != 0)
    mask = np.stack([reaches[:, to] for (to, _frm) in col], axis=1)
    eff = np.where(mask, idx, -1)
    return np.stack([(eff == k).sum(axis=1) for k in range(1, 5)], axis=1).astype(np.float64)


def nb201_compact(space: SearchSpace, idx: np.ndarray) -> np.ndarray:
    """Op counts (5) and counts of ops reaching the output (4): a latency cost vector."""
    col = _nb201_columns(space)
    counts = np.stack([(idx == k).sum(axis=1) for k in range(5)], axis=1).astype(np.float64)
    return np.hstack([counts, _nb201_reaching_counts(idx, col)])


# ---------------------------------------------------------------- MobileNetV3 style
def _make_divisible(v: np.ndarray, divisor: int = 8) -> np.ndarray:
    out = np.maximum(divisor, (v + divisor / 2) // divisor * divisor)
    return np.where(out < 0.9 * v, out + divisor, out)


def mbv3_features(space: SearchSpace, idx: np.ndarray) -> np.ndarray:
    """Per-block MACs (in millions) at each arch's resolution, per-stage and total sums.

    An inverted-residual block costs ``H_in² c_in m + H_out² m k² + H_out² m c_out`` MACs with
    ``m = make_divisible(c_in * expand)``; inactive blocks cost zero.
    """
    meta = space.meta
    names = space.names
    width = float(meta.get("width_mult", 1.0))
    widths = [int(_make_divisible(np.array([w * width]))[0]) for w in meta["stage_widths"]]
    strides = meta["strides"]
    res_col = names.index("resolution")
    res = np.asarray(space.choices[res_col].values, dtype=np.float64)[idx[:, res_col]]
    size = np.ceil(res / 2)  # after the stride-2 stem
    c_in = float(_make_divisible(np.array([meta["first_block_width"] * width]))[0])
    blocks, stage_sums, active_counts = [], [], []
    for s, (c_out, stride) in enumerate(zip(widths, strides), start=1):
        prefix = f"s{s}."
        max_depth = sum(1 for n in names if n.startswith(prefix) and n.endswith(".kernel"))
        depth_col = names.index(f"{prefix}depth")
        depth = np.asarray(space.choices[depth_col].values)[idx[:, depth_col]]
        stage_total = np.zeros(len(idx))
        for b in range(max_depth):
            k_col = names.index(f"{prefix}b{b}.kernel")
            e_col = names.index(f"{prefix}b{b}.expand")
            k = np.asarray(space.choices[k_col].values, dtype=np.float64)[idx[:, k_col]]
            e = np.asarray(space.choices[e_col].values, dtype=np.float64)[idx[:, e_col]]
            cin = c_in if b == 0 else float(c_out)
            out_size = np.ceil(size / stride) if b == 0 else size
            mid = _make_divisible(cin * e)
            macs = size**2 * cin * mid + out_size**2 * mid * (k**2 + c_out)
            macs = np.where(depth > b, macs, 0.0) / 1e6
            blocks.append(macs)
            stage_total += macs
            if b == 0:
                size = out_size
        c_in = float(c_out)
        stage_sums.append(stage_total)
        active_counts.append(depth.astype(np.float64))
    blocks_m = np.column_stack(blocks)
    stages_m = np.column_stack(stage_sums)
    total = stages_m.sum(axis=1, keepdims=True)
    n_blocks = np.column_stack(active_counts).sum(axis=1, keepdims=True)
    res_sq = (res[:, None] / 224) ** 2
    return np.hstack([blocks_m, stages_m, total, np.log(total), n_blocks, res_sq])


def nb201_path_names() -> list[str]:
    """Column names of the NAS-Bench-201 path encoding (for reports)."""
    out = []
    for path in _NB201_PATHS:
        for combo in product(_NB201_OPS, repeat=len(path)):
            out.append("path" + "".join(f"{to}{frm}" for to, frm in path) + "=" + "/".join(combo))
    return out
