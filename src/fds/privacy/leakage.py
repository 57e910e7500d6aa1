"""Measured leakage: how well attackers who know (code, attribute) pairs of some records predict
the attribute of other records from their codes. The one estimator behind `fds evaluate`,
`fds attack --kind attribute`, the report, the quickstart and benchmarks/privacy_utility.py.

Four attackers of different kinds (logistic regression; gradient boosting, which reads
nonlinear leaks such as an XOR of signs; three averaged 3×128 MLPs; a random forest of fully
grown trees, which reads codes that take few distinct values cell by cell, as a rounded public
block does: on the quickstart's rounded codes the forest read the shape at 0.52–0.54 where the
other three stopped at 0.42–0.45) are fitted on every attacker row and scored on held-out rows by accuracy beside the majority baseline, and by ROC AUC
(macro one-vs-rest for several classes), which a rare attribute cannot hide behind its majority.
A learning curve refits them on 25% and 50% of the rows: when the last doubling still adds more
than a point, more rows would find more, and the figure is flagged as a lower bound. A fit on all
rows that is already perfect (accuracy and AUC 1) cannot be a lower bound, so its curve is left
out. Each fit is its own step of a `Plan` (`fds.runtime.concurrent`), so the fits of many
figures can run side by side. This is a measurement of information hiding, not a guarantee: a stronger attacker may do
better.

`target_utility` measures what the codes are for in the target's own terms (R² for a
continuous target, accuracy and AUC for a categorical one; fitted once, on every row) and `necessary_leakage` the attribute
an attacker reads off the target alone (for a categorical target, exactly: the table of the
attribute's shares per category): any code useful for the target reveals that much.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fds.errors import DataError
from fds.privacy.mlp_ensemble import MLPEnsembleClassifier, MLPEnsembleRegressor
from fds.runtime.concurrent import Plan, run_now

# fits one model kind or several on (task, z_train, v_train, z_test, v_test, seed, budget)
ScoreFn = Callable[..., dict[str, dict[str, float | None]]]

__all__ = [
    "ATTACKERS",
    "CURVE",
    "FAST",
    "REGRESSORS",
    "RISING",
    "TRUTHFUL",
    "Budget",
    "attribute_leakage",
    "attribute_leakage_plan",
    "necessary_leakage",
    "necessary_leakage_plan",
    "target_utility",
    "target_utility_plan",
]

ATTACKERS = ("logistic", "boosting", "mlp", "forest")
REGRESSORS = ("ridge", "boosting", "mlp", "forest")
CURVE = (0.25, 0.5, 1.0)  # shares of the attacker rows the learning curve refits on
RISING = 0.01  # the last doubling adding more than this (one point) makes the figure a lower bound
_MIN_ROWS_TO_STOP = 200  # boosting stops early on a held-out tenth from this many rows…
_MIN_CLASS_TO_STOP = 20  # …when every class has this many (a stratified tenth holds each)


@dataclass(frozen=True)
class Budget:
    """How hard the attackers try. `TRUTHFUL` (the default everywhere) fits every attacker row;
    `FAST` is for tests and previews (`fds evaluate --fast`): small networks, few boosting
    rounds and at most `max_train_rows` attacker rows, so its figures are lower bounds. The
    truthful MLP is three averaged 3×128 networks, each stopped on its validation loss: on
    census `fds` public blocks a single 2×128 scikit-learn MLP missed 4-9 points of accuracy."""

    name: str = "truthful"
    mlp_hidden: tuple[int, ...] = (128, 128, 128)
    mlp_members: int = 3  # MLPs averaged (fds.privacy.mlp_ensemble)
    mlp_max_epochs: int = 500
    mlp_patience: int = 20  # epochs without a better validation loss before an MLP stops
    boosting_max_iter: int = 200
    forest_trees: int = 300
    max_train_rows: int | None = None


TRUTHFUL = Budget()
FAST = Budget(
    "fast",
    mlp_hidden=(32,),
    mlp_members=1,
    mlp_max_epochs=80,
    mlp_patience=10,
    boosting_max_iter=40,
    forest_trees=50,
    max_train_rows=2000,
)


def attribute_leakage_plan(
    z_train: Any,
    s_train: Any,
    z_test: Any,
    s_test: Any,
    *,
    seed: int = 0,
    budget: Budget = TRUTHFUL,
) -> Plan[dict[str, Any]]:
    """How well attackers fitted on (z_train, s_train) predict s_test from z_test.

    Returns `{"attackers": {name: {"accuracy", "auc"}} (those fitted: none after a perfect
    one), "best_attacker", "best_accuracy",
    "best_auc", "majority", "advantage" (best accuracy − majority), "learning_curve": [{"fraction",
    "n_train", "accuracy", "auc"}] (best over the attackers at each share), "lower_bound",
    "n_train", "n_test", "n_classes", "budget"}`. The majority baseline is the test-row share of
    the most frequent training class; an AUC is None when the test rows hold a single class.

    As a plan: the fits on all rows and on each share of the learning curve are separate steps
    (`fds.runtime.concurrent`); the inputs are checked at once."""
    plan = _classify(z_train, s_train, z_test, s_test, seed, budget, CURVE)
    return Plan(plan.fits, lambda results: _with_curve(*plan.combine(results)))


attribute_leakage = run_now(attribute_leakage_plan, "attribute_leakage")


def _with_curve(curve: list[dict[str, Any]], result: dict[str, Any]) -> dict[str, Any]:
    return result | _summary(curve, ("accuracy", "auc"))


def _classify(
    z_train: Any,
    s_train: Any,
    z_test: Any,
    s_test: Any,
    seed: int,
    budget: Budget,
    shares: tuple[float, ...],
    scores: ScoreFn | None = None,
) -> Plan[tuple[list[dict[str, Any]], dict[str, Any]]]:
    """The classifiers fitted on `shares` of the rows (`scores`: the attackers, default
    `_scores`): a plan of (the curve's points, the figures of the fit on all of them)."""
    z_train, s_train, z_test, s_test = _checked(z_train, s_train, z_test, s_test)
    classes, counts = np.unique(s_train, return_counts=True)
    if len(classes) < 2:
        raise DataError("the attribute has a single value in the training rows: nothing to attack")
    majority = float(np.mean(s_test == classes[np.argmax(counts)]))
    curve_plan = _curve(
        "classification", z_train, s_train, z_test, s_test, seed, budget, shares, scores
    )

    def combine(results: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        curve = curve_plan.combine(results)
        full = curve[-1]["scores"]
        best = max(full, key=lambda n: full[n]["accuracy"])
        return curve, {
            "attackers": full,
            "best_attacker": best,
            "best_accuracy": full[best]["accuracy"],
            "best_auc": _best(full, "auc"),
            "majority": majority,
            "advantage": full[best]["accuracy"] - majority,
            "n_classes": len(classes),
            "n_train": curve[-1]["n_train"],
            "n_test": len(z_test),
            "budget": budget.name,
        }

    return Plan(curve_plan.fits, combine)


def target_utility_plan(
    z_train: Any,
    y_train: Any,
    z_test: Any,
    y_test: Any,
    *,
    continuous: bool,
    seed: int = 0,
    budget: Budget = TRUTHFUL,
) -> Plan[dict[str, Any]]:
    """What the codes are worth for a target, in its own terms: the best of ridge, boosting, an
    MLP and a random forest by R² (`continuous`), else the best classifier by accuracy beside the majority, with
    its AUC. Returns `{"utility_metric": "r2" | "accuracy", "utility", "best_model", "models",
    "n_train", "n_test", "budget"}` plus `"baseline"` (R² 0 of the mean) or `"majority"` and
    `"auc"`.

    Fitted once, on every row, without a learning curve: the curve guards leakage figures, where
    a figure that more rows would raise understates the risk; a utility that more rows would
    raise only understates what the codes are worth. On the quickstart (16 classes of
    `factor:x`) the curve cost as much again as the fit on all rows."""
    if not continuous:
        plan = _classify(z_train, y_train, z_test, y_test, seed, budget, (1.0,))
        return Plan(plan.fits, lambda results: _classified_utility(plan.combine(results)[1]))
    z_train, y_train, z_test, y_test = _checked(z_train, y_train, z_test, y_test)
    y_train = _matrix(y_train, "the train target")[:, 0]
    y_test = _matrix(y_test, "the test target")[:, 0]
    curve_plan = _curve("regression", z_train, y_train, z_test, y_test, seed, budget, (1.0,))

    def combine(results: list[Any]) -> dict[str, Any]:
        curve = curve_plan.combine(results)
        full = curve[-1]["scores"]
        best = max(REGRESSORS, key=lambda n: full[n]["r2"])
        return {
            "utility_metric": "r2",
            "utility": full[best]["r2"],
            "baseline": 0.0,
            "best_model": best,
            "models": full,
            "n_train": curve[-1]["n_train"],
            "n_test": len(z_test),
            "budget": budget.name,
        }

    return Plan(curve_plan.fits, combine)


target_utility = run_now(target_utility_plan, "target_utility")


def _classified_utility(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "utility_metric": "accuracy",
        "utility": r["best_accuracy"],
        "auc": r["best_auc"],
        "majority": r["majority"],
        "best_model": r["best_attacker"],
        "models": r["attackers"],
    } | {k: r[k] for k in ("n_train", "n_test", "budget")}


def necessary_leakage_plan(
    y_train: Any,
    s_train: Any,
    y_test: Any,
    s_test: Any,
    *,
    continuous: bool,
    seed: int = 0,
    budget: Budget = TRUTHFUL,
) -> Plan[dict[str, Any]]:
    """The attribute leakage of the target itself: what any code that predicts the target must
    reveal. `attribute_leakage`'s dict. A continuous target is attacked like a code; for a
    categorical one every attacker is a table from category to attribute, so the best is the
    table of the attacker rows' shares (`_lookup_scores`), exact and fitted in milliseconds
    where the four attackers took 11 CPU seconds on the quickstart's 16 positions."""
    if continuous:
        f_train = np.asarray(y_train, dtype=np.float64).reshape(-1, 1)
        f_test = np.asarray(y_test, dtype=np.float64).reshape(-1, 1)
        return attribute_leakage_plan(f_train, s_train, f_test, s_test, seed=seed, budget=budget)
    known = pd.Categorical(np.asarray(y_train).ravel()).categories
    c_train, c_test = (_category_codes(y, known) for y in (y_train, y_test))
    plan = _classify(c_train, s_train, c_test, s_test, seed, budget, CURVE, _lookup_scores)
    return Plan(plan.fits, lambda results: _with_curve(*plan.combine(results)))


necessary_leakage = run_now(necessary_leakage_plan, "necessary_leakage")


def _category_codes(values: Any, categories: pd.Index) -> np.ndarray:
    """Each value's index among `categories`, one past the last for a category unseen in
    training, as a column."""
    codes = pd.Categorical(np.asarray(values).ravel(), categories=categories).codes
    return np.where(codes < 0, len(categories), codes).astype(np.float64)[:, None]


def _lookup_scores(
    task: str,
    c_train: np.ndarray,
    s_train: np.ndarray,
    c_test: np.ndarray,
    s_test: np.ndarray,
    seed: int,
    budget: Budget,
) -> dict[str, dict[str, float | None]]:
    """The plug-in Bayes attacker of one categorical feature (`_scores`' signature): each
    category's shares of the attribute's classes among the attacker rows, with one pseudo-row
    spread as the classes' overall shares, so a rare or unseen category leans on the marginal
    and predicts the majority."""
    classes, s_index = np.unique(s_train, return_inverse=True)
    train, test = c_train[:, 0].astype(np.intp), c_test[:, 0].astype(np.intp)
    counts = np.zeros((max(train.max(), test.max()) + 1, len(classes)))
    np.add.at(counts, (train, s_index), 1.0)
    prior = counts.sum(0) / counts.sum()
    proba = ((counts + prior) / (counts.sum(1, keepdims=True) + 1.0))[test]
    return {
        "lookup": {
            "accuracy": float(accuracy_score(s_test, classes[proba.argmax(1)])),
            "auc": _auc_of(classes, proba, s_test),
        }
    }


# --------------------------------------------------------------------------- fitting


def _curve(
    task: str,
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray,
    v_test: np.ndarray,
    seed: int,
    budget: Budget,
    shares: tuple[float, ...],
    scores: ScoreFn | None = None,
) -> Plan[list[dict[str, Any]]]:
    """Every model fitted on nested seeded `shares` (CURVE, or just 1.0) of the attacker rows;
    the last point uses them all (or `budget.max_train_rows`). Shares too small to fit are left
    out, and so are all smaller shares when the fit on every row is perfect (`_perfect`): a
    share's fit that has not started by then is skipped (the plan runner starts every plan's
    fit on all rows before any share's). Each fit is seeded on its
    own, so the order they run in changes nothing. The plan's fits: all rows, then the shares
    from the largest down."""
    order = np.random.default_rng(seed).permutation(len(z_train))
    if budget.max_train_rows is not None:
        order = order[: budget.max_train_rows]
    points = [{"fraction": 1.0, "n_train": len(order)}]
    subsets = [order]
    for fraction in sorted((f for f in shares if f < 1), reverse=True):
        rows = order[: max(2, math.ceil(fraction * len(order)))]
        if len(rows) >= 10 and _fittable(task, v_train[rows]):
            points.append({"fraction": fraction, "n_train": len(rows)})
            subsets.append(rows)
    fit = scores or _scores
    perfect = threading.Event()  # set once the fit on all rows is known to be perfect

    def on_all_rows() -> dict[str, dict[str, float | None]]:
        result = fit(task, z_train[order], v_train[order], z_test, v_test, seed, budget)
        if _perfect(task, result):
            perfect.set()
        return result

    def on_share(rows: np.ndarray) -> dict[str, dict[str, float | None]] | None:
        if perfect.is_set():  # its curve is left out: a fit not started is not needed
            return None
        return fit(task, z_train[rows], v_train[rows], z_test, v_test, seed, budget)

    fits = (on_all_rows, *(partial(on_share, rows) for rows in subsets[1:]))

    def combine(results: list[Any]) -> list[dict[str, Any]]:
        curve = [point | {"scores": scores} for point, scores in zip(points, results, strict=True)]
        if _perfect(task, curve[0]["scores"]):
            return curve[:1]
        return curve[:0:-1] + curve[:1]  # the shares from the smallest up, then all rows

    return Plan(fits, combine)


def _perfect(task: str, scores: dict[str, dict[str, float | None]]) -> bool:
    """A classification some attacker gets all right, with AUC 1 (or none, one test class):
    no more rows can raise it, so it is no lower bound and needs no learning curve."""
    if task != "classification":
        return False
    auc = _best(scores, "auc")
    return _best(scores, "accuracy") == 1.0 and (auc is None or auc == 1.0)


def _fittable(task: str, values: np.ndarray) -> bool:
    if task == "regression":
        return True
    _, counts = np.unique(values, return_counts=True)
    return len(counts) >= 2 and counts.min() >= 2


def _scores(
    task: str,
    z_train: np.ndarray,
    v_train: np.ndarray,
    z_test: np.ndarray,
    v_test: np.ndarray,
    seed: int,
    budget: Budget,
) -> dict[str, dict[str, float | None]]:
    """Each attacker's figures on the test rows. Once a classifier is perfect (`_perfect`), none
    can do better, so the attackers after it are not fitted and are absent from the result (on
    the quickstart's key this skips the MLPs and the forest: 8 of the leakage's 40 CPU s)."""
    names = ATTACKERS if task == "classification" else REGRESSORS
    scores: dict[str, dict[str, float | None]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # logistic regression's
        for name in names:
            if task == "classification":
                if _perfect(task, scores):
                    break
                model = _classifier(name, seed, budget, v_train).fit(z_train, v_train)
                scores[name] = {
                    "accuracy": float(accuracy_score(v_test, model.predict(z_test))),
                    "auc": _auc(model, z_test, v_test),
                }
            else:
                model = _regressor(name, seed, budget, v_train).fit(z_train, v_train)
                scores[name] = {"r2": float(r2_score(v_test, model.predict(z_test)))}
    return scores


def _classifier(name: str, seed: int, budget: Budget, values: np.ndarray) -> Any:
    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "boosting":
        return HistGradientBoostingClassifier(
            **_boosting(budget, values, classify=True), random_state=seed
        )
    if name == "forest":
        return RandomForestClassifier(budget.forest_trees, random_state=seed)
    return MLPEnsembleClassifier(**_mlp(budget), random_state=seed)


def _regressor(name: str, seed: int, budget: Budget, values: np.ndarray) -> Any:
    if name == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    if name == "boosting":
        return HistGradientBoostingRegressor(
            **_boosting(budget, values, classify=False), random_state=seed
        )
    if name == "forest":
        return RandomForestRegressor(budget.forest_trees, random_state=seed)
    return MLPEnsembleRegressor(**_mlp(budget), random_state=seed)


def _boosting(budget: Budget, values: np.ndarray, *, classify: bool) -> dict[str, Any]:
    """Up to `boosting_max_iter` rounds, stopped like the MLP on the loss of a held-out tenth of
    the attacker rows (10 rounds without improvement): on a 16-class target 200 rounds grow
    3,200 trees, most after the held-out loss stopped falling. Too few rows (a class with fewer
    than `_MIN_CLASS_TO_STOP`) for a stratified tenth: all rounds, no held-out rows."""
    if classify:
        smallest = np.unique(values, return_counts=True)[1].min()
        stop = smallest >= _MIN_CLASS_TO_STOP and len(values) >= _MIN_ROWS_TO_STOP
    else:
        stop = len(values) >= _MIN_ROWS_TO_STOP
    return {
        "max_iter": budget.boosting_max_iter,
        "early_stopping": bool(stop),
        "validation_fraction": 0.1,
        "n_iter_no_change": 10,
    }


def _mlp(budget: Budget) -> dict[str, Any]:
    return {
        "hidden": budget.mlp_hidden,
        "members": budget.mlp_members,
        "max_epochs": budget.mlp_max_epochs,
        "patience": budget.mlp_patience,
    }


def _auc(model: Any, z: np.ndarray, s: np.ndarray) -> float | None:
    return _auc_of(model.classes_, model.predict_proba(z), s)


def _auc_of(classes: np.ndarray, proba: np.ndarray, s: np.ndarray) -> float | None:
    """ROC AUC of class probabilities `proba` (a column per class): binary, or macro
    one-vs-rest over the classes present in the test rows."""
    present = np.unique(s)
    if len(present) < 2:
        return None
    if len(classes) == 2:
        return float(roc_auc_score(s == classes[1], proba[:, 1]))
    keep = np.isin(classes, present)
    scores = proba[:, keep]
    scores = scores / np.clip(scores.sum(1, keepdims=True), 1e-12, None)
    if len(present) == 2:
        return float(roc_auc_score(s == present[1], scores[:, 1]))
    return float(roc_auc_score(s, scores, multi_class="ovr", average="macro", labels=present))


# --------------------------------------------------------------------------- summaries


def _best(scores: dict[str, dict[str, float | None]], metric: str) -> float | None:
    values = [v[metric] for v in scores.values() if v[metric] is not None]
    return max(values) if values else None


def _summary(curve: list[dict[str, Any]], metrics: tuple[str, ...]) -> dict[str, Any]:
    """A leakage figure's learning curve, and whether it still rises."""
    return {
        "learning_curve": [_point(p, metrics) for p in curve],
        "lower_bound": _rising(curve, metrics),
    }


def _point(point: dict[str, Any], metrics: tuple[str, ...]) -> dict[str, Any]:
    """One learning-curve point: the best model's figure per metric at that share of rows."""
    best = {m: _best(point["scores"], m) for m in metrics}
    return {"fraction": point["fraction"], "n_train": point["n_train"]} | best


def _rising(curve: list[dict[str, Any]], metrics: tuple[str, ...]) -> bool:
    """True when the last doubling of the rows (50% → 100%) still adds more than a point."""
    halves = [p for p in curve if p["fraction"] == 0.5]
    if not halves:
        return False
    half, full = halves[0]["scores"], curve[-1]["scores"]
    for metric in metrics:
        before, after = _best(half, metric), _best(full, metric)
        if before is not None and after is not None and after - before > RISING:
            return True
    return False


# --------------------------------------------------------------------------- checks


def _matrix(z: Any, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or len(z) == 0:
        raise DataError(f"{name} must be a non-empty (n, d) matrix, got shape {z.shape}")
    if not np.isfinite(z).all():
        raise DataError(f"{name} holds NaN or inf")
    return z


def _checked(
    z_train: Any, v_train: Any, z_test: Any, v_test: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Codes as finite (n, d) matrices of one width, values one per code row."""
    z_train, z_test = _matrix(z_train, "z_train"), _matrix(z_test, "z_test")
    if z_train.shape[1] != z_test.shape[1]:
        raise DataError(
            f"train and test latents differ in width: {z_train.shape[1]} vs {z_test.shape[1]}"
        )
    return z_train, _labels(v_train, z_train, "train"), z_test, _labels(v_test, z_test, "test")


def _labels(values: Any, z: np.ndarray, part: str) -> np.ndarray:
    values = np.asarray(values).ravel()
    if len(values) != len(z):
        raise DataError(
            f"{part} latents and values differ in length: {len(z)} vs {len(values)} rows"
        )
    return values
