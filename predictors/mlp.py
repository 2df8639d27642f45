"""Once-for-All's accuracy predictor recipe: one-hot input, MLP 400-400-400, ReLU, Adam.

As in OFA, the network predicts the offset from a base value (the mean target of the training
set: "base acc centring"), and inputs/targets are standardised. Training uses torch (CPU);
prediction is a numpy matrix chain, so it is fast and needs no torch at search time.

Example:
    >>> p = MLPPredictor(space, epochs=300, seed=0).fit(archs, acc)
    >>> p.predict(archs[:5])
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from nas.space import SearchSpace
from predictors.base import BasePredictor, State


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
            raise ValueError(f"hidden must be positive layer widths, got {hidden}")
        for field, value in (("epochs", epochs), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"{field} must be >= 1, got {value}")
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
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
        import torch
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

    def _predict(self, X: np.ndarray) -> np.ndarray:
        h = ((X - self._x_mean) / self._x_scale).astype(np.float32)
        for i, (w, b) in enumerate(zip(self._weights, self._biases)):
            h = h @ w + b
            if i < len(self._weights) - 1:
                np.maximum(h, 0.0, out=h)
        return self._base + self._y_scale * h[:, 0].astype(np.float64)

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
