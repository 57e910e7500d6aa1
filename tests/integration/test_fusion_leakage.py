"""A fusion model's key measured as a single-modality key is: `fds evaluate` and `fds attack
--kind attribute` run the one leakage estimator on its public block encoded from all modalities
and from each one alone, with the same figures from both; a fusion model without a key
evaluates as before."""

from __future__ import annotations

import pandas as pd
import pytest

from fds import FDS
from fds.data.datasets.shapes_mm import make_shapes_mm
from fds.data.files import LoadedData
from fds.errors import ConfigError
from fds.privacy.leakage import ATTACKERS, FAST
from fds.workflows.attack import attack_run
from fds.workflows.attack import headline as attack_headline
from fds.workflows.evaluate import GROUPS, evaluate_run, leakage_headline

TINY = {"hidden_dims": (16,), "latent_dim": 4, "epochs": 2, "batch_size": 30, "verbose": False}
SOURCES = ["public_from.all", "public_from.text", "public_from.table"]


@pytest.fixture(scope="module")
def records() -> LoadedData:
    X, factors = make_shapes_mm(60, seed=0)
    X = {"text": list(X["text"]), "table": X["table"]}
    return LoadedData(X, "shapes-mm", factors["shape"].to_numpy(), factors)


@pytest.fixture(scope="module")
def keyed(records: LoadedData) -> FDS:
    """The shape factor as the key, given as values (as `fds train --sensitive factor:shape`)."""
    shape = pd.DataFrame({"factor:shape": records.factors["shape"]})
    return FDS(fusion="moe", preset="fds", **TINY).fit(records.X, sensitive=shape)


def test_evaluate_and_attack_measure_the_key_from_each_modality(
    keyed: FDS, records: LoadedData
) -> None:
    report = evaluate_run(keyed, records, fast=True, utility_target="factor:scale")
    evaluated = report["leakage"]
    assert evaluated["blocks"] == [*SOURCES, "private"]
    shape = evaluated["attributes"]["factor:shape"]
    for block in evaluated["blocks"]:
        fitted = list(shape[block]["attackers"])  # those after a perfect one are not fitted
        assert fitted == list(ATTACKERS)[: len(fitted)]
        assert len(fitted) == len(ATTACKERS) or shape[block]["best_accuracy"] == 1.0
        assert set(shape[block]) >= {"best_accuracy", "best_auc", "majority", "lower_bound"}
    assert shape["private"]["best_accuracy"] == 1.0  # the key is encoded from the shape alone
    assert shape["necessary_accuracy"] == shape["necessary"]["best_accuracy"]
    assert evaluated["utility"]["block"] == "public_from.all"
    # fusion models train on every record: the attackers split all of them
    assert evaluated["n_train"] + evaluated["n_test"] == 60
    assert evaluated["split"].startswith("fusion models train on every record")
    assert "leakage_factor_shape_public_from_text_auc" in leakage_headline(evaluated)
    assert report["multimodal"] is not None

    attacked = attack_run(keyed, records, ["attribute"], utility_target="factor:scale", budget=FAST)
    attribute = attacked["attribute"]
    assert attribute["latents"] == "public" and attribute["blocks"] == SOURCES  # not the key
    for block in SOURCES:
        assert attribute["attributes"]["factor:shape"][block] == shape[block]
    assert attribute["utility"] == evaluated["utility"]
    assert "attribute factor:shape from public_from.table: best attacker AUC" in attack_headline(
        attacked
    )


def test_a_fusion_model_without_a_key_evaluates_as_before(records: LoadedData) -> None:
    plain = FDS(fusion="moe", **TINY).fit(records.X)
    report = evaluate_run(plain, records, fast=True)
    assert all(report[group] is None for group in GROUPS)  # leakage too: there is no key
    assert report["multimodal"]["n_records"] == 60
    with pytest.raises(ConfigError, match="this fusion model has none"):
        evaluate_run(plain, records, fast=True, utility_target="factor:scale")
    with pytest.raises(ConfigError, match="--kind membership is not offered for fusion models"):
        attack_run(plain, records, ["membership", "attribute"])
    with pytest.raises(ConfigError, match="pass --sensitive"):
        attack_run(plain, records)
    attacked = attack_run(plain, records, ["attribute"], sensitive=["factor:shape"], budget=FAST)
    assert attacked["attribute"]["blocks"] == ["all_from.all", "all_from.text", "all_from.table"]
