"""One leakage measurement: `fds evaluate` and `fds attack --kind attribute` report the same
figures for the same model, from attackers fitted on every training row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fds.data.datasets import make_census
from fds.data.files import read_data
from fds.estimator import FDS
from fds.privacy.leakage import FAST, attribute_leakage
from fds.runtime.threads import threads_in_use
from fds.workflows.attack import attack_run
from fds.workflows.evaluate import evaluate_run, leakage_headline
from fds.workflows.leakage import leakage_notes, measure_leakage
from tests.cli_helpers import fds, train_run


@pytest.fixture(scope="module")
def keyed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("keyed")
    make_census(n=700, seed=0).to_csv(root / "census.csv", index=False)
    (root / "key.yaml").write_text(
        "preset: fds\nsensitive: [sex]\nlatent_dim: 4\nprivate_dim: 1\nhidden_dims: [32]\n"
        "epochs: 2\nbatch_size: 64\nval_fraction: 0.2\n"
    )
    return train_run(root / "census.csv", root / "key.yaml", root / "run")


def test_evaluate_and_attack_report_the_same_leakage(keyed: Path) -> None:
    model, data = FDS.load(keyed / "model"), read_data(str(keyed.parent / "census.csv"))
    evaluated = evaluate_run(model, data, utility_target="income", fast=True)["leakage"]
    attacked = attack_run(model, data, ["attribute"], utility_target="income", budget=FAST)
    attacked = attacked["attribute"]
    assert attacked["latents"] == "public"
    assert attacked["attributes"]["sex"]["public"] == evaluated["attributes"]["sex"]["public"]
    assert attacked["utility"] == evaluated["utility"]
    assert attacked["n_train"] == evaluated["n_train"] == 560  # every row the model trained on
    assert attacked["n_test"] == 140  # scored on the rows it held out
    sex = evaluated["attributes"]["sex"]
    assert sex["necessary_accuracy"] == sex["necessary"]["best_accuracy"]
    assert sex["private"]["best_accuracy"] >= sex["private"]["majority"]
    # income is continuous: its utility is an R², not an accuracy on quartiles
    assert evaluated["utility"]["utility_metric"] == "r2" and "models" in evaluated["utility"]


@pytest.mark.slow
def test_cli_evaluate_and_attack_agree_with_the_truthful_attackers(keyed: Path) -> None:
    target = ("--utility-target", "income")
    evaluated = fds("evaluate", keyed, "--iwae-k", "2", *target, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    leakage = json.loads(evaluated.stdout)["leakage"]
    assert leakage["budget"] == "truthful"
    attacked = fds("attack", keyed, "-k", "attribute", *target, "--json")
    assert attacked.exit_code == 0, attacked.output
    attribute = json.loads(attacked.stdout)["attribute"]
    public = attribute["attributes"]["sex"]["public"]
    assert public == leakage["attributes"]["sex"]["public"]
    assert attribute["utility"] == leakage["utility"]
    assert set(public) >= {"best_accuracy", "best_auc", "majority", "learning_curve", "lower_bound"}
    summary = fds("evaluate", keyed, "--fast")
    assert summary.exit_code == 0 and "leakage_sex_public_auc" in summary.stdout


def test_a_lower_bound_is_said_in_words(keyed: Path) -> None:
    model, data = FDS.load(keyed / "model"), read_data(str(keyed.parent / "census.csv"))
    fast = measure_leakage(model, data, budget=FAST)
    assert any("fast budget" in note and "lower bound" in note for note in fast["notes"])
    # an attribute spread thinly over many features: the learning curve still rises
    rng = np.random.default_rng(2)
    z = rng.normal(size=(1300, 60))
    s = (z @ rng.normal(size=60) + 2.0 * rng.normal(size=1300)) > 0
    rising = attribute_leakage(z[:300], s[:300], z[300:], s[300:], budget=FAST)
    result = {"attributes": {"s": {"public": rising}}, "blocks": ["public"], "budget": "truthful"}
    (note,) = leakage_notes(result)
    assert note.startswith("s from the public block") and "lower bound" in note
    assert leakage_headline(result)["leakage_s_public_lower_bound"].startswith("yes")


def test_noise_on_the_released_codes_is_measured_too(keyed: Path) -> None:
    model, data = FDS.load(keyed / "model"), read_data(str(keyed.parent / "census.csv"))
    clean = measure_leakage(model, data, names=["sex"], blocks=("private",), budget=FAST)
    noisy = measure_leakage(
        model, data, names=["sex"], blocks=("private",), noise_std=30.0, budget=FAST
    )
    private, drowned = clean["attributes"]["sex"]["private"], noisy["attributes"]["sex"]["private"]
    assert drowned["best_accuracy"] < private["best_accuracy"]
    assert drowned["best_accuracy"] <= drowned["majority"] + 0.1


def test_the_figures_do_not_depend_on_how_many_fits_run_side_by_side(keyed: Path) -> None:
    """Every attacker is seeded on its own, the MLPs' initial weights included: fits run on two
    cores at once give the one-after-the-other figures, bit for bit."""
    model, data = FDS.load(keyed / "model"), read_data(str(keyed.parent / "census.csv"))
    threads = torch.get_num_threads()
    with threads_in_use(1):
        alone = measure_leakage(model, data, target="income", budget=FAST, workers=1)
    together = measure_leakage(model, data, target="income", budget=FAST, workers=2)
    assert together == alone
    assert torch.get_num_threads() == threads  # the pools are given back their size
