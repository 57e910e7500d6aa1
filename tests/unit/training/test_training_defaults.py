"""Unset batch size and learning rate follow the data: tables train with their own defaults
(chosen on real tables by benchmarks/synthesis.py), images, DP-SGD and federated sites keep 128
and 1e-3, and a value the user sets always wins."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds import FDS
from fds.config import (
    TABLE_DEFAULTS_MIN_ROWS,
    TRAINING_DEFAULTS,
    make_config,
    with_training_defaults,
)
from fds.data.datasets.census import make_census
from fds.federated.site import site_config

SMALL = {"latent_dim": 3, "hidden_dims": [16], "epochs": 2, "verbose": False}


def test_a_table_trains_with_the_table_defaults() -> None:
    table = make_census(n=1300, seed=0)  # 1,170 training rows: above TABLE_DEFAULTS_MIN_ROWS
    model = FDS(**SMALL | {"epochs": 1}).fit(table)
    defaults = TRAINING_DEFAULTS["table"]
    assert (model.config_.batch_size, model.config_.lr) == (defaults["batch_size"], defaults["lr"])
    n_train = len(table) - round(0.1 * len(table))
    # the steps taken are those of the table batch, not of the image one
    assert model.history_[-1]["step"] == n_train // defaults["batch_size"]
    assert model.history_[-1]["lr"] == pytest.approx(defaults["lr"])


def test_a_small_table_keeps_the_defaults_that_give_it_enough_steps(census: pd.DataFrame) -> None:
    assert len(census) < TABLE_DEFAULTS_MIN_ROWS
    model = FDS(**SMALL).fit(census)
    other = TRAINING_DEFAULTS["other"]
    assert (model.config_.batch_size, model.config_.lr) == (other["batch_size"], other["lr"])


def test_images_keep_their_defaults(digits: np.ndarray) -> None:
    model = FDS(**SMALL).fit(digits)
    other = TRAINING_DEFAULTS["other"]
    assert (model.config_.batch_size, model.config_.lr) == (other["batch_size"], other["lr"])
    assert model.history_[-1]["step"] == 2 * ((len(digits) - 40) // other["batch_size"])


def test_set_values_win_over_the_table_defaults(census: pd.DataFrame) -> None:
    model = FDS(**SMALL | {"batch_size": 64, "lr": 3e-3}).fit(census)
    assert (model.config_.batch_size, model.config_.lr) == (64, 3e-3)
    assert model.history_[-1]["step"] == 2 * ((len(census) - 40) // 64)


def test_a_table_under_dp_sgd_keeps_the_defaults_its_privacy_was_measured_at() -> None:
    config = make_config(privacy={"epsilon": 4.0}).resolved()
    chosen = with_training_defaults(config, "table")
    other = TRAINING_DEFAULTS["other"]
    assert (chosen.batch_size, chosen.lr) == (other["batch_size"], other["lr"])


def test_a_federated_site_keeps_the_defaults_its_figures_were_measured_at() -> None:
    config = site_config({"latent_dim": 3, "epochs": 2})
    other = TRAINING_DEFAULTS["other"]
    assert (config.batch_size, config.lr) == (other["batch_size"], other["lr"])


def test_a_table_model_with_a_key_keeps_the_defaults_its_leakage_was_measured_at(
    census: pd.DataFrame,
) -> None:
    model = FDS(**SMALL | {"preset": "fds", "sensitive": ["sex"], "latent_dim": 4}).fit(census)
    other = TRAINING_DEFAULTS["other"]
    assert (model.config_.batch_size, model.config_.lr) == (other["batch_size"], other["lr"])
