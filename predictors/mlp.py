"""Once-for-All's accuracy predictor recipe: one-hot input, MLP 400-400-400, ReLU, Adam.

As in OFA, the network predicts the offset from a base value (the mean target of the training
set: "base acc centring"), and inputs/targets are standardised. Training uses torch (CPU).

Prediction is built for searches that score 10⁵-10⁶ candidates: float32 under
``torch.inference_mode``, in chunks of :data:`CHUNK_PER_THREAD` rows per torch thread
(``torch.get_num_threads()`` is respected), with the input standardisation folded into the
first layer. With a one-hot-led
encoder (``onehot``, ``features``, ``onehot+ordinal``) the first layer is not a matrix product
with a one-hot matrix but a gather-sum of weight rows (``embedding_bag``) straight from the
index matrix, and :meth:`MLPPredictor.predict_indices` takes index rows without building
``ArchConfig`` objects.

Example:
    >>> p = MLPPredictor(space, epochs=300, seed=0).fit(archs, acc)
    >>> p.predict(archs[:5])
    >>> p.predict_indices(space.indices(archs[:5]))   # the same numbers
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas.errors import ConfigError
from nas.space import SearchSpace
from predictors.base import BasePredictor, State
from predictors.encoding import ONEHOT_LED, dense_part, onehot_columns, onehot_width

CHUNK_PER_THREAD = 4096
"""Rows per forward chunk and torch thread at prediction time (activations stay in cache)."""
MAX_CHUNK = 16384


@dataclass(frozen=True)
class _Inference:
    """The fitted network, ready for fast float32 prediction."""

    first: torch.Tensor  # (n_features, h1): the first layer on raw (unstandardised) inputs
    first_gather: torch.Tensor | None  # (onehot width + 1, h1): one-hot rows and a zero row
    first_rest: torch.Tensor | None  # (n_features - onehot width, h1), or None
    first_bias: torch.Tensor
    weights: tuple[torch.Tensor, ...]  # the later layers, (in, out)
    biases: tuple[torch.Tensor, ...]


class MLPPredictor(BasePredictor):
    """A multi-layer perceptron regressor (OFA's accuracy predictor).

    Args:
        space: the search space.
        encoder: feature encoder (OFA uses ``onehot``).
        hidden: hidden layer widths.
        epochs: full passes over the training set.
        lr: Adam learning rate.
        weight_decay: Adam L2 penalty.
        batch_size: mini-batch size.
        seed: seeds initialisation and shuffling (no global RNG is touched).
        log_target: fit ``log(y)``.
    """

    name = "mlp"

    def __init__(
        self,
        space: SearchSpace,
        *,
        encoder: str = "onehot",
        hidden: tuple[int, ...] | list[int] = (400, 400, 400),
        epochs: int = 300,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        seed: int = 0,
        log_target: bool = False,
    ) -> None:
        super().__init__(space, encoder=encoder, log_target=log_target)
        hidden = tuple(int(h) for h in hidden)
        if not hidden or any(h < 1 for h in hidden):
            raise ConfigError(f"hidden must be positive layer widths, got {hidden}")
        for field, value in (("epochs", epochs), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ConfigError(f"{field} must be >= 1, got {value}")
        if lr <= 0:
            raise ConfigError(f"lr must be > 0, got {lr}")
        self.hidden = hidden
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self._weights: list[np.ndarray] = []
        self._biases: list[np.ndarray] = []
        self._x_mean = np.zeros(0)
        self._x_scale = np.ones(0)
        self._base = 0.0
        self._y_scale = 1.0
        self._inference: _Inference | None = None

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "hidden": list(self.hidden),
            "epochs": self.epochs,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        from torch import nn

        self._x_mean = X.mean(axis=0)
        std = X.std(axis=0)
        self._x_scale = np.where(std > 0, std, 1.0)
        self._base = float(y.mean())
        self._y_scale = float(y.std()) or 1.0
        gen = torch.Generator().manual_seed(self.seed)
        sizes = [X.shape[1], *self.hidden, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            linear = nn.Linear(a, b)
            bound = 1.0 / np.sqrt(a)
            with torch.no_grad():
                linear.weight.uniform_(-bound, bound, generator=gen)
                linear.bias.uniform_(-bound, bound, generator=gen)
            layers.append(linear)
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        net = nn.Sequential(*layers)
        xt = torch.as_tensor((X - self._x_mean) / self._x_scale, dtype=torch.float32)
        yt = torch.as_tensor((y - self._base) / self._y_scale, dtype=torch.float32)[:, None]
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs)
        n = len(xt)
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, self.batch_size):
                batch = order[start : start + self.batch_size]
                opt.zero_grad()
                loss = nn.functional.mse_loss(net(xt[batch]), yt[batch])
                loss.backward()
                opt.step()
            sched.step()
        linears = [m for m in net if isinstance(m, nn.Linear)]
        self._weights = [m.weight.detach().numpy().T.astype(np.float32) for m in linears]
        self._biases = [m.bias.detach().numpy().astype(np.float32) for m in linears]
        self._inference = None

    def _predict(self, X: np.ndarray) -> np.ndarray:
        net = self._prepared()
        return self._run(len(X), lambda s, e: torch.mm(_f32(X[s:e]), net.first))

    def _predict_idx(self, idx: np.ndarray) -> np.ndarray:
        if self.encoder not in ONEHOT_LED:
            return super()._predict_idx(idx)
        self._check_fitted(None)
        net = self._prepared()
        gather, rest_w = net.first_gather, net.first_rest
        assert gather is not None
        cols = torch.from_numpy(onehot_columns(self.space, idx))
        rest = dense_part(self.space, idx, self.encoder)
        if cols.shape[1] == 0 or (rest_w is None) != (rest is None):
            raise ConfigError(f"{type(self).__name__}: encoder and fitted network disagree")

        def first_layer(start: int, end: int) -> torch.Tensor:
            h = torch.nn.functional.embedding_bag(cols[start:end], gather, mode="sum")
            if rest is not None and rest_w is not None:
                h.addmm_(_f32(rest[start:end]), rest_w)
            return h

        return self._output(self._run(len(idx), first_layer))

    def _run(self, n: int, first_layer: Callable[[int, int], torch.Tensor]) -> np.ndarray:
        """The network on ``n`` rows; ``first_layer(start, end)`` gives the first layer's
        pre-activation (without bias) for rows ``start:end``."""
        net = self._prepared()
        out = np.empty(n, dtype=np.float32)
        chunk = min(MAX_CHUNK, CHUNK_PER_THREAD * max(1, torch.get_num_threads()))
        with torch.inference_mode():
            for start in range(0, n, chunk):
                end = min(start + chunk, n)
                h = first_layer(start, end).add_(net.first_bias).relu_()
                last = len(net.weights) - 1
                for i, (w, b) in enumerate(zip(net.weights, net.biases)):
                    h = torch.addmm(b, h, w)
                    if i < last:
                        h.relu_()
                out[start:end] = h[:, 0].numpy()
        return self._base + self._y_scale * out.astype(np.float64)

    def _prepared(self) -> _Inference:
        """The fitted weights as float32 tensors, standardisation folded into layer one."""
        if self._inference is None:
            w0 = self._weights[0].astype(np.float64)
            first = w0 / self._x_scale[:, None]
            bias = self._biases[0].astype(np.float64) - (self._x_mean / self._x_scale) @ w0
            gather = rest = None
            if self.encoder in ONEHOT_LED:
                width = onehot_width(self.space)
                zero = np.zeros((1, first.shape[1]))
                gather = _tensor(np.vstack([first[:width], zero]))
                if first.shape[0] > width:
                    rest = _tensor(first[width:])
            self._inference = _Inference(
                first=_tensor(first),
                first_gather=gather,
                first_rest=rest,
                first_bias=_tensor(bias),
                weights=tuple(_tensor(w) for w in self._weights[1:]),
                biases=tuple(_tensor(b) for b in self._biases[1:]),
            )
        return self._inference

    def _get_state(self) -> State:
        arrays = {"x_mean": self._x_mean, "x_scale": self._x_scale}
        for i, (w, b) in enumerate(zip(self._weights, self._biases)):
            arrays[f"w{i}"] = w
            arrays[f"b{i}"] = b
        return {"base": self._base, "y_scale": self._y_scale, "layers": len(self._weights)}, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        n = int(meta["layers"])
        self._weights = [np.asarray(arrays[f"w{i}"], dtype=np.float32) for i in range(n)]
        self._biases = [np.asarray(arrays[f"b{i}"], dtype=np.float32) for i in range(n)]
        self._x_mean = np.asarray(arrays["x_mean"])
        self._x_scale = np.asarray(arrays["x_scale"])
        self._base = float(meta["base"])
        self._y_scale = float(meta["y_scale"])
        self._inference = None


def _f32(X: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A C-contiguous float32 copy (row gathers and GEMMs want contiguous rows)."""
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C"))
