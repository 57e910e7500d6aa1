"""The `fds` preset: public/private latent blocks, decoding with and without the key, leakage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fds.cli import app
from fds.config import make_config
from fds.data.datasets import load_builtin
from fds.errors import ConfigError, DataError
from fds.estimator import FDS
from fds.privacy.leakage import attribute_leakage

SMALL = {"hidden_dims": [32], "batch_size": 64, "verbose": False, "seed": 0}


def _table(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """`s` is binary and leaks through `x1` (x1 = 2·s + noise); x2, x3 are noise."""
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 2, size=n)
    return pd.DataFrame(
        {
            "x1": 2.0 * s + rng.normal(0, 0.5, n),
            "x2": rng.normal(size=n),
            "x3": rng.normal(size=n),
            "s": pd.Categorical.from_codes(s, ["no", "yes"]),
        }
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


@pytest.fixture(scope="module")
def keyed(table: pd.DataFrame) -> FDS:
    return FDS(preset="fds", sensitive=("s",), latent_dim=4, epochs=25, **SMALL).fit(table)


def test_preset_resolves_to_a_split_latent() -> None:
    config = make_config(preset="fds", sensitive=("s",), latent_dim=6).resolved()
    assert config.private_dim == 2 and config.public_dim == 4
    assert config.censor > 0 and config.independence > 0 and config.posterior == "gaussian"
    assert config.mmd > 0 and config.adversary == "none" and config.private_only
    # under DP-SGD the batch-coupled MMD gives way to the adversary DP-SGD can train
    dp = make_config(preset="fds", sensitive=("s",), privacy={"epsilon": 1}).resolved()
    assert dp.mmd == 0 and dp.adversary == "gradient_reversal"
    assert make_config(preset="fds", private_dim=3, latent_dim=6).resolved().private_dim == 3
    plain = make_config(preset="vae").resolved()
    assert plain.private_dim == 0 and plain.censor == 0 and plain.independence == 0


def test_private_dim_must_leave_a_public_block() -> None:
    with pytest.raises(ConfigError, match="private_dim=4 must be smaller than latent_dim=4"):
        make_config(preset="fds", private_dim=4, latent_dim=4)
    with pytest.raises(ConfigError, match=r"private_dim=2 .*latent_dim=2"):
        make_config(preset="fds", latent_dim=2).resolved()


def test_split_widths_and_decoding_with_and_without_the_key(
    keyed: FDS, table: pd.DataFrame
) -> None:
    Z = keyed.transform(table)
    public, private = keyed.transform(table, part="public"), keyed.transform(table, part="private")
    assert Z.shape == (len(table), 4) and public.shape == (len(table), 2)
    np.testing.assert_allclose(np.hstack([public, private]), Z)
    full = keyed.inverse_transform(Z)
    hidden = keyed.inverse_transform(public)  # keys drawn from the key prior
    assert list(hidden.columns) == list(table.columns)
    pd.testing.assert_frame_equal(
        keyed.inverse_transform(public, seed=3),
        keyed.inverse_transform(public, private="prior", seed=3),
    )
    # the key decodes the sensitive column; another record's key swaps it
    assert (full["s"].to_numpy() == table["s"].to_numpy()).mean() > 0.9
    for value in ("no", "yes"):
        donor = int(np.flatnonzero(table["s"].to_numpy() == value)[0])
        swapped = keyed.inverse_transform(public, private=private[donor])
        assert (swapped["s"] == value).mean() > 0.8, value
    per_row = keyed.inverse_transform(public, private=np.roll(private, 1, axis=0))
    assert len(per_row) == len(table)


@pytest.mark.slow
def test_the_key_decodes_an_unbalanced_attribute() -> None:
    """30 % "yes": a head reading the key's means let the decoder give everyone "no"."""
    rng = np.random.default_rng(0)
    s = (rng.random(800) < 0.3).astype(int)
    table = pd.DataFrame(
        {
            "x1": 2.0 * s + rng.normal(0, 0.5, 800),
            "x2": rng.normal(size=800),
            "s": np.where(s == 1, "yes", "no"),
        }
    )
    model = FDS(preset="fds", sensitive=("s",), latent_dim=4, epochs=60, **SMALL).fit(table)
    keyed = model.inverse_transform(model.transform(table))
    assert (keyed["s"] == table["s"]).mean() > 0.95


@pytest.mark.slow
def test_fds_public_block_leaks_less_than_a_plain_vae(keyed: FDS, table: pd.DataFrame) -> None:
    test = _table(n=600, seed=1)
    s_train, s_test = table["s"].to_numpy(), test["s"].to_numpy()
    vae = FDS(preset="vae", latent_dim=4, epochs=25, **SMALL).fit(table)
    plain = attribute_leakage(vae.transform(table), s_train, vae.transform(test), s_test)
    public = attribute_leakage(
        keyed.transform(table, part="public"), s_train, keyed.transform(test, part="public"), s_test
    )
    private = attribute_leakage(
        keyed.transform(table, part="private"),
        s_train,
        keyed.transform(test, part="private"),
        s_test,
    )
    assert plain["advantage"] > 0.4  # the vae's code holds s (through s and x1)
    assert public["advantage"] < plain["advantage"] - 0.2
    assert private["best_accuracy"] > 0.95


def test_save_load_keeps_heads_and_split(keyed: FDS, table: pd.DataFrame, tmp_path) -> None:
    keyed.save(tmp_path / "m")
    loaded = FDS.load(tmp_path / "m")
    assert loaded.model_.private_dim == 2 and loaded.model_.public_dim == 2
    assert [c.name for c in loaded.sensitive_] == ["s"]
    before = keyed.model_.state_dict()
    after = loaded.model_.state_dict()
    assert any(k.startswith("private_head.") for k in after)
    for name, tensor in before.items():
        assert (after[name] == tensor).all(), name
    np.testing.assert_allclose(
        loaded.transform(table, part="private"), keyed.transform(table, part="private")
    )
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["fitted"]["sensitive"][0]["classes"] == ["no", "yes"]


def test_bad_inputs_raise_typed_errors(keyed: FDS, table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"unknown sensitive column 'sx'.*did you mean 's'"):
        FDS(preset="fds", sensitive=("sx",), latent_dim=4, epochs=1, **SMALL).fit(table)
    with pytest.raises(ConfigError, match="needs sensitive attributes"):
        FDS(preset="fds", latent_dim=4, epochs=1, **SMALL).fit(table)
    with pytest.raises(ConfigError, match="need a private block"):
        FDS(preset="vae", sensitive=("s",), latent_dim=4, epochs=1, **SMALL).fit(table)
    with pytest.raises(DataError, match=r"\(N, 4\) or \(N, 2\)"):
        keyed.inverse_transform(np.zeros((3, 3)))
    with pytest.raises(DataError, match=r"private_dim = 2"):
        keyed.inverse_transform(np.zeros((3, 2)), private=np.zeros((3, 5)))
    with pytest.raises(DataError, match="unknown part"):
        keyed.transform(table, part="secret")
    images = load_builtin("shapes", n=64).X
    with pytest.raises(DataError, match="sensitive=labels_or_factors"):
        FDS(preset="fds", sensitive=("shape",), latent_dim=4, epochs=1, **SMALL).fit(images)
    with pytest.raises(DataError, match="rows"):
        FDS(preset="fds", latent_dim=4, epochs=1, **SMALL).fit(images, sensitive=np.zeros(10))


def test_images_take_sensitive_values_beside_the_data() -> None:
    data = load_builtin("shapes", n=200)
    model = FDS(preset="fds", latent_dim=4, epochs=1, **SMALL).fit(
        data.X, sensitive=data.factors[["shape"]]
    )
    assert model.config_.sensitive == ("shape",)
    assert model.sensitive_[0].kind == "categorical" and model.sensitive_[0].classes == [0, 1, 2]
    assert model.transform(data.X[:5], part="public").shape == (5, 2)
    assert model.inverse_transform(np.zeros((5, 2))).shape == (5, 32, 32)


def test_cli_train_encode_decode_with_the_key(tmp_path) -> None:
    runner = CliRunner()
    data = tmp_path / "t.csv"
    _table(300).to_csv(data, index=False)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--preset", "fds", "--sensitive", "s"]
    args += ["--latent-dim", "4", "--epochs", "1", "--out", str(run), "-q", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    public = tmp_path / "public.npy"
    result = runner.invoke(
        app, ["encode", "-m", str(run), "--data", str(data), "--part", "public", "-o", str(public)]
    )
    assert result.exit_code == 0, result.output
    assert np.load(public).shape == (300, 2)
    out = tmp_path / "hidden.csv"
    result = runner.invoke(
        app, ["decode", "-m", str(run), "-l", str(public), "--private", "prior", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 300
    bad = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(data),
            "--preset",
            "fds",
            "--sensitive",
            "nope",
            "--out",
            str(tmp_path / "bad"),
            "-q",
        ],
    )
    assert bad.exit_code == 2 and "unknown sensitive attribute 'nope'" in bad.output
    assert not (tmp_path / "bad").exists()
    key = tmp_path / "key.npy"
    np.save(key, np.zeros((300, 3), dtype=np.float32))
    wide = runner.invoke(
        app,
        [
            "decode",
            "-m",
            str(run),
            "-l",
            str(public),
            "--private",
            str(key),
            "-o",
            str(tmp_path / "x.csv"),
        ],
    )
    assert wide.exit_code == 2 and "private_dim = 2" in wide.output


@pytest.mark.slow
def test_evaluate_and_report_show_the_leakage(tmp_path) -> None:
    runner = CliRunner()
    data = tmp_path / "t.csv"
    _table(400).to_csv(data, index=False)
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--preset", "fds", "--sensitive", "s"]
    assert (
        runner.invoke(
            app, [*args, "--latent-dim", "4", "--epochs", "2", "-o", str(run), "-q"]
        ).exit_code
        == 0
    )
    result = runner.invoke(
        app, ["evaluate", "-m", str(run), "--fast", "--utility-target", "x2", "--json"]
    )
    assert result.exit_code == 0, result.output
    leakage = json.loads(result.stdout)["leakage"]
    public = leakage["attributes"]["s"]["public"]
    assert set(public["attackers"]) == {"logistic", "boosting", "mlp", "forest"}
    assert 0.4 < public["majority"] < 0.6
    assert leakage["utility"]["target"] == "x2"
    result = runner.invoke(app, ["report", "-m", str(run)])
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert "The key: public vs private" in html and "best attacker" in html
    assert "not encryption" in html


def test_resume_restores_the_adversary_and_matches_an_uninterrupted_run(tmp_path) -> None:
    from safetensors.torch import load_file

    from fds.workflows.train import train_run

    data = tmp_path / "t.csv"
    _table(300).to_csv(data, index=False)
    params = {"data": str(data), "preset": "fds", "sensitive": ["s"], "latent_dim": 4}
    params |= {"adversary": "alternating"} | {k: v for k, v in SMALL.items() if k != "verbose"}
    train_run(params | {"epochs": 2}, tmp_path / "full", verbose=False)
    train_run(params | {"epochs": 1}, tmp_path / "part", verbose=False)
    config = tmp_path / "part" / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))
    train_run({}, tmp_path / "part", resume=True, verbose=False)
    full = load_file(str(tmp_path / "full" / "model" / "weights.safetensors"))
    part = load_file(str(tmp_path / "part" / "model" / "weights.safetensors"))
    assert any(k.startswith("adversary.") for k in full)
    for key, tensor in full.items():
        assert (part[key] == tensor).all(), key


@pytest.mark.parametrize("adversary", ["gradient_reversal", "alternating"])
def test_privacy_terms_are_per_example_for_dp(adversary: str, table: pd.DataFrame) -> None:
    """The private-head and adversary terms have a per-example form (what DP-SGD clips); the
    between-block independence couples the batch and is refused there."""
    import torch

    params = {"sensitive": ("s",), "latent_dim": 4, "epochs": 1, "adversary": adversary}
    model = FDS(preset="fds", independence=0.0, free_bits=0.0, mmd=0.0, **params, **SMALL)
    model = model.fit(table)
    net = model.model_.train()
    x = torch.from_numpy(model.codec_.encode(table.iloc[:16]))
    s = torch.from_numpy((table["s"].iloc[:16] == "yes").to_numpy(np.float32)[:, None])
    terms = net.loss_terms(x, dataset_size=len(table), per_example=True, s=s)
    encoder_side = "adversary" if adversary == "gradient_reversal" else "censor"
    for name in ("private", encoder_side, "loss"):
        assert terms[name].shape == (16,), name
    if adversary == "alternating":
        assert terms["adversary"].shape == ()  # the adversary's own loss, outside `loss`
    coupled = FDS(preset="fds", **params, **SMALL).fit(table).model_
    with pytest.raises(ConfigError, match="couples the examples"):
        coupled.loss_terms(x, dataset_size=len(table), per_example=True, s=s)


def test_gradient_reversal_encoder_gets_the_opposite_gradient() -> None:
    import torch

    from fds.objectives.gradient_reversal import reverse_gradient

    z = torch.ones(3, requires_grad=True)
    (reverse_gradient(z, 2.0) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(z.grad, torch.tensor([-2.0, -4.0, -6.0]))


def test_group_mmd_sees_a_shifted_group_and_not_a_shuffled_one() -> None:
    """The MMD penalty is what pushes the public block to look the same for every group."""
    import torch

    from fds.objectives.attributes import AttributeSpec
    from fds.objectives.mmd import group_mmd
    from fds.objectives.private_spread import within_group_spread

    torch.manual_seed(0)
    s = torch.randint(0, 2, (256, 1)).float()
    z = torch.randn(256, 3)
    cat = [AttributeSpec("s", "categorical", 2)]
    assert group_mmd(z + s, s, cat) > 5 * group_mmd(z, s, cat)
    c = torch.randn(256, 1)  # a continuous attribute is compared across batch quartiles
    cont = [AttributeSpec("c", "continuous")]
    assert group_mmd(z + c, c, cont) > 5 * group_mmd(z, c, cont)
    # the private block's spread within groups: 0 when it is a function of s, ~1 when unrelated
    assert within_group_spread(torch.cat([s, -s], 1), s, cat) < 1e-6
    assert within_group_spread(z, s, cat) > 0.9
    collapsed = torch.zeros(8, 2, requires_grad=True)  # identical codes: finite gradient
    group_mmd(collapsed, s[:8], cat).backward()
    assert torch.isfinite(collapsed.grad).all()


@pytest.mark.slow
def test_mmd_hides_the_attribute_from_the_public_block(table: pd.DataFrame) -> None:
    """With the MMD term the public block's best attacker is near the base rate; the adversary
    alone (the previous default) left x1's information about s in it. The public encoder sees
    every column here (`public_input="all"`), so the MMD is tested on its own: s leaks only
    through its proxy x1, which hiding by construction does not remove."""
    test = _table(n=600, seed=1)
    s_train, s_test = table["s"].to_numpy(), test["s"].to_numpy()

    def public_leakage(**params: object) -> dict:
        key = {"preset": "fds", "sensitive": ("s",), "public_input": "all"}
        model = FDS(latent_dim=4, epochs=25, **key, **params, **SMALL).fit(table)
        z_train, z_test = (
            model.transform(table, part="public"),
            model.transform(test, part="public"),
        )
        return attribute_leakage(z_train, s_train, z_test, s_test)

    hidden = public_leakage()
    assert hidden["best_accuracy"] <= hidden["majority"] + 0.05
    assert public_leakage(mmd=0.0, adversary="alternating")["advantage"] > hidden["advantage"]


def test_censor_warmup_ramps_the_censoring_terms_but_not_the_private_head(
    table: pd.DataFrame,
) -> None:
    """Early in a censor warm-up the codes train nearly uncensored (DANN's ramp), while the
    private head learns the attribute from the first step."""
    import torch

    params = {"sensitive": ("s",), "latent_dim": 4, "adversary": "alternating", **SMALL}
    model = FDS(preset="fds", epochs=1, **params).fit(table)
    ramped = FDS(preset="fds", epochs=1, censor_warmup_epochs=1000, **params).fit(table)
    assert ramped.history_[0]["train_mmd"] < 0.01 * model.history_[0]["train_mmd"]

    net = ramped.model_.train()
    x = torch.from_numpy(ramped.codec_.encode(table.iloc[:64]))
    s = torch.from_numpy((table["s"].iloc[:64] == "yes").to_numpy(np.float32)[:, None])

    def terms(epoch_progress: float | None) -> dict:
        torch.manual_seed(0)
        return net.loss_terms(x, dataset_size=len(table), s=s, epoch_progress=epoch_progress)

    full, off = terms(None), terms(0.0)  # None: after the warm-up
    for name in ("mmd", "private_spread", "independence", "censor"):
        assert full[name] > 0, name
        assert off[name] == 0, name
    assert float(off["private"]) == pytest.approx(float(full["private"]))
