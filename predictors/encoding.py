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
:func:`arch_indices` builds that matrix from ``ArchConfig`` objects (one C-level pass over
their stored positions); :func:`check_indices` validates a matrix a searcher holds and marks
its inactive dimensions, so that :func:`encode_indices` and ``predict_indices`` of the
predictors skip ``ArchConfig`` objects altogether.

Example:
    >>> X = encode(space, archs, "features")
    >>> X.shape[0] == len(archs)
    True
    >>> np.array_equal(encode_indices(space, space.indices(archs), "features"), X)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, product
from operator import attrgetter

import numpy as np

from nas.errors import ConfigError
from nas.space import ArchConfig, InvalidArchError, SearchSpace

ENCODERS = ("onehot", "ordinal", "features", "compact", "onehot+ordinal")


_positions = attrgetter("positions")
_space_of = attrgetter("space")


def encode(space: SearchSpace, archs: Sequence[ArchConfig], encoder: str = "onehot") -> np.ndarray:
    """The feature matrix of ``archs`` under ``encoder`` (one of :data:`ENCODERS`).

    Raises:
        ValueError: ``encoder`` is unknown, or an arch is not of ``space``.
    """
    _check_encoder(encoder)
    return encode_indices(space, arch_indices(space, archs), encoder)


def encode_indices(space: SearchSpace, idx: np.ndarray, encoder: str = "onehot") -> np.ndarray:
    """:func:`encode` of an index matrix whose inactive positions are -1.

    ``idx`` is what :meth:`nas.SearchSpace.indices` or :func:`check_indices` returns.
    """
    _check_encoder(encoder)
    if encoder in ("onehot", "ordinal"):
        return space.encode_indices(idx, encoder)  # type: ignore[arg-type]
    if encoder == "onehot+ordinal":
        onehot = space.encode_indices(idx, "onehot")
        return np.hstack([onehot, space.encode_indices(idx, "ordinal")])
    if encoder == "features":
        return np.hstack([space.encode_indices(idx), features_function(space)(space, idx)])
    return features_function(space, "compact")(space, idx)


def dense_part(space: SearchSpace, idx: np.ndarray, encoder: str) -> np.ndarray | None:
    """The columns of ``encoder`` that follow its leading one-hot block (``None``: none).

    For the encoders that start with the one-hot block (``onehot``, ``features``,
    ``onehot+ordinal``) a model can gather the one-hot part (see :func:`onehot_columns`) and
    multiply only this dense rest.

    Raises:
        ValueError: ``encoder`` does not start with the one-hot block.
    """
    if encoder == "onehot":
        return None
    if encoder == "onehot+ordinal":
        return space.encode_indices(idx, "ordinal")
    if encoder == "features":
        return features_function(space)(space, idx)
    raise ConfigError(f"encoder {encoder!r} does not start with the one-hot block")


ONEHOT_LED = ("onehot", "features", "onehot+ordinal")
"""Encoders whose first columns are the space's one-hot encoding."""


def onehot_width(space: SearchSpace) -> int:
    """Number of one-hot columns of ``space`` (one per dimension and value)."""
    return sum(len(c.values) for c in space.choices)


def onehot_columns(space: SearchSpace, idx: np.ndarray) -> np.ndarray:
    """The one-hot column of each (row, dimension) of ``idx``; inactive ones point one past
    the last column (:func:`onehot_width`), so a model can gather from a weight matrix with a
    zero row appended instead of multiplying a one-hot matrix."""
    offsets = np.cumsum([0] + [len(c.values) for c in space.choices[:-1]], dtype=np.int64)
    return np.where(idx >= 0, idx + offsets, onehot_width(space))


def arch_indices(space: SearchSpace, archs: Sequence[ArchConfig]) -> np.ndarray:
    """:meth:`nas.SearchSpace.indices` (inactive positions -1), built in one pass.

    Raises:
        ValueError: an element is not an ``ArchConfig`` of ``space``.
    """
    n, d = len(archs), len(space.choices)
    try:
        spaces = set(map(_space_of, archs))
    except AttributeError:
        spaces = set()
    if spaces - {space.name} or len(spaces) != min(n, 1):
        bad = next((a for a in archs if not isinstance(a, ArchConfig)), None)
        if bad is not None:
            raise ConfigError(f"archs must be ArchConfig objects, got {type(bad).__name__}")
        other = sorted(spaces - {space.name})[0]
        raise ConfigError(f"architecture of space {other!r} given for space {space.name!r}")
    try:  # positions below 256 (every shipped space): one C-level pass through bytes
        flat = np.frombuffer(bytearray(chain.from_iterable(map(_positions, archs))), np.uint8)
    except ValueError:
        flat = np.fromiter(chain.from_iterable(map(_positions, archs)), np.int64)
    if flat.size != n * d:
        raise ConfigError(f"architectures of space {space.name!r} need {d} positions each")
    return space.mask_inactive(flat.astype(np.int64).reshape(n, d))


def check_indices(space: SearchSpace, idx: np.ndarray | Sequence[Sequence[int]]) -> np.ndarray:
    """Validate an index matrix ``(n, dims)`` of value positions and mark inactive ones -1.

    Rows may come from :meth:`nas.SearchSpace.indices` (inactive positions already -1) or
    hold a position for every dimension, as :meth:`nas.SearchSpace.from_index_matrix` takes
    them. Returns a new int64 matrix; ``idx`` is not modified.

    Raises:
        ValueError: wrong shape, non-integer values or positions out of range.
    """
    arr = np.asarray(idx)
    d = len(space.choices)
    if arr.ndim != 2 or arr.shape[1] != d:
        raise InvalidArchError(
            f"space {space.name!r} needs an index matrix of shape (n, {d}), got {arr.shape}"
        )
    integral = arr.dtype.kind in "iu" or (
        arr.dtype.kind == "f" and bool(np.array_equal(arr, np.round(arr)))
    )
    if arr.size and not integral:
        raise InvalidArchError(f"index matrix must hold integers, got dtype {arr.dtype}")
    out = arr.astype(np.int64, copy=True)
    sizes = np.array([len(c.values) for c in space.choices], dtype=np.int64)
    bad = (out < -1) | (out >= sizes)
    if bad.any():
        r, i = map(int, np.argwhere(bad)[0])
        raise InvalidArchError(
            f"{space.choices[i].name}: index {out[r, i]} in row {r} is out of range; "
            f"allowed 0..{sizes[i] - 1} (or -1 when inactive)"
        )
    given_inactive = out == -1
    if given_inactive.any():
        # which dimensions the given (active) positions leave active
        active = space.mask_inactive(np.where(given_inactive, 0, out)) >= 0
        wrong = given_inactive & active
        if wrong.any():
            r, i = map(int, np.argwhere(wrong)[0])
            raise InvalidArchError(
                f"{space.choices[i].name}: index -1 (inactive) in row {r}, but the dimension is "
                "active there"
            )
    return space.mask_inactive(out)


def _check_encoder(encoder: str) -> None:
    if encoder not in ENCODERS:
        raise ConfigError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}")


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
    return space.encode_indices(idx, "ordinal")


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
        raise ConfigError(f"space {space.name!r}: nb201 features need the ops {_NB201_OPS}")
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
            macs = np.where(idx[:, k_col] >= 0, macs, 0.0) / 1e6  # inactive blocks cost 0
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
