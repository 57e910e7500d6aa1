"""Measured leakage of an attribute from released latents: what an attacker who sees them learns.

The attacker trains logistic regression, a random forest and an MLP on (latents, attribute) pairs
it knows and predicts the attribute of held-out rows; leakage is the best attacker's accuracy
against the majority baseline on the same held-out rows. This is a measurement of information
hiding, not a guarantee: a stronger attacker may do better.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fds.errors import DataError

ATTACKERS = ("logistic", "random_forest", "mlp")


def _attacker(name: str, seed: int) -> Any:
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    if name == "random_forest":
        return RandomForestClassifier(
            n_estimators=100, min_samples_leaf=3, n_jobs=1, random_state=seed
        )
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(64, 64), max_iter=300, early_stopping=True, random_state=seed
        ),
    )


def _auc(model: Any, z: np.ndarray, s: np.ndarray, classes: np.ndarray) -> float | None:
    """ROC AUC: binary, or macro one-vs-rest over the classes present in the test rows."""
    present = np.unique(s)
    if len(present) < 2:
        return None
    proba = model.predict_proba(z)
    if len(classes) == 2:
        return float(roc_auc_score(s == classes[1], proba[:, 1]))
    keep = np.isin(classes, present)
    scores = proba[:, keep]
    scores = scores / np.clip(scores.sum(1, keepdims=True), 1e-12, None)
    if len(present) == 2:
        return float(roc_auc_score(s == present[1], scores[:, 1]))
    return float(roc_auc_score(s, scores, multi_class="ovr", average="macro", labels=present))


def attribute_leakage(
    z_train: Any, s_train: Any, z_test: Any, s_test: Any, *, seed: int = 0
) -> dict[str, Any]:
    """How well attackers trained on (z_train, s_train) predict s_test from z_test.

    Returns `{"attackers": {name: {"accuracy", "auc"}}, "majority", "best_attacker",
    "best_accuracy", "advantage" (best − majority), "n_train", "n_test", "n_classes"}`; the
    majority baseline is the test-set share of the most frequent training class."""
    z_train, z_test = _matrix(z_train, "z_train"), _matrix(z_test, "z_test")
    s_train, s_test = np.asarray(s_train).ravel(), np.asarray(s_test).ravel()
    if len(z_train) != len(s_train) or len(z_test) != len(s_test):
        raise DataError(
            f"latents and attribute differ in length: train {len(z_train)} vs {len(s_train)}, "
            f"test {len(z_test)} vs {len(s_test)}"
        )
    if z_train.shape[1] != z_test.shape[1]:
        raise DataError(
            f"train and test latents differ in width: {z_train.shape[1]} vs {z_test.shape[1]}"
        )
    classes, counts = np.unique(s_train, return_counts=True)
    if len(classes) < 2:
        raise DataError("the attribute has a single value in the training rows: nothing to attack")
    majority_class = classes[np.argmax(counts)]
    results: dict[str, dict[str, float | None]] = {}
    for name in ATTACKERS:
        model = _attacker(name, seed).fit(z_train, s_train)
        results[name] = {
            "accuracy": float(accuracy_score(s_test, model.predict(z_test))),
            "auc": _auc(model, z_test, s_test, model.classes_),
        }
    best = max(ATTACKERS, key=lambda n: results[n]["accuracy"])
    majority = float(np.mean(s_test == majority_class))
    return {
        "attackers": results,
        "majority": majority,
        "best_attacker": best,
        "best_accuracy": results[best]["accuracy"],
        "advantage": results[best]["accuracy"] - majority,
        "n_train": len(z_train),
        "n_test": len(z_test),
        "n_classes": len(classes),
    }


def _matrix(z: Any, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or len(z) == 0:
        raise DataError(f"{name} must be a non-empty (n, d) matrix, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise DataError(f"{name} holds NaN or inf")
    return z
