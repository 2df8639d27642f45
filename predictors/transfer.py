"""A new device from few measurements, with other devices' latency models as prior (HELP-style).

Latency rankings transfer across devices: most devices are close to a non-negative mix of
others, but a device nobody tuned for may rank unlike all of them. :class:`TransferPredictor`
gets fitted predictors of *other* devices (``priors``) and a handful (~20) of measured
architectures on the new one, and compares by leave-one-out (10-fold beyond 30 rows) what
each fit explains of the measured rows:

* ``prior``: non-negative least squares on the priors' predictions (plus an intercept): a
  prior weighted 0 is dropped; ``prior:selected`` does the same on the priors that forward
  selection keeps (each added only while it lowers the out-of-fold error: with 20 rows a
  mix of every prior can fit noise);
* ``own``: a linear model on the device's own features alone (no prior), on each of
  ``encoders`` (``compact`` cost counts, ``onehot`` per-position choices): robust (Huber)
  where the rows outnumber the features, else ridge with a penalty chosen by GCV;
* ``both``: the selected priors' mix, plus a ridge model of its residual on one of
  ``encoders`` (penalty chosen by generalised cross-validation).

The candidates whose leave-one-out Kendall τ is within one paired bootstrap standard error
of the best τ are ties (at 20 rows τ alone is too noisy to rank by: its bootstrap spread is
about 0.1; but it keeps out fits that predict the mean well and the order badly). Among
ties, a fit with fewer coefficients than training rows wins over one with more (an
underdetermined fit's leave-one-out score is a lucky draw as often as not: one-hot features
on 20 rows collapsed to τ 0.05 on unseen OFA subnets while scoring best in leave-one-out),
then the lowest leave-one-out mean absolute error (what the fit explains of the measured
rows). When no prior-based fit wins, the own fit is used: a prior is not trusted because it
is there. :attr:`TransferPredictor.evidence` records the table, how much each prior alone
explains (and none: the ``own`` rows), the weights and the priors used, and the advice on
measuring more.

Example:
    >>> priors = [latency_predictor(load_profile(n), space) for n in others]
    >>> p = TransferPredictor(space, priors=priors, prior_names=others).fit(archs20, latency20)
    >>> p.choice, p.evidence["used"]    # which fit leave-one-out preferred, which priors
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nas.errors import ConfigError
from nas.hardware.profile import LatencyModel
from nas.space import ArchConfig, SearchSpace
from predictors.base import BasePredictor, State
from predictors.encoding import ENCODERS, encode_indices
from predictors.learning_curve import MeasureAdvice, advise, learning_curve
from predictors.metrics import scores
from predictors.model_selection import bootstrap_taus, cross_val_predict, tied_with_best
from predictors.transfer_fits import Fit, _fit_both, _fit_own, _fit_prior

CHOICES = ("prior", "own", "both")
AUTO_ENCODERS = ("compact", "onehot")
MAX_LOO = 30

Spec = tuple[str, "str | None", tuple[int, ...]]
"""A candidate fit: its kind (one of :data:`CHOICES`), own encoder, and prior columns."""


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y)))


def _fold_rows(n: int) -> float:
    """Training rows per fold of the cross-validation :meth:`TransferPredictor._oof` runs."""
    return n - 1.0 if n <= MAX_LOO else 0.9 * n


class TransferPredictor(BasePredictor):
    """Latency on a new device from few measurements and other devices' predictors.

    Args:
        space: the search space.
        priors: fitted predictors of other devices (same space).
        prior_names: a name per prior (profile names) for :attr:`evidence`.
        encoder: the device's own features: ``"auto"`` compares :data:`AUTO_ENCODERS`, or
            one of ``predictors.ENCODERS``.
        choice: force one of :data:`CHOICES` instead of choosing by leave-one-out.
        log_target: fit ``log(y)``.
    """

    name = "transfer"

    def __init__(
        self,
        space: SearchSpace,
        *,
        priors: Sequence[BasePredictor] = (),
        prior_names: Sequence[str] = (),
        encoder: str = "auto",
        choice: str | None = None,
        log_target: bool = False,
    ) -> None:
        if encoder != "auto" and encoder not in ENCODERS:
            raise ConfigError(f"encoder must be 'auto' or one of {list(ENCODERS)}, got {encoder!r}")
        self.encoders = AUTO_ENCODERS if encoder == "auto" else (encoder,)
        super().__init__(space, encoder=self.encoders[0], log_target=log_target)
        self.encoder_option = encoder
        if choice is not None and choice not in CHOICES:
            raise ConfigError(f"choice must be one of {list(CHOICES)} or None, got {choice!r}")
        _check_priors(space, priors)
        if priors and prior_names and len(prior_names) != len(priors):
            raise ConfigError(f"got {len(priors)} priors but {len(prior_names)} prior_names")
        self.priors = list(priors)
        # names without priors: a saved predictor being loaded (its priors come in set_state)
        self.prior_names = [str(n) for n in prior_names] or [
            f"prior{i}" for i in range(len(priors))
        ]
        self.forced = choice
        self.choice: str | None = None
        self.own_encoder: str | None = None
        self.evidence: dict[str, Any] = {}
        self._coef = np.zeros(0)
        self._intercept = 0.0
        self._rows = 0

    def config(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder_option,
            "log_target": self.log_target,
            "choice": self.forced,
            "prior_names": list(self.prior_names),
        }

    def fit(self, archs: Sequence[ArchConfig], y: Any) -> TransferPredictor:
        """Fit on the new device's measured ``archs`` (as few as ~20) and latencies ``y``."""
        super().fit(archs, y)
        return self

    @property
    def used_priors(self) -> list[str]:
        """Names of the priors the fitted model weights above zero."""
        return list(self.evidence.get("used", []))

    # ---------------------------------------------------------------- features
    def _encode_idx(self, idx: np.ndarray) -> np.ndarray:
        """The priors' predictions, then the own features of each encoder."""
        blocks = [encode_indices(self.space, idx, e) for e in self.encoders]
        if self.priors:
            blocks.insert(0, np.column_stack([p.predict_indices(idx) for p in self.priors]))
        return np.hstack(blocks)

    def _slices(self, X: np.ndarray) -> dict[str, slice]:
        """Column range of each encoder's block (after the priors' columns)."""
        idx = self.space.mask_inactive(np.zeros((1, len(self.space.choices)), dtype=np.int64))
        out, start = {}, len(self.priors)
        for e in self.encoders:
            width = encode_indices(self.space, idx, e).shape[1]
            out[e] = slice(start, start + width)
            start += width
        if start != X.shape[1]:
            raise ConfigError(f"transfer features have {X.shape[1]} columns, expected {start}")
        return out

    def _candidates(self, X: np.ndarray, y: np.ndarray) -> dict[str, Spec]:
        """Candidate name -> (kind, own encoder, prior columns)."""
        k = len(self.priors)
        kinds = [self.forced] if self.forced else (list(CHOICES) if k else ["own"])
        every = tuple(range(k))
        chosen = self._forward_priors(X, y) if k else ()
        out: dict[str, Spec] = {}
        if "prior" in kinds:
            out["prior"] = ("prior", None, every)
            if chosen != every:
                out["prior:selected"] = ("prior", None, chosen)
        for e in self.encoders:
            if "own" in kinds:
                out[f"own:{e}"] = ("own", e, ())
            if "both" in kinds:
                out[f"both:{e}"] = ("both", e, chosen)
        return out

    def _forward_priors(self, X: np.ndarray, y: np.ndarray) -> tuple[int, ...]:
        """Priors added one at a time while the mix's out-of-fold MAE drops (by 1 %)."""
        chosen: list[int] = []
        best = np.inf
        while len(chosen) < len(self.priors):
            trial = {
                i: _mae(y, self._oof(("prior", None, (*chosen, i)), X, y))
                for i in range(len(self.priors)) if i not in chosen
            }
            i = min(trial, key=lambda j: (trial[j], j))
            if trial[i] >= 0.99 * best:
                break
            chosen.append(i)
            best = trial[i]
        return tuple(chosen)

    # ---------------------------------------------------------------- fitting
    def _design(self, X: np.ndarray, spec: Spec) -> np.ndarray:
        _, enc, cols = spec
        parts = [X[:, list(cols)]]
        if enc is not None:
            parts.append(X[:, self._slices(X)[enc]])
        return np.hstack(parts)

    def _fit_spec(self, spec: Spec, A: np.ndarray, y: np.ndarray) -> Fit:
        kind, _, cols = spec
        if kind == "prior":
            return _fit_prior(A, y)
        if kind == "own":
            # Huber where the measured rows outnumber the features (decided on all of them,
            # so that every fold and subset fits the same kind of model)
            return _fit_own(A, y, robust=A.shape[1] < self._rows - 1)
        return _fit_both(A, y, len(cols))

    def _oof(self, spec: Spec, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Out-of-fold predictions of ``spec`` (leave-one-out up to :data:`MAX_LOO` rows)."""
        folds = len(y) if len(y) <= MAX_LOO else 10
        A = self._design(X, spec)

        def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
            coef, b = self._fit_spec(spec, A[train], y[train])
            return np.asarray(A[test] @ coef + b)

        return cross_val_predict(fit_predict, len(y), folds=folds, seed=0)[0]

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.forced in ("prior", "both") and not self.priors:
            raise ConfigError(f"choice={self.forced!r} needs at least one prior predictor")
        self._rows = len(y)
        with threadpool_limits(limits=1):  # many tiny fits: BLAS threads only contend
            candidates = self._candidates(X, y)
            table = self._score(candidates, X, y)
            spec = candidates[table[0]["candidate"]]
            coef, self._intercept = self._fit_spec(spec, self._design(X, spec), y)
            advice = self._advice(spec, X, y, table[0])
            alone = self._prior_alone(X, y)
        self.choice, self.own_encoder = spec[0], spec[1]
        self._coef = self._full_coef(X, spec, coef)
        self.evidence = self._evidence(y, table, alone, advice)

    def _full_coef(self, X: np.ndarray, spec: Spec, coef: np.ndarray) -> np.ndarray:
        """The chosen fit's coefficients placed on every column of the features."""
        _, enc, cols = spec
        full = np.zeros(X.shape[1])
        full[list(cols)] = coef[: len(cols)]
        if enc is not None:
            full[self._slices(X)[enc]] = coef[len(cols) :]
        return full

    def _score(
        self, candidates: dict[str, Spec], X: np.ndarray, y: np.ndarray
    ) -> list[dict[str, Any]]:
        """Leave-one-out scores per candidate, best first (see the module docstring)."""
        rows: list[dict[str, Any]] = []
        boot: dict[str, np.ndarray] = {}
        for name, spec in candidates.items():
            oof = self._oof(spec, X, y)
            boot[name] = bootstrap_taus(y, oof[None, :], np.random.default_rng(0))
            coefficients = self._design(X[:1], spec).shape[1] + 1
            rows.append({
                "candidate": name, **scores(y, oof), "mae": _mae(y, oof),
                "kendall_tau_std": float(np.std(boot[name])),
                "priors": [self.prior_names[i] for i in spec[2]],
                "coefficients": coefficients,
                "determined": coefficients < _fold_rows(len(y)),
            })
        taus = {str(r["candidate"]): float(r["kendall_tau"]) for r in rows}
        tied = tied_with_best(taus, boot, band=1.0)
        for r in rows:
            r["tied"] = r["candidate"] in tied
        return sorted(rows, key=lambda r: (not r["tied"], not r["determined"], r["mae"]))

    # ---------------------------------------------------------------- evidence
    def _prior_alone(self, X: np.ndarray, y: np.ndarray) -> dict[str, dict[str, float]]:
        """How much each prior alone explains (leave-one-out of ``a + b · prior``)."""
        out = {}
        for i, name in enumerate(self.prior_names[: len(self.priors)]):
            oof = self._oof(("prior", None, (i,)), X, y)
            s = scores(y, oof)
            out[name] = {"kendall_tau": s["kendall_tau"], "rmse": s["rmse"], "mae": _mae(y, oof)}
        return out

    def _evidence(
        self, y: np.ndarray, table: list[dict[str, Any]], alone: dict[str, dict[str, float]],
        advice: MeasureAdvice,
    ) -> dict[str, Any]:
        k = len(self.priors)
        weights = self._coef[:k]
        return {
            "method": "leave-one-out" if len(y) <= MAX_LOO else "10-fold cross-validation",
            "n": len(y),
            "ranking": "kendall_tau; ties (within 1 paired bootstrap standard error) by "
            "determined (fewer coefficients than rows), then mae",
            "chosen": table[0]["candidate"],
            "table": table,
            "priors_alone": alone,
            "weights": {n: float(w) for n, w in zip(self.prior_names, weights)},
            "used": [n for n, w in zip(self.prior_names, weights) if w > 0],
            "fallback": self.choice == "own" and k > 0,
            "advice": advice.to_dict(),
        }

    def _advice(
        self, spec: Spec, X: np.ndarray, y: np.ndarray, best: dict[str, Any]
    ) -> MeasureAdvice:
        A = self._design(X, spec)

        def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
            coef, b = self._fit_spec(spec, A[train], y[train])
            return np.asarray(A[test] @ coef + b)

        curve = learning_curve(fit_predict, y, fractions=(0.4, 0.6, 0.8), folds=5, seed=0)
        curve.append((_fold_rows(len(y)), best["kendall_tau"]))
        return advise(curve, n=len(y), tau=best["kendall_tau"], tau_std=best["kendall_tau_std"])

    def latency_model(self) -> LatencyModel:
        """This fitted transfer as a profile's :class:`nas.hardware.LatencyModel`.

        ``validation`` holds the chosen fit's leave-one-out scores; ``selection`` the
        :attr:`evidence` (candidates, priors used, advice).
        """
        from predictors.io import predictor_to_json

        self._check_fitted(None)
        best, n = self.evidence["table"][0], int(self.evidence["n"])
        validation = {k: float(best[k]) for k in ("kendall_tau", "spearman", "rmse", "mape")}
        n_train = _fold_rows(n)
        return LatencyModel(
            space=self.space.name, fingerprint=self.space.fingerprint(),
            predictor=predictor_to_json(self),
            validation={**validation, "kendall_tau_std": float(best["kendall_tau_std"]),
                        "n_train": n_train, "n_test": float(n)},
            selection=dict(self.evidence),
        )

    # ---------------------------------------------------------------- predicting, state
    def _predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self._coef + self._intercept

    def _get_state(self) -> State:
        meta: dict[str, Any] = {
            "choice": self.choice,
            "own_encoder": self.own_encoder,
            "intercept": self._intercept,
            "evidence": self.evidence,
            "priors": [],
        }
        arrays: dict[str, np.ndarray] = {"coef": self._coef}
        from predictors.io import predictor_to_dict

        for i, prior in enumerate(self.priors):
            p_meta, p_arrays = predictor_to_dict(prior)
            meta["priors"].append(p_meta)
            arrays.update({f"p{i}.{k}": v for k, v in p_arrays.items()})
        return meta, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        from predictors.io import predictor_from_dict

        self.priors = []
        for i, p_meta in enumerate(meta.get("priors", [])):
            prefix = f"p{i}."
            sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            self.priors.append(predictor_from_dict(p_meta, sub, self.space))
        if len(self.prior_names) != len(self.priors):
            self.prior_names = [f"prior{i}" for i in range(len(self.priors))]
        self.choice = meta["choice"]
        self.own_encoder = meta.get("own_encoder")
        self.evidence = dict(meta.get("evidence", {}))
        self._intercept = float(meta["intercept"])
        self._coef = np.asarray(arrays["coef"], dtype=np.float64)


def _check_priors(space: SearchSpace, priors: Sequence[BasePredictor]) -> None:
    for i, prior in enumerate(priors):
        if not isinstance(prior, BasePredictor) or not prior.fitted:
            raise ConfigError(f"priors[{i}] must be a fitted predictor")
        if prior.space.name != space.name:
            raise ConfigError(
                f"priors[{i}] predicts space {prior.space.name!r}, not {space.name!r}"
            )
