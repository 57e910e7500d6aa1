"""The leakage estimator: attackers find what the codes hold (also nonlinear, also rare), nothing
in noise, flag a figure that more rows would raise, and judge utility in the target's own terms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fds.errors import DataError
from fds.privacy import leakage
from fds.privacy.leakage import (
    ATTACKERS,
    FAST,
    TRUTHFUL,
    _classifier,
    attribute_leakage,
    necessary_leakage,
    target_utility,
)


def _split(z: np.ndarray, s: np.ndarray, n_train: int):
    return z[:n_train], s[:n_train], z[n_train:], s[n_train:]


def _data(informative: bool, n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    z = rng.normal(size=(n, 4))
    if informative:
        z[:, 0] += 3.0 * (s == "b") - 3.0 * (s == "c")
    return _split(z, s, 400)


def test_latents_holding_the_attribute_leak_it() -> None:
    result = attribute_leakage(*_data(informative=True), budget=FAST)
    assert set(result["attackers"]) == set(ATTACKERS)
    assert result["best_accuracy"] > 0.85
    assert result["advantage"] > 0.3
    assert result["best_auc"] > 0.9  # macro one-vs-rest over three classes
    assert result["n_classes"] == 3 and result["n_test"] == 200 and result["n_train"] == 400
    assert [p["fraction"] for p in result["learning_curve"]] == [0.25, 0.5, 1.0]
    assert [p["n_train"] for p in result["learning_curve"]] == [100, 200, 400]


def test_independent_noise_stays_near_the_majority_baseline() -> None:
    result = attribute_leakage(*_data(informative=False), budget=FAST)
    assert abs(result["majority"] - 0.5) < 0.1
    assert result["advantage"] < 0.08
    for scores in result["attackers"].values():
        assert 0.35 < scores["auc"] < 0.65


def test_a_nonlinear_leak_that_logistic_regression_cannot_read_is_found() -> None:
    """s = XOR of the signs of two coordinates: no linear attacker beats the majority."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 4))
    s = (z[:, 0] > 0) ^ (z[:, 1] > 0)
    result = attribute_leakage(*_split(z, s, 2000), budget=FAST)
    assert result["attackers"]["logistic"]["accuracy"] < result["majority"] + 0.05
    assert result["best_accuracy"] > result["majority"] + 0.35
    assert result["best_attacker"] != "logistic"


def test_auc_reveals_a_rare_attribute_that_accuracy_hides() -> None:
    """6% positives shifted by one σ: no attacker beats always guessing 'negative' by much,
    but the AUC shows the codes rank the positives."""
    rng = np.random.default_rng(1)
    s = (rng.random(4000) < 0.06).astype(int)
    z = rng.normal(size=(4000, 3))
    z[:, 0] += 1.2 * s
    result = attribute_leakage(*_split(z, s, 3000), budget=FAST)
    assert result["best_accuracy"] < result["majority"] + 0.02
    assert result["best_auc"] > 0.75
    noise = attribute_leakage(*_split(rng.normal(size=(4000, 3)), s, 3000), budget=FAST)
    assert noise["best_auc"] < 0.6


def test_a_curve_still_rising_marks_the_figure_as_a_lower_bound() -> None:
    """An attribute spread thinly over many features: more attacker rows keep helping."""
    rng = np.random.default_rng(2)
    w = rng.normal(size=60)
    z = rng.normal(size=(1300, 60))
    s = (z @ w + 2.0 * rng.normal(size=1300)) > 0
    rising = attribute_leakage(*_split(z, s, 300), budget=FAST)
    half, full = rising["learning_curve"][1], rising["learning_curve"][2]
    assert full["accuracy"] - half["accuracy"] > 0.01 and rising["lower_bound"] is True
    z = rng.normal(size=(3000, 4))
    flat = attribute_leakage(*_split(z, z[:, 0] > 0, 2000), budget=FAST)  # read at any size
    assert flat["best_accuracy"] > 0.97 and flat["lower_bound"] is False


def test_truthful_attackers_are_the_default_and_reproducible() -> None:
    z_train, s_train, z_test, s_test = _data(informative=True)
    data = (z_train[:150], s_train[:150], z_test[:50], s_test[:50])
    first = attribute_leakage(*data, seed=3)
    assert first["budget"] == "truthful" and first == attribute_leakage(*data, seed=3)
    capped = attribute_leakage(*data, budget=replace(FAST, name="tiny", max_train_rows=100))
    assert capped["n_train"] == 100 and capped["budget"] == "tiny"


def test_utility_in_the_targets_own_terms() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(1500, 3))
    y = z[:, 0] ** 2 + 0.1 * rng.normal(size=1500)  # continuous, nonlinear
    r2 = target_utility(*_split(z, y, 1000), continuous=True, budget=FAST)
    assert r2["utility_metric"] == "r2" and r2["utility"] > 0.8 and r2["baseline"] == 0.0
    assert r2["models"]["ridge"]["r2"] < 0.1  # a linear probe misses it
    classes = np.where(z[:, 1] > 0, "up", "down")
    acc = target_utility(*_split(z, classes, 1000), continuous=False, budget=FAST)
    assert acc["utility_metric"] == "accuracy" and acc["utility"] > 0.9 and acc["auc"] > 0.95
    assert 0.4 < acc["majority"] < 0.6
    for utility in (r2, acc):  # fitted once on every row: a utility is never a leakage bound
        assert utility["n_train"] == 1000 and "lower_bound" not in utility


def test_a_perfect_figure_needs_no_learning_curve(monkeypatch) -> None:
    """Attackers that read every held-out row right, at AUC 1, cannot be beaten by more rows:
    the figure is no lower bound, and only the fit on all rows is run."""
    rng = np.random.default_rng(6)
    z = rng.normal(size=(1500, 3))
    s = np.where(z[:, 0] > 0, "a", "b")
    z[:, 0] += np.where(s == "a", 2.0, -2.0)  # a wide margin: every attacker separates it
    fitted = []
    scores = leakage._scores
    monkeypatch.setattr(leakage, "_scores", lambda *a: fitted.append(len(a[1])) or scores(*a))
    perfect = attribute_leakage(*_split(z, s, 1000), budget=FAST)
    assert fitted == [1000]
    assert perfect["best_accuracy"] == 1.0 and perfect["best_auc"] == 1.0
    assert [p["fraction"] for p in perfect["learning_curve"]] == [1.0]
    assert perfect["lower_bound"] is False and perfect["n_train"] == 1000
    assert list(perfect["attackers"]) == ["logistic"]  # none can beat it: the rest not fitted
    near = attribute_leakage(*_split(z[:, 1:], s, 1000), budget=FAST)  # no signal: full curve
    assert [p["fraction"] for p in near["learning_curve"]] == [0.25, 0.5, 1.0]
    assert list(near["attackers"]) == list(leakage.ATTACKERS)


def test_necessary_leakage_is_what_the_target_alone_reveals() -> None:
    rng = np.random.default_rng(4)
    s = rng.integers(0, 2, size=2000)
    y = s + rng.normal(scale=0.5, size=2000)  # the target carries s
    carried = necessary_leakage(*_split(y, s, 1500), continuous=True, budget=FAST)
    assert carried["best_accuracy"] > 0.8
    groups = rng.choice(["x", "y", "z"], size=2000)  # a target unrelated to s
    free = necessary_leakage(*_split(groups, s, 1500), continuous=False, budget=FAST)
    assert free["best_accuracy"] < free["majority"] + 0.05


def test_necessary_leakage_of_a_category_is_the_table_of_its_shares() -> None:
    """Category a is 90% s=1, b 20%, c 50/50: the best any attacker can do is to predict 1 on a
    and 0 on b; a category never seen in the attacker rows gets the majority."""
    rng = np.random.default_rng(6)
    y = rng.choice(["a", "b", "c"], size=6000)
    s = (rng.random(6000) < np.select([y == "a", y == "b"], [0.9, 0.2], 0.5)).astype(int)
    y_test = np.concatenate([y[4000:], ["unseen"] * 10])
    s_test = np.concatenate([s[4000:], [0] * 10])
    r = necessary_leakage(y[:4000], s[:4000], y_test, s_test, continuous=False)
    on_a, on_b = y_test == "a", y_test == "b"
    bayes = (np.sum(s_test[on_a] == 1) + np.sum(s_test[on_b] == 0)) / len(s_test)
    c_rows = (y_test == "c") | (y_test == "unseen")
    assert r["best_attacker"] == "lookup"
    assert bayes < r["best_accuracy"] < bayes + c_rows.mean()  # c and unseen: a coin and 0
    assert r["best_auc"] > 0.75 and r["n_train"] == 4000
    assert [p["fraction"] for p in r["learning_curve"]] == [0.25, 0.5, 1.0]


def test_boosting_stops_early_only_where_a_held_out_tenth_holds_every_class() -> None:
    """A class of 6 rows among 400 cannot be stratified into a held-out tenth: boosting then
    fits all its rounds instead of failing; with enough rows it stops on the held-out loss."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(600, 2))
    s = np.where(z[:, 0] > 0, "a", "b")
    s[:6] = "rare"
    rare = attribute_leakage(*_split(z, s, 400), budget=FAST)
    assert rare["attackers"]["boosting"]["accuracy"] > 0.85
    noisy = np.where(rng.random(600) < 0.2, s[::-1], s)[6:]  # a fifth of the labels scrambled
    model = _classifier("boosting", 0, TRUTHFUL, noisy).fit(z[6:], noisy)
    assert model.n_iter_ < TRUTHFUL.boosting_max_iter  # the held-out loss stops falling early


def test_bad_inputs_raise_data_errors() -> None:
    z = np.zeros((10, 2))
    with pytest.raises(DataError, match="differ in length"):
        attribute_leakage(z, np.arange(9) % 2, z, np.arange(10) % 2)
    with pytest.raises(DataError, match="single value"):
        attribute_leakage(z, np.zeros(10), z, np.zeros(10))
    with pytest.raises(DataError, match="width"):
        attribute_leakage(z, np.arange(10) % 2, np.zeros((10, 3)), np.arange(10) % 2)
    with pytest.raises(DataError, match="NaN"):
        target_utility(z, np.full(10, np.nan), z, np.zeros(10), continuous=True)


def test_codes_that_take_few_values_leak_cell_by_cell_to_the_forest() -> None:
    """A rounded public block: each code is one of 8³ cells and the attribute a fixed random
    function of the cell. Smooth attackers read part of it (the fast budget's boosting 0.76, its
    MLP 0.54); the forest reads it cell by cell, and the estimator's figure is the forest's."""
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 8, size=(3000, 3))
    table = rng.integers(0, 2, size=(8, 8, 8))
    s = table[cells[:, 0], cells[:, 1], cells[:, 2]]
    result = attribute_leakage(*_split(cells / 2.0, s, 2400), budget=FAST)
    assert result["attackers"]["logistic"]["accuracy"] < 0.6
    assert result["attackers"]["forest"]["accuracy"] > 0.95
    assert result["best_attacker"] == "forest" and result["best_accuracy"] > 0.95
