"""Privacy attacks: metrics on constructed scores, attacks that must succeed on leaky constructions
and stay at chance on clean ones, an overfit model caught, and `fds attack` as scripts use it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fds.data.datasets import load_builtin, make_census
from fds.errors import DataError
from fds.estimator import FDS
from fds.privacy.attacks import (
    distance_to_closest_record,
    domias,
    membership_inference,
    model_inversion,
    roc_metrics,
)
from fds.workflows.attack import membership
from tests.cli_helpers import fds, one_line_error, train_run

# --------------------------------------------------------------------------- metrics


def test_perfect_separation_scores_one() -> None:
    r = roc_metrics(np.linspace(10, 11, 200), np.linspace(0, 1, 200))
    assert r["auc"] == 1.0 and r["tpr_at_1pct_fpr"] == 1.0 and r["balanced_accuracy"] == 1.0
    flipped = roc_metrics(np.linspace(0, 1, 200), np.linspace(10, 11, 200))
    assert flipped["auc"] == 0.0 and flipped["tpr_at_1pct_fpr"] == 0.0


def test_identical_distributions_score_chance() -> None:
    rng = np.random.default_rng(0)
    r = roc_metrics(rng.normal(size=5000), rng.normal(size=5000))
    assert abs(r["auc"] - 0.5) < 0.03
    assert r["tpr_at_1pct_fpr"] < 0.03
    assert r["balanced_accuracy"] < 0.55


def test_tpr_at_low_fpr_is_interpolated_on_the_roc() -> None:
    # 1 of 100 non-members above every member; half the members above the other 99
    members = np.r_[np.full(50, 5.0), np.full(50, -2.0)]
    others = np.r_[10.0, np.full(99, -1.0)]
    assert roc_metrics(members, others)["tpr_at_1pct_fpr"] == pytest.approx(0.5)
    # 2 of 100 non-members above every member: half-way to the corner at FPR 2%
    others = np.r_[10.0, 10.0, np.full(98, -1.0)]
    assert roc_metrics(members, others)["tpr_at_1pct_fpr"] == pytest.approx(0.0)
    others = np.r_[10.0, 4.0, np.full(98, -1.0)]
    assert roc_metrics(members, others)["tpr_at_1pct_fpr"] == pytest.approx(0.5)


def test_bad_scores_are_refused() -> None:
    with pytest.raises(DataError, match="NaN"):
        roc_metrics([1.0, np.nan], [0.0, 1.0])
    with pytest.raises(DataError, match="no scores"):
        roc_metrics([], [0.0])


# --------------------------------------------------------------------------- synthetic data


def test_dcr_flags_copies_of_the_training_rows() -> None:
    rng = np.random.default_rng(0)
    train, holdout = rng.normal(size=(300, 6)), rng.normal(size=(300, 6))
    copies = distance_to_closest_record(train[:200], train, holdout)
    assert copies["flagged"] and copies["share_closer_to_train"] == 1.0
    assert copies["exact_copy_fraction"] == 1.0 and copies["dcr_train_median"] == 0.0
    fresh = distance_to_closest_record(rng.normal(size=(400, 6)), train, holdout)
    assert not fresh["flagged"]
    assert abs(fresh["share_closer_to_train"] - 0.5) < 0.1


def test_dcr_compares_as_many_train_as_holdout_rows() -> None:
    rng = np.random.default_rng(1)
    result = distance_to_closest_record(
        rng.normal(size=(300, 4)), rng.normal(size=(3000, 4)), rng.normal(size=(100, 4))
    )
    assert result["n_reference_rows"] == 100
    assert not result["flagged"]  # 30× more train rows would otherwise look like a leak
    with pytest.raises(DataError, match="widths"):
        distance_to_closest_record(np.zeros((5, 3)), np.zeros((5, 4)), np.zeros((5, 4)))


def test_domias_finds_members_a_generator_memorised() -> None:
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    reference = rng.normal(size=(600, 8))
    leaky = np.repeat(members, 3, axis=0) + 0.05 * rng.normal(size=(600, 8))
    assert domias(leaky, reference, members, non_members)["auc"] > 0.8
    clean = domias(rng.normal(size=(600, 8)), reference, members, non_members)
    assert abs(clean["auc"] - 0.5) < 0.1
    collapsed = np.repeat(members[:3], 200, axis=0)  # a degenerate generator: no crash
    assert 0.0 <= domias(collapsed, reference, members, non_members)["auc"] <= 1.0


# --------------------------------------------------------------------------- inversion


@pytest.mark.slow
def test_inversion_recovers_data_from_informative_latents() -> None:
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 12))
    Z_aux, Z_target = rng.normal(size=(400, 4)), rng.normal(size=(100, 4))
    X_aux, X_target = np.tanh(Z_aux @ W), np.tanh(Z_target @ W)
    result = model_inversion(Z_aux, X_aux, Z_target, X_target, owner_mse=0.01)
    assert result["attacker_mse"] < 0.1 * result["baseline_mse"]
    noisy = model_inversion(
        Z_aux + 3 * rng.normal(size=Z_aux.shape),
        X_aux,
        Z_target + 3 * rng.normal(size=Z_target.shape),
        X_target,
        owner_mse=0.01,
    )
    assert noisy["attacker_mse"] > 3 * result["attacker_mse"]  # noise on the release protects
    with pytest.raises(DataError, match="as many rows"):
        model_inversion(Z_aux, X_aux[:-1], Z_target, X_target, owner_mse=0.01)


# --------------------------------------------------------------------------- against a model


def test_membership_attacks_query_the_model_only_through_callables() -> None:
    """A 'model' that memorised its members: higher ELBO and exact reconstructions for them,
    and generated samples next to them; the same callables on fresh rows give chance."""
    rng = np.random.default_rng(0)
    members, non_members = rng.normal(size=(100, 5)), rng.normal(size=(100, 5))
    known = {row.tobytes() for row in members.astype(np.float32)}

    def seen(rows: np.ndarray) -> np.ndarray:
        return np.array([row.tobytes() in known for row in rows], dtype=bool)

    def elbo(rows: np.ndarray) -> np.ndarray:
        return seen(rows) + rng.normal(scale=0.5, size=len(rows))

    def reconstruct(rows: np.ndarray) -> np.ndarray:
        noise = np.where(seen(rows)[:, None], 0.05, 1.0) * rng.normal(size=rows.shape)
        return rows + noise

    def generate(n: int) -> np.ndarray:
        return members[rng.integers(0, len(members), n)] + 0.01 * rng.normal(size=(n, 5))

    queries = {"elbo": elbo, "reconstruct": reconstruct, "generate": generate}
    result = membership_inference(members, non_members, n_generated=300, **queries)
    for attack in ("loss", "reconstruction", "monte_carlo"):
        assert result[attack]["auc"] > 0.8, attack
    fresh = membership_inference(rng.normal(size=(100, 5)), non_members, **queries)
    assert abs(fresh["loss"]["auc"] - 0.5) < 0.15
    with pytest.raises(DataError, match="as many"):
        membership_inference(members, non_members[:10], **queries)


@pytest.mark.slow
def test_overfit_model_is_caught_by_membership_attacks() -> None:
    X = load_builtin("digits", n=80).X
    members, non_members = X[:40], X[40:]
    params = dict(preset="vae", latent_dim=8, hidden_dims=[256], batch_size=10, val_fraction=0.0)
    overfit = FDS(**params, epochs=400, free_bits=0.0, verbose=False, seed=0).fit(members)
    result = membership(overfit, members, non_members, seed=0)
    assert result["loss"]["auc"] > 0.7
    assert result["reconstruction"]["auc"] > 0.7
    assert result["loss"]["n_members"] == 40
    assert membership(overfit, members, non_members, seed=0) == result  # seeded draws
    barely = FDS(**params, epochs=1, verbose=False, seed=0).fit(members)
    assert abs(membership(barely, members, non_members, seed=0)["loss"]["auc"] - 0.5) < 0.2


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("attack")
    make_census(n=600, seed=0).to_csv(root / "census.csv", index=False)
    (root / "fast.yaml").write_text("latent_dim: 3\nhidden_dims: [32]\nepochs: 2\nbatch_size: 64\n")
    return train_run(root / "census.csv", root / "fast.yaml", root / "run")


def test_attack_writes_and_merges_attacks_json(run: Path) -> None:
    result = fds("attack", run, "--kind", "membership", "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert 0.0 <= printed["membership"]["loss"]["auc"] <= 1.0
    assert (
        printed["membership"]["run"]["n_members"] == printed["membership"]["run"]["n_non_members"]
    )
    result = fds("attack", "--model", run, "-k", "synthetic", "-k", "inversion", "--json")
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "attacks.json").read_text())
    assert set(saved) == {"membership", "synthetic", "inversion"}
    assert saved["membership"] == printed["membership"]
    assert saved["inversion"]["owner_mse"] > 0
    summary = fds("attack", run, "-k", "inversion")
    assert summary.exit_code == 0 and "owner" in summary.stdout


@pytest.mark.slow
def test_report_shows_the_attacks_beside_their_baselines(run: Path) -> None:
    assert fds("attack", run, "-k", "membership", "--json").exit_code == 0
    result = fds("report", run, "--json")
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert "Privacy attacks" in html and "membership loss: AUC" in html and "(chance 0.5)" in html


def test_attack_bad_input_exits_2(run: Path, tmp_path: Path) -> None:
    one_line_error(fds("attack", run, "--kind", "telepathy"), "telepathy", "membership")
    one_line_error(fds("attack", tmp_path / "missing"), "missing")
    one_line_error(fds("attack", run, "--noise", "-1"), "noise")


def test_attack_needs_held_out_rows(tmp_path: Path) -> None:
    table = make_census(n=200, seed=0)
    table.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        "latent_dim: 2\nhidden_dims: [16]\nepochs: 1\nval_fraction: 0\n"
    )
    train_run(tmp_path / "t.csv", tmp_path / "c.yaml", tmp_path / "r")
    one_line_error(fds("attack", tmp_path / "r"), "held out 0 rows")
    assert not (tmp_path / "r" / "attacks.json").exists()


def test_attack_help_shows_an_example() -> None:
    result = fds("attack", "--help")
    assert result.exit_code == 0 and "fds attack" in result.stdout and "Example" in result.stdout


@pytest.mark.slow
def test_attribute_inference_on_shared_latents_beats_the_majority(run):
    """census's `sex` leaks through the other columns, so a plain vae's latents reveal it."""
    result = fds("attack", run, "-k", "attribute", "--sensitive", "sex", "--json")
    assert result.exit_code == 0, result.output
    leak = json.loads(result.stdout)["attribute"]["attributes"]["sex"]["all"]
    assert leak["best_accuracy"] > leak["majority"] + 0.05
    assert leak["budget"] == "truthful" and leak["n_train"] == 540  # every training row
    assert "best attacker AUC" in fds("attack", run, "-k", "attribute", "--sensitive", "sex").stdout
    assert json.loads((run / "attacks.json").read_text())["attribute"]["latents"] == "all"


def test_attribute_inference_needs_an_attribute(run):
    one_line_error(fds("attack", run, "-k", "attribute"), "--sensitive")


@pytest.mark.slow
def test_audit_of_a_dp_run_stays_under_the_accountants_epsilon(tmp_path):
    """The one-run audit re-trains the DP configuration; on a correct DP-SGD its bound is below ε."""
    out = tmp_path / "dp"
    (tmp_path / "dp.yaml").write_text(
        "latent_dim: 3\nhidden_dims: [16]\nepochs: 2\nbatch_size: 64\nval_fraction: 0.3\n"
        "privacy: {epsilon: 1.0}\n"
    )
    train_run("digits", tmp_path / "dp.yaml", out)
    result = fds("attack", out, "-k", "audit", "--json")
    assert result.exit_code == 0, result.output
    audit = json.loads(result.stdout)["audit"]
    assert audit["n_guesses"] > 0
    assert 0 <= audit["epsilon_lower_bound"] <= audit["accountant_epsilon"] <= 1.0 + 1e-6


def test_audit_needs_a_dp_run(run):
    one_line_error(fds("attack", run, "-k", "audit"), "without privacy")
