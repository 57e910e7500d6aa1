"""`evaluate_run` and `fds evaluate`: strict JSON with every group, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fds.cli import app
from fds.data.datasets import make_census
from fds.data.files import LoadedData, read_data
from fds.errors import DataError
from fds.estimator import FDS
from fds.runtime.threads import threads_in_use
from fds.workflows.evaluate import GROUPS, evaluate_run, headline
from tests.conftest import FAST

runner = CliRunner()


def _strict_load(path: Path) -> dict:
    def refuse(token: str) -> None:
        raise AssertionError(f"non-strict JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> tuple[FDS, LoadedData, Path]:
    data = read_data("shapes", n=600)
    model = FDS(**FAST).fit(data.X)
    return model, data, tmp_path_factory.mktemp("shapes_eval")


def test_evaluate_run_on_images_writes_every_group(shapes_run) -> None:
    model, data, out = shapes_run
    report = evaluate_run(model, data, out=out, iwae_k=20)
    saved = _strict_load(out / "evaluation.json")
    assert saved == json.loads(json.dumps(report))
    for group in (*GROUPS, "seconds", "run", "notes"):
        assert group in saved, group
    assert saved["run"]["held_out"] == "validation" and saved["run"]["n_held_out"] == 60
    assert saved["likelihood"]["iwae"] >= saved["likelihood"]["elbo"]
    assert saved["reconstruction"]["pixel_mse"] > 0
    assert set(saved["disentanglement"]) >= {"mig", "dci_disentanglement", "sap"}
    assert saved["synthetic"]["kind"] == "images" and 0 <= saved["synthetic"]["precision"] <= 1
    assert saved["sparsity"] is None  # a VAE without sparsity terms
    assert not list(out.glob(".*tmp"))  # no temporary file left behind
    assert headline(saved)["elbo"] == saved["likelihood"]["elbo"]
    assert saved["synthetic"]["n_real"] == 120  # a fifth of the 600 sprites is the reference


def test_real_images_caps_what_samples_are_judged_against(shapes_run) -> None:
    model, data, _ = shapes_run
    report = evaluate_run(model, data, iwae_k=2, real_images=300)
    assert report["synthetic"]["n_real"] == 60 and report["synthetic"]["n_fake"] == 60
    for bad in (0, -5):
        with pytest.raises(DataError, match="real_images must be at least 1"):
            evaluate_run(model, data, iwae_k=2, real_images=bad)


def test_evaluate_run_on_a_table_reports_columns_quality_and_tstr(tmp_path: Path) -> None:
    table = make_census(n=400)
    data = LoadedData(table, "census", labels=table["high_income"].to_numpy())
    model = FDS(**FAST, preset="sparse_ae").fit(table)
    report = evaluate_run(model, data, out=tmp_path, iwae_k=10)
    saved = _strict_load(tmp_path / "evaluation.json")
    assert saved["likelihood"]["iwae"] is None  # deterministic codes: no bound
    assert saved["sparsity"]["hoyer"] is not None
    assert saved["disentanglement"] is None
    columns = saved["reconstruction"]["columns"]
    assert "rmse" in columns["income"] and "accuracy" in columns["occupation"]
    assert 0 <= saved["synthetic"]["quality"]["quality_score"] <= 1
    assert saved["synthetic"]["tstr"]["target"] == "high_income"  # found from the labels
    quality, fidelity = saved["synthetic"]["quality"], saved["synthetic"]["fidelity"]
    assert quality["n_pairs"] == 55  # every pair of the 11 columns, not only strong ones
    assert quality["n_pairs_thresholded"] < quality["n_pairs"]
    assert set(fidelity["out_of_support"]["columns"]) == set(table.columns)
    assert set(fidelity["missing"]["columns"]) == set(table.columns)
    assert fidelity["categories"]["n_categories"] >= 10  # sex, group, education, occupation…
    dcr = saved["synthetic"]["dcr"]
    assert dcr["n_subsets"] == len(dcr["shares"]) == 5 and 0 < dcr["share"] < 1
    assert "dcr_share" in headline(saved) and "out_of_support_rows" in headline(saved)
    other = evaluate_run(model, data, iwae_k=10, target="income", fast=True)
    assert other["synthetic"]["tstr"]["metric"] == "r2"
    again = evaluate_run(model, data, iwae_k=10, target="income", fast=True)
    other.pop("seconds"), again.pop("seconds")
    assert other == again  # same seed, same numbers
    with pytest.raises(DataError, match="salary"):
        evaluate_run(model, data, target="salary", fast=True)
    assert report["seconds"]["total"] > 0


def test_evaluate_run_rejects_data_of_another_kind(shapes_run) -> None:
    model, _, _ = shapes_run
    with pytest.raises(DataError, match="fitted on images"):
        evaluate_run(model, LoadedData(make_census(n=50), "census"))


# --------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def census_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval_cli")
    make_census(n=300, seed=0).to_csv(root / "census.csv", index=False)
    model = FDS(**FAST).fit(make_census(n=300, seed=0))
    model.save(root / "run" / "model")
    return root


def test_fds_evaluate_prints_one_json_object_and_writes_the_file(census_run: Path) -> None:
    run = census_run / "run"
    result = runner.invoke(
        app,
        ["evaluate", "--model", str(run / "model"), "--data", str(census_run / "census.csv"),
         "--iwae-k", "5", "--target", "high_income", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    printed = json.loads(lines[0])
    assert printed["evaluation_json"] == str(run / "evaluation.json")
    assert _strict_load(run / "evaluation.json")["likelihood"] == printed["likelihood"]
    assert printed["synthetic"]["tstr"]["tstr"] is not None


def test_fds_evaluate_prints_a_summary_table(census_run: Path) -> None:
    result = runner.invoke(
        app,
        ["evaluate", str(census_run / "run"), "--data", str(census_run / "census.csv"), "--fast"],
    )
    assert result.exit_code == 0, result.output
    assert "quality_score" in result.stdout and "evaluation.json" in result.stdout


def test_fds_evaluate_missing_data_is_one_line_and_exit_2(census_run: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--model", str(census_run / "run"), "--data", "nope.csv", "--json"]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "nope.csv" in result.stderr


def test_a_keyed_image_models_report_does_not_depend_on_how_many_groups_run_at_once() -> None:
    """The groups that fit models (disentanglement, sample quality, attackers, the key's
    classifier) run side by side; every figure must be the one a single worker gives."""
    import pandas as pd

    data = read_data("shapes", n=500)
    shape = pd.DataFrame({"factor:shape": data.factors["shape"].to_numpy()})
    params = FAST | {"preset": "fds", "latent_dim": 6, "private_dim": 2}
    model = FDS(**params).fit(data.X, sensitive=shape)

    def report(workers: int) -> dict:
        found = evaluate_run(
            model, data, iwae_k=5, fast=True, utility_target="factor:x", workers=workers
        )
        return {group: value for group, value in found.items() if group != "seconds"}

    # the caller's own pools are wider than a fit's single core; both runs use the same width,
    # since the groups computed before the fits (ELBO, independence) may differ in the last
    # bits between thread counts
    with threads_in_use(2):
        alone = report(1)
        side_by_side = report(2)
    assert alone["leakage"] is not None and alone["key"] is not None
    assert alone["disentanglement"] is not None and alone["synthetic"] is not None
    assert side_by_side == alone
