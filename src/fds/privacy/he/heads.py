"""Heads evaluated on encrypted latents: linear (depth 1) and one-hidden-layer polynomial MLP.

A linear head computes `score_c = Σ_j W[j, c] · enc(z_j) + b_c` on a packed batch with
plaintext-scalar products and additions only (depth 1, no rotations, no relinearization) → `c`
ciphertexts per batch; on per-record ciphertexts it is `enc(z).matmul(W) + b`, which needs Galois
keys for the rotations and costs one matmul per record. Heads come from fitted scikit-learn models
or saved probes, and save as JSON (`to_dict` / `head_from_dict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tenseal as ts

from fds.data.validation import as_matrix
from fds.errors import ConfigError, DataError, ModelFormatError
from fds.privacy.he.keys import available_depth
from fds.privacy.he.wire import EncryptedBatch

__all__ = [
    "LinearHead",
    "PolyMLPHead",
    "head_from_dict",
    "head_from_probe",
    "predictions_from_scores",
]


def predictions_from_scores(scores: Any, classes: Any = None) -> np.ndarray:
    """Class labels from (n, c) scores: argmax, or the sign of a single score for two classes;
    without classes (regression) the scores themselves (1-D for one output)."""
    scores = np.asarray(scores, dtype=np.float64)
    if classes is None:
        return scores[:, 0] if scores.shape[1] == 1 else scores
    classes = np.asarray(classes)
    if scores.shape[1] == 1:
        return classes[(scores[:, 0] > 0).astype(int)]
    return classes[np.argmax(scores, axis=1)]


def _linear_layer(
    vectors: Sequence[ts.CKKSVector], W: np.ndarray, b: np.ndarray
) -> list[ts.CKKSVector]:
    """`out_c = Σ_j W[j, c] · vectors[j] + b[c]` with plaintext scalars (one rescaling)."""
    outputs = []
    for c in range(W.shape[1]):
        acc = None
        for j, vector in enumerate(vectors):
            w = float(W[j, c])
            if w == 0.0:
                continue
            term = vector * w
            acc = term if acc is None else acc.add_(term)
        if acc is None:  # an all-zero column: keep the level of the other outputs
            acc = vectors[0] * 0.0
        outputs.append(acc.add_(float(b[c])))
    return outputs


def _check_batch(batch: EncryptedBatch, n_features: int, depth: int, *, needs_relin: bool) -> None:
    if batch.kind != "latents":
        raise DataError(f"the head evaluates encrypted latents, got {batch.kind}")
    if batch.width != n_features:
        raise DataError(f"the batch has {batch.width} features, the head expects {n_features}")
    ctx = batch.vectors[0].context()
    if available_depth(ctx) < depth:
        raise ConfigError(
            f"the head needs multiplicative depth {depth}, the context allows "
            f"{available_depth(ctx)}: create keys with `fds keys new --depth {depth}`"
        )
    if needs_relin and not ctx.has_relin_keys():
        raise ConfigError(
            "the head multiplies ciphertexts: the public context needs relinearization keys "
            f"(`fds keys new --depth {depth}` includes them)"
        )


def _fold_step(step: Any, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold a preprocessing step x' = (x - mean) / scale applied before (W, b)."""
    from sklearn.preprocessing import StandardScaler

    if not isinstance(step, StandardScaler):
        raise ConfigError(
            f"cannot fold a {type(step).__name__} into a linear head (only StandardScaler)"
        )
    scale = getattr(step, "scale_", None)
    mean = getattr(step, "mean_", None)
    if scale is not None:
        W = W / np.asarray(scale, dtype=np.float64)[:, None]
    if mean is not None and step.with_mean:
        b = b - np.asarray(mean, dtype=np.float64) @ W
    return W, b


@dataclass
class LinearHead:
    """`scores = Z @ W + b` with W (d × c); classification when `classes` is given (argmax, or
    the sign of one score for two classes), else c regression outputs."""

    W: np.ndarray
    b: np.ndarray
    classes: np.ndarray | None = None
    depth: int = 1

    def __post_init__(self) -> None:
        W = np.asarray(self.W, dtype=np.float64)
        if W.ndim == 1:
            W = W[:, None]
        b = np.atleast_1d(np.asarray(self.b, dtype=np.float64))
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ConfigError(f"W {W.shape} and b {b.shape} do not form a linear head")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ConfigError("the linear head holds NaN or inf weights")
        self.W, self.b = W, b
        if self.classes is not None:
            self.classes = np.asarray(self.classes)
            expected = 2 if W.shape[1] == 1 else W.shape[1]
            if len(self.classes) != expected:
                raise ConfigError(f"{len(self.classes)} classes for {W.shape[1]} score(s)")

    @property
    def n_features(self) -> int:
        return self.W.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.W.shape[1]

    @classmethod
    def from_sklearn(cls, estimator: Any) -> LinearHead:
        """From a fitted linear model (LogisticRegression, Ridge, RidgeClassifier, LinearSVC, …)
        or a Pipeline of StandardScaler steps ending in one, the scalers folded into W and b."""
        steps = list(getattr(estimator, "steps", [(None, estimator)]))
        final = steps[-1][1]
        coef = getattr(final, "coef_", None)
        if coef is None:
            raise ConfigError(
                f"{type(final).__name__} is not a fitted linear model (it has no coef_)"
            )
        coef = np.asarray(coef, dtype=np.float64)
        W = coef[:, None] if coef.ndim == 1 else coef.T
        b = np.broadcast_to(
            np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64), (W.shape[1],)
        ).copy()
        for _, step in reversed(steps[:-1]):
            if step is None or step == "passthrough":
                continue
            W, b = _fold_step(step, W, b)
        classes = getattr(final, "classes_", None)
        return cls(W, b, None if classes is None else np.asarray(classes))

    @classmethod
    def from_probe(cls, probe: Any) -> LinearHead:
        """From a saved `fds.evaluation.probes.FittedProbe` with a `logistic` or `ridge` head;
        classes come back in the probe's original label space."""
        head, task = probe.spec["head"], probe.spec["task"]
        if head not in ("logistic", "ridge"):
            raise ConfigError(
                f"the {head} {task} probe has no encrypted form: use a logistic or ridge probe"
            )
        linear = cls.from_sklearn(probe.estimator)
        if task == "classification":
            linear.classes = np.asarray(probe.spec["classes"])[linear.classes.astype(int)]
        return linear

    def scores(self, Z: Any) -> np.ndarray:
        """Plaintext scores (n, c)."""
        return as_matrix(Z, "latents", width=self.n_features) @ self.W + self.b

    def predict_from_scores(self, scores: np.ndarray) -> np.ndarray:
        return predictions_from_scores(scores, self.classes)

    def predict(self, Z: Any) -> np.ndarray:
        return self.predict_from_scores(self.scores(Z))

    def evaluate(self, batch: EncryptedBatch) -> EncryptedBatch:
        """Encrypted scores of a packed latent batch: plaintext products and sums only."""
        _check_batch(batch, self.n_features, self.depth, needs_relin=False)
        outputs = _linear_layer(batch.vectors, self.W, self.b)
        return EncryptedBatch("scores", batch.n_records, batch.key_id, outputs)

    def evaluate_records(self, vectors: Sequence[ts.CKKSVector]) -> list[ts.CKKSVector]:
        """Encrypted scores of one-ciphertext-per-record inputs (needs Galois keys)."""
        if vectors and not vectors[0].context().has_galois_keys():
            raise ConfigError("the per-record path needs Galois keys (HEParams(galois_keys=True))")
        W, b = self.W.tolist(), self.b.tolist()
        return [v.matmul(W).add_(b) for v in vectors]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "linear",
            "W": self.W.tolist(),
            "b": self.b.tolist(),
            "classes": None if self.classes is None else self.classes.tolist(),
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> LinearHead:
        if not isinstance(spec, dict) or spec.get("kind") != "linear":
            raise ModelFormatError("not a linear head specification")
        try:
            return cls(np.asarray(spec["W"], float), np.asarray(spec["b"], float), spec["classes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"bad linear head specification: {exc}") from None


# --------------------------------------------------------------------------- polynomial MLP
_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "logistic": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "identity": lambda x: x,
}


@dataclass
class PolyMLPHead:
    """One hidden layer with a degree-2 activation, in the form evaluated on ciphertexts:
    `scores = ((Z @ W1 + b1) ** 2) @ V + b` (depth 3: layer, square, layer).

    `from_sklearn_mlp` builds it from a fitted one-hidden-layer MLPClassifier/MLPRegressor: its
    activation is replaced by the least-squares degree-2 polynomial `c2·h² + c1·h + c0` over the
    hidden pre-activations of the given latents, then folded (`c1`, `c0` into `b1` and `b`, `c2`
    into `V`) so only one ciphertext square per hidden unit remains. `approximation` records the
    polynomial and its fit error; `approximation_report` the accuracy lost to it."""

    W1: np.ndarray
    b1: np.ndarray
    V: np.ndarray
    b: np.ndarray
    classes: np.ndarray | None = None
    approximation: dict[str, Any] = field(default_factory=dict)
    depth: int = 3

    def __post_init__(self) -> None:
        self.W1 = np.asarray(self.W1, dtype=np.float64)
        self.b1 = np.asarray(self.b1, dtype=np.float64)
        self.V = np.asarray(self.V, dtype=np.float64)
        self.b = np.asarray(self.b, dtype=np.float64)
        h = self.W1.shape[1] if self.W1.ndim == 2 else 0
        if (
            self.W1.ndim != 2
            or self.b1.shape != (h,)
            or self.V.ndim != 2
            or self.V.shape[0] != h
            or self.b.shape != (self.V.shape[1],)
        ):
            raise ConfigError("the MLP head's weights do not fit together")
        if not all(np.isfinite(a).all() for a in (self.W1, self.b1, self.V, self.b)):
            raise ConfigError("the MLP head holds NaN or inf weights")
        if self.classes is not None:
            self.classes = np.asarray(self.classes)
            expected = 2 if self.V.shape[1] == 1 else self.V.shape[1]
            if len(self.classes) != expected:
                raise ConfigError(f"{len(self.classes)} classes for {self.V.shape[1]} score(s)")

    @property
    def n_features(self) -> int:
        return self.W1.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.V.shape[1]

    @classmethod
    def from_sklearn_mlp(cls, estimator: Any, Z: Any) -> PolyMLPHead:
        """From a fitted MLPClassifier / MLPRegressor with one hidden layer (optionally behind
        StandardScaler steps); `Z` are latents whose hidden pre-activations set the range the
        polynomial approximates (the training latents)."""
        steps = list(getattr(estimator, "steps", [(None, estimator)]))
        mlp = steps[-1][1]
        coefs = getattr(mlp, "coefs_", None)
        if coefs is None or not hasattr(mlp, "activation"):
            raise ConfigError(f"{type(mlp).__name__} is not a fitted scikit-learn MLP")
        if len(coefs) != 2:
            raise ConfigError(
                f"the MLP has {len(coefs) - 1} hidden layers; the encrypted head supports one"
            )
        W1 = np.asarray(coefs[0], dtype=np.float64)
        b1 = np.asarray(mlp.intercepts_[0], dtype=np.float64)
        for _, step in reversed(steps[:-1]):
            if step is None or step == "passthrough":
                continue
            W1, b1 = _fold_step(step, W1, b1)
        W2 = np.asarray(coefs[1], dtype=np.float64)
        b2 = np.asarray(mlp.intercepts_[1], dtype=np.float64)
        pre = as_matrix(Z, "latents", width=W1.shape[0]) @ W1 + b1
        activation = _ACTIVATIONS[mlp.activation]
        c2, c1, c0 = np.polyfit(pre.ravel(), activation(pre.ravel()), 2)
        rmse = float(np.sqrt(np.mean((np.polyval([c2, c1, c0], pre) - activation(pre)) ** 2)))
        if abs(c2) < 1e-12:
            raise ConfigError("the activation's quadratic fit is degenerate (c2 ≈ 0)")
        shift = c1 / (2.0 * c2)  # c2·h² + c1·h + c0 = c2·(h + shift)² + (c0 − c2·shift²)
        constant = c0 - c2 * shift**2
        classes = getattr(mlp, "classes_", None)
        return cls(
            W1,
            b1 + shift,
            c2 * W2,
            b2 + constant * W2.sum(axis=0),
            None if classes is None else np.asarray(classes),
            {
                "activation": mlp.activation,
                "degree": 2,
                "coefficients": [float(c2), float(c1), float(c0)],
                "range": [float(pre.min()), float(pre.max())],
                "fit_rmse": rmse,
            },
        )

    def scores(self, Z: Any) -> np.ndarray:
        """Plaintext scores of the polynomial network (what the ciphertexts compute)."""
        hidden = as_matrix(Z, "latents", width=self.n_features) @ self.W1 + self.b1
        return (hidden**2) @ self.V + self.b

    def predict_from_scores(self, scores: np.ndarray) -> np.ndarray:
        return predictions_from_scores(scores, self.classes)

    def predict(self, Z: Any) -> np.ndarray:
        return self.predict_from_scores(self.scores(Z))

    def approximation_report(self, estimator: Any, Z: Any, y: Any = None) -> dict[str, Any]:
        """What the polynomial activation costs: agreement of its predictions with the exact
        MLP's, and (with labels) both accuracies and their difference."""
        exact = np.asarray(estimator.predict(as_matrix(Z, "latents", width=self.n_features)))
        poly = self.predict(Z)
        report: dict[str, Any] = {**self.approximation}
        if self.classes is None:
            report["max_abs_difference"] = float(np.max(np.abs(np.ravel(poly) - np.ravel(exact))))
            return report
        report["prediction_agreement"] = float(np.mean(poly == exact))
        if y is not None:
            y = np.asarray(y)
            report["exact_accuracy"] = float(np.mean(exact == y))
            report["poly_accuracy"] = float(np.mean(poly == y))
            report["accuracy_loss"] = report["exact_accuracy"] - report["poly_accuracy"]
        return report

    def evaluate(self, batch: EncryptedBatch) -> EncryptedBatch:
        """Encrypted scores: hidden layer, one ciphertext square per unit, output layer."""
        _check_batch(batch, self.n_features, self.depth, needs_relin=True)
        hidden = [h.square_() for h in _linear_layer(batch.vectors, self.W1, self.b1)]
        outputs = _linear_layer(hidden, self.V, self.b)
        return EncryptedBatch("scores", batch.n_records, batch.key_id, outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "poly_mlp",
            "W1": self.W1.tolist(),
            "b1": self.b1.tolist(),
            "V": self.V.tolist(),
            "b": self.b.tolist(),
            "classes": None if self.classes is None else self.classes.tolist(),
            "approximation": self.approximation,
        }


def head_from_dict(spec: dict[str, Any]) -> LinearHead | PolyMLPHead:
    """A head from its JSON form (`to_dict`)."""
    if isinstance(spec, dict) and spec.get("kind") == "poly_mlp":
        try:
            return PolyMLPHead(
                spec["W1"],
                spec["b1"],
                spec["V"],
                spec["b"],
                spec["classes"],
                dict(spec.get("approximation") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"bad MLP head specification: {exc}") from None
    return LinearHead.from_dict(spec)


def head_from_probe(probe: Any) -> LinearHead | PolyMLPHead:
    """The encrypted form of a saved `FittedProbe`: `logistic` / `ridge` → LinearHead,
    classification `mlp` → PolyMLPHead (activation fitted on the probe's training latents)."""
    spec = probe.spec
    if spec["head"] == "mlp" and spec["task"] == "classification":
        head = PolyMLPHead.from_sklearn_mlp(probe.estimator, probe.Z_train)
        # on the probe's training rows, in class indices (what its estimator predicts)
        head.approximation = head.approximation_report(
            probe.estimator, probe.Z_train, probe.y_train
        )
        head.classes = np.asarray(spec["classes"])[head.classes.astype(int)]
        return head
    return LinearHead.from_probe(probe)
