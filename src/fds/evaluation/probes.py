"""Inference on latents: probe heads fitted on one split and scored on another, each beside the same
head fitted on the raw features, so a user sees what a decomposition kept or lost.

Pure: arrays in, plain dicts out (scikit-learn and numpy; no files, nothing of the estimator).

- Heads are chosen by name from a string registry per task (`HEADS`):
  classification `logistic` (StandardScaler + LogisticRegression(max_iter=1000)), `knn` (k = 5),
  `mlp` (one hidden layer of 64, early stopping after 20 epochs without
  improvement, fixed random_state);
  regression `ridge`, `knn`, `mlp` (targets standardized for the MLP);
  clustering `kmeans`, `gmm` (as many clusters as distinct labels when labels exist, else
  `n_clusters`, default 8). Every head standardizes its input first (fitted on the training split).
- `run_probe` scores on the test split: classification accuracy / balanced_accuracy / macro_f1;
  regression r2 / mae; clustering ari / nmi (against the labels, when given) / silhouette (of the
  predicted clusters, on the head's standardized input; None when undefined).
- `FittedProbe` is a head that can be saved without pickle: a spec (head, task, params, seed,
  classes, target) plus its training arrays. `fds.probefiles` writes and verifies the files;
  `FittedProbe.from_saved` *refits the head from the stored spec and data* — deterministic, and
  no code from the file is ever executed.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    adjusted_rand_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    normalized_mutual_info_score,
    r2_score,
    silhouette_score,
)
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fds.data.validation import as_matrix
from fds.errors import ConfigError, DataError, ModelFormatError

if TYPE_CHECKING:
    from fds.probefiles import SavedProbe

__all__ = [
    "DEFAULT_HEADS",
    "HEADS",
    "MAIN_METRIC",
    "TASKS",
    "FittedProbe",
    "ProbeSplit",
    "infer_task",
    "main_metric",
    "missing_mask",
    "run_probe",
    "split_for_probe",
]

TASKS = ("classification", "regression", "clustering")
DEFAULT_HEADS: dict[str, tuple[str, ...]] = {
    "classification": ("logistic", "knn"),
    "regression": ("ridge", "knn"),
    "clustering": ("kmeans", "gmm"),
}
# The metric that ranks heads (clustering without labels falls back to silhouette).
MAIN_METRIC = {"classification": "accuracy", "regression": "r2", "clustering": "ari"}
MAX_CLASSES = 20  # integer targets with at most this many distinct values are classes
DEFAULT_CLUSTERS = 8  # clustering with no labels and no n_clusters: scikit-learn's KMeans default
GMM_FULL_COVARIANCE_MAX_DIM = 64  # above this, a diagonal covariance (raw pixels, wide tables)
SILHOUETTE_SAMPLE = 5000


# --------------------------------------------------------------------------- heads
def _scaled(estimator: Any) -> Pipeline:
    return make_pipeline(StandardScaler(), estimator)


def _mlp_regressor(p: dict[str, Any], seed: int) -> Any:
    mlp = MLPRegressor(
        hidden_layer_sizes=(64,),
        early_stopping=True,
        n_iter_no_change=20,
        max_iter=500,
        random_state=seed,
    )
    return TransformedTargetRegressor(regressor=_scaled(mlp), transformer=StandardScaler())


# task → head name → builder(params, seed); params come from `_head_params` and are stored in a
# FittedProbe's spec, so a head is rebuilt exactly from its spec.
HEADS: dict[str, dict[str, Callable[[dict[str, Any], int], Any]]] = {
    "classification": {
        "logistic": lambda p, seed: _scaled(LogisticRegression(max_iter=1000)),
        "knn": lambda p, seed: _scaled(KNeighborsClassifier(n_neighbors=p["n_neighbors"])),
        "mlp": lambda p, seed: _scaled(
            MLPClassifier(
                hidden_layer_sizes=(64,),
                early_stopping=True,
                n_iter_no_change=20,
                max_iter=500,
                random_state=seed,
            )
        ),
    },
    "regression": {
        "ridge": lambda p, seed: _scaled(Ridge(alpha=1.0)),
        "knn": lambda p, seed: _scaled(KNeighborsRegressor(n_neighbors=p["n_neighbors"])),
        "mlp": _mlp_regressor,
    },
    "clustering": {
        "kmeans": lambda p, seed: _scaled(
            KMeans(n_clusters=p["n_clusters"], n_init=4, random_state=seed)
        ),
        "gmm": lambda p, seed: _scaled(
            GaussianMixture(
                n_components=p["n_clusters"],
                covariance_type=p["covariance_type"],
                reg_covar=1e-4,
                random_state=seed,
            )
        ),
    },
}


def _head_params(
    task: str, head: str, n_train: int, n_features: int, n_clusters: int | None
) -> dict[str, Any]:
    if head == "knn":
        return {"n_neighbors": min(5, n_train)}
    if task == "clustering":
        params: dict[str, Any] = {"n_clusters": n_clusters}
        if head == "gmm":
            full = n_features <= GMM_FULL_COVARIANCE_MAX_DIM
            params["covariance_type"] = "full" if full else "diag"
        return params
    return {}


def _did_you_mean(value: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(options), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _resolve_heads(task: str, heads: Sequence[str] | str | None) -> list[str]:
    if heads is None:
        return list(DEFAULT_HEADS[task])
    if isinstance(heads, str):
        heads = [h.strip() for h in heads.split(",") if h.strip()]
    if not heads:
        raise ConfigError("no probe heads given")
    known = HEADS[task]
    for head in heads:
        if head not in known:
            elsewhere = [t for t in TASKS if head in HEADS[t]]
            hint = (
                f"{head!r} is a {elsewhere[0]} head; "
                if elsewhere
                else _did_you_mean(head, list(known))
            )
            raise ConfigError(f"unknown {task} head {head!r}; {hint}choose from {', '.join(known)}")
    return list(dict.fromkeys(heads))


def _resolve_task(task: str, y: np.ndarray | None) -> str:
    if task == "auto":
        return "clustering" if y is None else infer_task(y)
    if task not in TASKS:
        raise ConfigError(
            f"unknown probe task {task!r}; {_did_you_mean(task, TASKS)}"
            f"choose from auto, {', '.join(TASKS)}"
        )
    if y is None and task != "clustering":
        raise DataError(f"a {task} probe needs a target y")
    return task


def main_metric(task: str, has_labels: bool = True) -> str:
    """The metric that ranks heads of `task` (clustering without labels: silhouette)."""
    return "silhouette" if task == "clustering" and not has_labels else MAIN_METRIC[task]


# --------------------------------------------------------------------------- targets
def missing_mask(y: Any) -> np.ndarray:
    """True where a target value is missing (NaN, None, pd.NA, NaT)."""
    return np.asarray(pd.isna(pd.Series(np.asarray(y, dtype=object))), dtype=bool)


def _as_1d(y: Any, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{what} must be one value per row, got shape {y.shape}")
    return y


def _numbers_only(y: np.ndarray) -> bool:
    return y.dtype.kind in "iuf" or (
        y.dtype == object
        and all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in y)
    )


def infer_task(y: Any) -> str:
    """`classification` for non-numeric targets (strings, categories, booleans) and for integer
    values with at most 20 distinct values; `regression` for other numbers. Missing values are
    ignored."""
    y = _as_1d(y, "y")
    y = y[~missing_mask(y)]
    if not _numbers_only(y):
        return "classification"
    values = y.astype(np.float64)
    if np.all(values == np.round(values)) and len(np.unique(values)) <= MAX_CLASSES:
        return "classification"
    return "regression"


def _labels(y: np.ndarray) -> np.ndarray:
    """Class labels in one comparable type: numbers stay numbers (integer-valued floats become
    ints), booleans stay booleans, anything else becomes strings."""
    if y.dtype.kind == "b":
        return y
    if _numbers_only(y):
        values = y.astype(np.float64)
        if np.all(values == np.round(values)):
            return values.astype(np.int64)
        return values
    if y.dtype == object and all(isinstance(v, bool | np.bool_) for v in y):
        return y.astype(bool)
    return y.astype(str)


def _target(y: Any, what: str, n: int) -> np.ndarray:
    y = _as_1d(y, what)
    if len(y) != n:
        raise DataError(f"{what} has {len(y)} values but its latents have {n} rows")
    missing = missing_mask(y)
    if missing.any():
        raise DataError(f"{what} holds {int(missing.sum())} missing value(s); drop those rows")
    return y


class ProbeSplit(NamedTuple):
    """Row indices of the train and test splits (rows with a missing target are in neither)."""

    train: np.ndarray
    test: np.ndarray
    task: str
    n_dropped: int


def split_for_probe(
    n: int, y: Any, *, task: str = "auto", test_size: float = 0.25, seed: int = 0
) -> ProbeSplit:
    """Seeded train/test split of `n` rows, stratified by class for classification when every
    class has at least two rows; rows whose target is missing are dropped (counted)."""
    if not 0.0 < float(test_size) < 1.0:
        raise ConfigError(f"test_size={test_size} must be between 0 and 1")
    rows = np.arange(n)
    labels = None
    if y is not None:
        y = _as_1d(y, "y")
        if len(y) != n:
            raise DataError(f"y has {len(y)} values but X has {n} rows")
        rows = rows[~missing_mask(y)]
        y = y[rows]
    task = _resolve_task(task, y)
    if len(rows) < 4:
        raise DataError(f"need at least 4 rows with a target to probe, got {len(rows)}")
    if task == "classification" and y is not None:
        labels = _labels(y)
    try:
        train, test = train_test_split(
            rows, test_size=test_size, random_state=seed, stratify=labels
        )
    except ValueError:  # a class too small to stratify: split without stratification
        train, test = train_test_split(rows, test_size=test_size, random_state=seed)
    return ProbeSplit(np.asarray(train), np.asarray(test), task, n - len(rows))


# --------------------------------------------------------------------------- fitting + scoring
def _fit(task: str, head: str, params: dict[str, Any], seed: int, Z: np.ndarray, y: Any) -> Any:
    estimator = HEADS[task][head](params, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the scores say how good it is
        try:
            return estimator.fit(Z) if task == "clustering" else estimator.fit(Z, y)
        except ValueError as exc:
            reason = str(exc).splitlines()[0]
            raise DataError(f"the {head} {task} head cannot be fitted here: {reason}") from None


def _score(
    task: str, estimator: Any, Z_test: np.ndarray, y_test: np.ndarray | None, classes: Any
) -> dict[str, float | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a test class the head never predicts
        pred = estimator.predict(Z_test)
        if task == "classification":
            pred = classes[pred]
            return {
                "accuracy": float(accuracy_score(y_test, pred)),
                "balanced_accuracy": float(balanced_accuracy_score(y_test, pred)),
                "macro_f1": float(f1_score(y_test, pred, average="macro")),
            }
        if task == "regression":
            return {
                "r2": float(r2_score(y_test, pred)) if len(y_test) > 1 else None,
                "mae": float(mean_absolute_error(y_test, pred)),
            }
        scores: dict[str, float | None] = {}
        if y_test is not None:
            scores["ari"] = float(adjusted_rand_score(y_test, pred))
            scores["nmi"] = float(normalized_mutual_info_score(y_test, pred))
        scores["silhouette"] = _silhouette(estimator[:-1].transform(Z_test), pred)
        return scores


def _silhouette(features: np.ndarray, clusters: np.ndarray) -> float | None:
    k = len(np.unique(clusters))
    if not 2 <= k <= len(features) - 1:
        return None
    sample = SILHOUETTE_SAMPLE if len(features) > SILHOUETTE_SAMPLE else None
    return float(silhouette_score(features, clusters, sample_size=sample, random_state=0))


def run_probe(
    Z_train: Any,
    y_train: Any,
    Z_test: Any,
    y_test: Any,
    *,
    task: str = "auto",
    heads: Sequence[str] | str | None = None,
    raw: tuple[Any, Any] | None = None,
    seed: int = 0,
    n_clusters: int | None = None,
) -> dict[str, Any]:
    """Fit each head on the training latents (and, with `raw=(X_train, X_test)`, the same head on
    those raw features) and score it on the test split.

    `y_*` may be None for clustering. `heads` default per task: classification logistic + knn,
    regression ridge + knn, clustering kmeans + gmm. Returns
    `{"task", "n_train", "n_test", "rows": [{"head", "features": "latent"|"raw", metric: float}]}`.
    """
    Z_train = as_matrix(Z_train, "Z_train")
    Z_test = as_matrix(Z_test, "Z_test", Z_train.shape[1])
    if y_train is not None:
        y_train = _target(y_train, "y_train", len(Z_train))
    if y_test is not None:
        y_test = _target(y_test, "y_test", len(Z_test))
    task = _resolve_task(task, y_train)
    heads = _resolve_heads(task, heads)
    fit_y, classes, n_clusters = _encode_targets(task, y_train, n_clusters)
    if y_test is not None:
        y_test = _labels(y_test) if task != "regression" else _numeric(y_test, "y_test")
    if task != "clustering" and y_test is None:
        raise DataError(f"a {task} probe needs y_test to score on")
    features = [("latent", Z_train, Z_test)]
    if raw is not None:
        X_train = as_matrix(raw[0], "raw X_train")
        X_test = as_matrix(raw[1], "raw X_test", X_train.shape[1])
        if (len(X_train), len(X_test)) != (len(Z_train), len(Z_test)):
            raise DataError(
                f"raw features have {len(X_train)}/{len(X_test)} rows, latents "
                f"{len(Z_train)}/{len(Z_test)}: pass the same rows"
            )
        features.append(("raw", X_train, X_test))
    rows = []
    for head in heads:
        for kind, A, B in features:
            params = _head_params(task, head, len(A), A.shape[1], n_clusters)
            estimator = _fit(task, head, params, seed, A, fit_y)
            rows.append(
                {"head": head, "features": kind, **_score(task, estimator, B, y_test, classes)}
            )
    return {"task": task, "n_train": len(Z_train), "n_test": len(Z_test), "rows": rows}


def _numeric(y: np.ndarray, what: str) -> np.ndarray:
    if not _numbers_only(y):
        raise DataError(f"{what} must be numbers for a regression probe (got {y.dtype} values)")
    return y.astype(np.float64)


def _encode_targets(
    task: str, y: np.ndarray | None, n_clusters: int | None
) -> tuple[np.ndarray | None, np.ndarray | None, int | None]:
    """(what heads are fitted on, class labels by index, number of clusters)."""
    if task == "regression":
        return _numeric(y, "y_train"), None, None
    if task == "classification":
        classes, codes = np.unique(_labels(y), return_inverse=True)
        if len(classes) < 2:
            raise DataError(
                f"y_train has a single class ({classes[0]!r}): a classifier needs at least two"
            )
        return codes.astype(np.int64), classes, None
    if n_clusters is None and y is not None:
        n_clusters = len(np.unique(_labels(y)))
        if n_clusters < 2 or n_clusters > len(y) // 2:
            raise DataError(
                f"y_train has {n_clusters} distinct value(s): cannot use it as cluster labels "
                "(a clustering probe needs 2 to n/2 of them)"
            )
    n_clusters = DEFAULT_CLUSTERS if n_clusters is None else n_clusters
    if (
        isinstance(n_clusters, bool)
        or not isinstance(n_clusters, int | np.integer)
        or n_clusters < 2
    ):
        raise ConfigError(f"n_clusters={n_clusters!r} must be an integer ≥ 2")
    return None, None, int(n_clusters)


# --------------------------------------------------------------------------- fitted probes
def _plain_list(values: np.ndarray) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values.tolist()]


@dataclass
class FittedProbe:
    """A fitted probe head that saves without pickle (`fds.probefiles.write_probe`).

    `spec` holds the head name, task, params, seed, class labels (JSON list, original label space),
    target name, feature count and, optionally, the sha256 of the model weights it belongs to.
    `Z_train`/`y_train` are the training arrays (labels encoded as class indices). `from_saved`
    refits the head from a saved spec and data: deterministic, and runs no code from the file.
    """

    spec: dict[str, Any]
    Z_train: np.ndarray
    y_train: np.ndarray | None
    estimator: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def fit(
        cls,
        Z: Any,
        y: Any = None,
        *,
        head: str,
        task: str = "auto",
        seed: int = 0,
        target: str | None = None,
        n_clusters: int | None = None,
        model_sha256: str | None = None,
    ) -> FittedProbe:
        Z = as_matrix(Z, "Z")
        y = None if y is None else _target(y, "y", len(Z))
        task = _resolve_task(task, y)
        (head,) = _resolve_heads(task, [head])
        fit_y, classes, n_clusters = _encode_targets(task, y, n_clusters)
        spec = {
            "head": head,
            "task": task,
            "params": _head_params(task, head, len(Z), Z.shape[1], n_clusters),
            "seed": int(seed),
            "classes": None if classes is None else _plain_list(classes),
            "target": target,
            "n_features": int(Z.shape[1]),
            "model_sha256": model_sha256,
        }
        probe = cls(spec, Z, fit_y)
        probe.estimator = _fit(task, head, spec["params"], int(seed), Z, fit_y)
        return probe

    def predict(self, Z: Any) -> np.ndarray:
        """Predictions in the original label space (strings stay strings), regression values, or
        cluster indices."""
        Z = as_matrix(Z, "Z", self.spec["n_features"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = self.estimator.predict(Z)
        if self.spec["task"] == "classification":
            return np.asarray(self.spec["classes"])[pred]
        return np.asarray(pred)

    @classmethod
    def from_saved(cls, saved: SavedProbe) -> FittedProbe:
        """Refit the head of a probe read by `fds.probefiles.read_probe`, once its spec is checked
        to name a registered head with valid parameters."""
        _check_registered(saved)
        spec = saved.spec
        probe = cls(spec, saved.Z_train, saved.y_train)
        probe.estimator = _fit(
            spec["task"], spec["head"], spec["params"], spec["seed"], saved.Z_train, saved.y_train
        )
        return probe


_PARAM_CHECKS: dict[str, Callable[[Any], bool]] = {
    "n_neighbors": lambda v: isinstance(v, int) and v >= 1,
    "n_clusters": lambda v: isinstance(v, int) and v >= 2,
    "covariance_type": lambda v: v in ("full", "diag"),
}


def _check_registered(saved: SavedProbe) -> None:
    """A saved spec only selects a registry head and plain parameters: check each one."""
    task, head, params = saved.spec["task"], saved.spec["head"], saved.spec["params"]
    if task not in HEADS or head not in HEADS[task]:
        raise ModelFormatError(f"{saved.source}: unknown probe head {head!r} for task {task!r}")
    expected = set(_head_params(task, head, 5, 1, 2))
    if set(params) != expected or not all(_PARAM_CHECKS[k](v) for k, v in params.items()):
        raise ModelFormatError(f"{saved.source}: bad params {params} for the {head} {task} head")
