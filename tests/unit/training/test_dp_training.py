"""DP-SGD training: the spent (ε, δ) is recorded and within the target, noise grows as ε shrinks,
batch-coupled objectives are refused, and the codec reads no statistics from the data under DP."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import torch

from fds import FDS
from fds.config import DPConfig
from fds.errors import ConfigError
from fds.training.dp import noise_multiplier_for
from fds.workflows.train import DPCodecFile
from tests.conftest import FAST
from tests.interrupting import fit_stopped_at

DP = {"epsilon": 2.0}


def test_dp_training_on_images_records_spent_epsilon(digits, tmp_path):
    model = FDS(**FAST, privacy=DP).fit(digits)
    spent = model.privacy_
    assert 0 < spent["epsilon"] <= DP["epsilon"] * 1.01
    n_train = round(len(digits) * 0.9)
    assert spent["delta"] == pytest.approx(1 / (10 * n_train))
    assert spent["steps"] == len(model.history_) * (n_train // FAST["batch_size"])
    assert spent["sample_rate"] == pytest.approx(FAST["batch_size"] / n_train)
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["privacy"]["epsilon"] == spent["epsilon"]
    assert manifest["privacy"]["mechanism"] == "dp-sgd"
    assert FDS.load(tmp_path / "m").privacy_["noise_multiplier"] == spent["noise_multiplier"]


@pytest.mark.parametrize(
    "arch", [{"architecture": "mlp"}, {"architecture": "conv", "conv_channels": [4, 8]}]
)
@pytest.mark.slow
def test_ghost_and_hook_clipping_train_the_same_weights(digits, arch):
    """Ghost clipping must clip every layer (Linear, Conv2d, ConvTranspose2d) exactly as the
    per-example gradients do: the two modes reach the same weights."""
    params = FAST | arch | {"epochs": 1}
    fixed = DP | {"noise_seed": 7}
    ghost = FDS(**params, privacy=fixed | {"grad_sample_mode": "ghost"}).fit(digits[:200])
    hooks = FDS(**params, privacy=fixed | {"grad_sample_mode": "hooks"}).fit(digits[:200])
    np.testing.assert_allclose(
        ghost.transform(digits[:20]), hooks.transform(digits[:20]), atol=1e-4
    )


@pytest.mark.parametrize("preset", ["ae", "dae", "sparse_ae", "beta_vae"])
def test_presets_with_per_example_losses_train_under_dp(digits, preset):
    model = FDS(**FAST | {"epochs": 1}, preset=preset, privacy=DP).fit(digits[:100])
    assert 0 < model.privacy_["epsilon"] <= 2.02


def test_dp_changes_training_and_non_private_has_no_record(digits):
    plain = FDS(**FAST).fit(digits[:200])
    private = FDS(**FAST, privacy=DP).fit(digits[:200])
    assert plain.privacy_ is None
    assert not np.allclose(plain.transform(digits[:5]), private.transform(digits[:5]))


@pytest.mark.slow
def test_noise_multiplier_grows_as_epsilon_shrinks():
    sigmas = [
        noise_multiplier_for(DPConfig(epsilon=e), sample_rate=0.05, steps=200, delta=1e-5)
        for e in (8.0, 4.0, 2.0, 1.0, 0.5)
    ]
    assert all(a < b for a, b in itertools.pairwise(sigmas))


@pytest.mark.parametrize(
    ("params", "culprit"),
    [
        ({"preset": "beta_tcvae"}, "tc"),
        ({"preset": "vae", "free_bits": 0.5}, "free_bits"),
        ({"preset": "factor_vae"}, "factor"),
        ({"independence": 1.0}, "independence"),
    ],
)
def test_batch_coupled_objectives_are_refused(digits, params, culprit):
    with pytest.raises(ConfigError, match=culprit):
        FDS(**FAST | params, privacy=DP).fit(digits[:100])


def test_vae_preset_drops_free_bits_under_dp(digits):
    model = FDS(**FAST, preset="vae", privacy=DP).fit(digits[:100])
    assert model.config_.free_bits == 0.0


def test_delta_must_be_below_one_over_n(digits):
    with pytest.raises(ConfigError, match="delta"):
        FDS(**FAST, privacy={"epsilon": 1.0, "delta": 0.05}).fit(digits[:100])


def test_codec_refuses_undeclared_columns_under_dp(census):
    with pytest.raises(ConfigError, match="'age' needs declared bounds"):
        FDS(**FAST, privacy=DP).fit(census)


def test_codec_uses_declared_bounds_and_categories_only(census):
    table = census[["age", "income", "sex", "married"]]
    declared = {
        "bounds": {"age": [18, 90], "income": [0, 200_000]},
        "categories": {"sex": ["female", "male"], "married": [False, True]},
    }
    model = FDS(**FAST, privacy=DP, **declared).fit(table)
    specs = {c.name: c for c in model.codec_.columns}
    # from the bounds, not the data: the bounded transform maps [18, 90] onto ±logit(0.99)
    assert specs["age"].center == pytest.approx(0, abs=1e-12)
    assert specs["age"].scale == pytest.approx(np.log(0.99 / 0.01))
    assert specs["sex"].categories == ["female", "male"]
    shifted = table.assign(age=table["age"] + 1000)  # out of bounds: clipped, not rescaled
    assert model.codec_.encode(shifted)[:, 0].max() == pytest.approx(1.0)


def test_quantile_transform_is_refused_under_dp(census):
    with pytest.raises(ConfigError, match="quantile"):
        FDS(**FAST, privacy=DP, continuous_transform="quantile", bounds={"age": [0, 99]}).fit(
            census[["age"]]
        )


def test_privacy_config_round_trips_through_get_params_and_clone():
    from sklearn.base import clone

    model = FDS(privacy={"epsilon": 1.0, "delta": 1e-6})
    assert clone(model).get_params()["privacy"] == {"epsilon": 1.0, "delta": 1e-6}
    with pytest.raises(ConfigError, match="privacy"):
        FDS(privacy={"epsilon": -1})._config()
    with pytest.raises(ConfigError, match="privacy"):
        FDS(privacy={"epsilon": 1, "epsilonn": 2})._config()


@pytest.mark.slow
def test_resumed_dp_run_keeps_its_accounting(digits, tmp_path):
    """The accountant's history (noise, rate, steps) comes back from the checkpoint."""
    (tmp_path / "a").mkdir()
    full = FDS(**FAST, privacy=DP).fit(digits[:200], run_dir=tmp_path / "a")
    again = FDS(**FAST, privacy=DP).fit(digits[:200], run_dir=tmp_path / "a", resume=True)
    assert again.privacy_["steps"] == full.privacy_["steps"] > 0
    assert again.privacy_["epsilon"] == full.privacy_["epsilon"]
    np.testing.assert_array_equal(again.transform(digits[:5]), full.transform(digits[:5]))


def test_dp_training_on_a_table_with_declared_schema(census):
    table = census[["age", "sex"]]
    model = FDS(
        **FAST, privacy=DP, bounds={"age": [18, 90]}, categories={"sex": ["female", "male"]}
    ).fit(table)
    assert isinstance(model.sample(5), pd.DataFrame)
    assert 0 < model.privacy_["epsilon"] <= 2.02


def test_empty_poisson_batches_take_noise_only_steps(digits):
    """With q = 1/36 most batches are empty; each still counts as a step of the accountant."""
    model = FDS(
        **FAST | {"batch_size": 1, "epochs": 1}, val_fraction=0.0, privacy={"epsilon": 4.0}
    ).fit(digits[:36])
    assert model.privacy_["steps"] == 36
    assert np.isfinite(model.history_[-1]["train_loss"])
    assert 0 < model.privacy_["epsilon"] <= 4.04


@pytest.mark.slow
def test_prv_accountant_is_tighter_than_rdp(digits):
    rdp = FDS(**FAST, privacy=DP).fit(digits[:200])
    prv = FDS(**FAST, privacy=DP | {"accountant": "prv"}).fit(digits[:200])
    assert prv.privacy_["accountant"] == "prv" and 0 < prv.privacy_["epsilon"] <= 2.02
    assert prv.privacy_["noise_multiplier"] < rdp.privacy_["noise_multiplier"]


@pytest.mark.slow
def test_custom_batchnorm_becomes_groupnorm_and_loads_back(digits, tmp_path):
    from torch import nn

    def encoder() -> nn.Module:
        return nn.Sequential(nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 6))

    model = FDS(**FAST, encoder=encoder(), privacy=DP).fit(digits[:200])
    layers = [type(m).__name__ for m in model.model_.encoder]
    assert "GroupNorm" in layers and "BatchNorm1d" not in layers
    model.save(tmp_path / "m")
    loaded = FDS.load(tmp_path / "m", encoder=encoder())
    np.testing.assert_array_equal(loaded.transform(digits[:5]), model.transform(digits[:5]))


def test_a_dp_trainer_refuses_a_second_fit(digits):
    """Its noise was calibrated for one run's steps: a second run would spend ε unaccounted."""
    from fds.config import make_config
    from fds.data.image_codec import ImageCodec
    from fds.data.stream import Rows
    from fds.models import build_model
    from fds.training.trainer import Trainer

    config = make_config(latent_dim=2, hidden_dims=[8], epochs=1, privacy=DP).resolved()
    codec = ImageCodec.fit(digits)
    model = build_model(config, codec.blocks, codec.chw)
    trainer = Trainer(
        model, config, Rows(digits, np.arange(100), codec.encode), show_progress=False
    )
    trainer.fit()
    assert trainer.privacy["steps"] > 0
    with pytest.raises(ConfigError, match="already trained"):
        trainer.fit()


@pytest.mark.slow
def test_noise_and_batches_are_secret_unless_a_noise_seed_is_given(digits, tmp_path):
    """The config's seed is public (config.json): DP noise must not be predictable from it."""
    first = FDS(**FAST, privacy=DP).fit(digits[:100])
    second = FDS(**FAST, privacy=DP).fit(digits[:100])
    assert not np.allclose(first.transform(digits[:5]), second.transform(digits[:5]))
    fixed = [FDS(**FAST, privacy=DP | {"noise_seed": 3}).fit(digits[:100]) for _ in range(2)]
    np.testing.assert_array_equal(fixed[0].transform(digits[:5]), fixed[1].transform(digits[:5]))
    first.save(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["params"]["privacy"]["noise_seed"] is None


@pytest.mark.slow
def test_dp_run_interrupted_mid_epoch_resumes_bit_for_bit(digits, tmp_path):
    """Key, noise generator and loop position come back from the checkpoint: same weights, same ε."""
    params = FAST | {"epochs": 2, "batch_size": 32}
    privacy = DP | {"noise_seed": 11}
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    reference = FDS(**params, privacy=privacy).fit(digits[:200], run_dir=tmp_path / "ref")

    # mid second epoch (5 steps per epoch)
    fit_stopped_at(
        7, lambda: FDS(**params, privacy=privacy).fit(digits[:200], run_dir=tmp_path / "cut")
    )
    resumed = FDS(**params, privacy=privacy | {"noise_seed": None})  # the key is in the checkpoint
    resumed.fit(digits[:200], run_dir=tmp_path / "cut", resume=True)
    assert resumed.privacy_["steps"] == reference.privacy_["steps"]
    assert resumed.privacy_["epsilon"] == reference.privacy_["epsilon"]
    np.testing.assert_array_equal(resumed.transform(digits[:9]), reference.transform(digits[:9]))


STATS = {
    "bounds": {"age": [0, 120], "income": [0, 1e6]},
    "categories": {"sex": ["female", "male"]},
}


def _census_table(census: pd.DataFrame) -> pd.DataFrame:
    return census[["age", "income", "sex"]]


def test_dp_codec_statistics_are_estimated_and_charged(census):
    table = _census_table(census)
    model = FDS(
        **FAST, privacy=DP | {"statistics_epsilon": 2.0}, continuous_transform="standard", **STATS
    ).fit(table)
    age = next(c for c in model.codec_.columns if c.name == "age")
    # a DP estimate: near the data's mean and spread, unlike the bounds' midpoint (60) and half range
    assert abs(age.center - table["age"].mean()) < 8 and abs(age.scale - table["age"].std()) < 8
    record = model.privacy_["codec_statistics"]
    assert record["epsilon"] == 2.0 and record["columns"] == ["age", "income"]
    assert model.privacy_["total_epsilon"] > model.privacy_["epsilon"]


def test_dp_quantile_transform_with_statistics_epsilon(census):
    table = _census_table(census)
    model = FDS(
        **FAST,
        privacy=DP | {"statistics_epsilon": 2.0},
        continuous_transform="quantile",
        **STATS,
    ).fit(table)
    income = next(c for c in model.codec_.columns if c.name == "income")
    assert income.quantiles is not None and income.quantiles == sorted(income.quantiles)
    assert income.quantiles[50] < 2 * table["income"].median() + 20_000


@pytest.mark.slow
def test_resume_reuses_the_dp_codec_instead_of_spending_again(census, tmp_path):
    table = _census_table(census)
    (tmp_path / "r").mkdir()
    params = dict(FAST, privacy=DP | {"statistics_epsilon": 1.0}, **STATS)
    store = DPCodecFile(tmp_path / "r")
    first = FDS(**params).fit(table, run_dir=tmp_path / "r", codec_store=store)
    again = FDS(**params).fit(table, run_dir=tmp_path / "r", resume=True, codec_store=store)
    assert store.path.is_file()
    assert again.codec_.to_json() == first.codec_.to_json()
    assert again.privacy_["codec_statistics"] == first.privacy_["codec_statistics"]


def test_deterministic_codes_under_dp_sample_from_the_standard_normal(digits):
    model = FDS(**FAST, preset="ae", privacy=DP).fit(digits[:100])
    assert torch.equal(model.latent_loc_, torch.zeros(FAST["latent_dim"]))
    assert torch.equal(model.latent_scale_tril_, torch.eye(FAST["latent_dim"]))


@pytest.mark.parametrize("adversary", ["alternating", "gradient_reversal"])
def test_the_key_under_dp_trains_its_adversary_inside_dp_sgd(digits, adversary):
    """An alternating adversary has its own optimizer: it would see the data without noise."""
    labels = np.arange(len(digits)) % 2
    params = {"preset": "fds", "latent_dim": 4, "independence": 0.0, "adversary": adversary}
    model = FDS(**(FAST | params), privacy=DP)
    if adversary == "alternating":
        with pytest.raises(ConfigError, match="gradient_reversal"):
            model.fit(digits, sensitive=labels)
    else:
        assert model.fit(digits, sensitive=labels).privacy_["epsilon"] <= DP["epsilon"] + 1e-6
