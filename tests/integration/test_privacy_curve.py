"""`fds privacy-curve`: utility and attacker success over ε, and its report section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fds.data.datasets import make_census
from tests.cli_helpers import fds, train_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("curve")
    make_census(n=600, seed=0).to_csv(root / "census.csv", index=False)
    (root / "fast.yaml").write_text(
        "latent_dim: 3\nhidden_dims: [32]\nepochs: 3\nbatch_size: 64\nval_fraction: 0.3\n"
    )
    return train_run(root / "census.csv", root / "fast.yaml", root / "run")


@pytest.mark.slow
def test_release_curve_json_and_utility_falls_with_epsilon(run: Path) -> None:
    result = fds(
        "privacy-curve", run, "--target", "education", "--sensitive", "sex",
        "--mode", "release", "--epsilons", "0.01,inf", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    saved = json.loads((run / "privacy_curve.json").read_text())
    assert saved["points"] == printed["points"]
    tiny, inf = saved["points"]
    assert (tiny["epsilon"], inf["epsilon"]) == (0.01, "inf")
    for point in saved["points"]:
        assert point["mechanism"] == "release"
        for key in (
            "utility",
            "utility_majority",
            "attacker",
            "attacker_majority",
            "spent_epsilon",
        ):
            assert key in point
    assert inf["utility"] >= tiny["utility"]
    assert inf["utility"] > inf["utility_majority"]  # informative latents beat the majority
    assert "not DP" in saved["note"]


@pytest.mark.parametrize("bad", ["0", "-1", "abc"])
def test_bad_epsilons_exit_2(run: Path, bad: str) -> None:
    result = fds("privacy-curve", run, "--target", "education", "--epsilons", bad)
    assert result.exit_code == 2, result.output
    assert "--epsilons" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_or_unknown_target_exit_2(run: Path) -> None:
    assert fds("privacy-curve", run).exit_code == 2
    result = fds("privacy-curve", run, "--target", "educaton", "--mode", "release")
    assert result.exit_code == 2 and "did you mean 'education'" in result.stderr


def test_dp_training_without_declared_bounds_is_refused_in_one_line(run: Path) -> None:
    result = fds("privacy-curve", run, "--target", "education", "--mode", "training",
                 "--epsilons", "1")  # fmt: skip
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "ε=1" in line and "declared bounds" in line and len(line.splitlines()) == 1


@pytest.mark.slow
def test_dp_training_points_carry_spent_epsilon_and_membership_auc(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    table = pd.DataFrame({"a": y + rng.normal(0, 0.3, 300), "b": rng.normal(0, 1, 300)})
    table["y"] = y
    table.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "latent_dim: 2\nhidden_dims: [16]\nepochs: 1\nbatch_size: 32\nval_fraction: 0.3\n"
        "bounds: {a: [-2, 3], b: [-4, 4]}\ncategories: {y: [0, 1]}\n"
    )
    out = tmp_path / "run"
    train_run(tmp_path / "t.csv", tmp_path / "c.yaml", out)
    result = fds("privacy-curve", out, "--target", "y", "--mode", "training",
                 "--epsilons", "2,inf", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    dp, plain = json.loads(result.stdout)["points"]
    assert dp["mechanism"] == plain["mechanism"] == "dp-sgd"
    assert 0 < dp["spent_epsilon"] <= 2.0 + 1e-6 and plain["spent_epsilon"] == "inf"
    assert 0.0 <= dp["membership_auc"] <= 1.0
    assert "attacker" not in dp  # no sensitive attribute: no attacker column


@pytest.mark.slow
def test_report_shows_the_curve(run: Path) -> None:
    fds("privacy-curve", run, "--target", "education", "--sensitive", "sex",
        "--mode", "release", "--epsilons", "0.5,inf", "--json")  # fmt: skip
    result = fds("report", run, "--json")
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert "Privacy-utility curve" in html and "data:image/png;base64" in html
