"""The privacy ledger through the CLI: training and releases compose, the budget refuses a release
before anything is written, exit codes and --json."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from fds.privacy.ledger import Ledger, data_fingerprint
from tests.cli_helpers import fds

FAST_DP = "latent_dim: 3\nhidden_dims: [32]\nepochs: 2\nbatch_size: 64\nprivacy: {epsilon: 2}\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ledger")
    (root / "dp.yaml").write_text(FAST_DP)
    result = fds(
        "train",
        "--data",
        "digits",
        "--config",
        root / "dp.yaml",
        "--out",
        root / "r",
        "--quiet",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 0 < summary["privacy_epsilon"] <= 2.02
    assert summary["ledger_total_epsilon"] == summary["privacy_epsilon"]
    return root / "r"


def test_release_writes_latents_metadata_and_grows_the_ledger(run, tmp_path):
    before = Ledger.load(run / "privacy_ledger.json")
    (fp,) = before.state["datasets"]
    total_before = before.total_epsilon(fp)
    out = tmp_path / "z.npy"
    result = fds(
        "release", run, "--data", "digits", "--epsilon", 1, "--clip", 1.5, "--out", out, "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    Z = np.load(out)
    meta = json.loads((tmp_path / "z.npy.json").read_text())
    assert Z.shape == (summary["rows"], 3)
    assert meta["clip"] == 1.5 and meta["epsilon"] == 1.0 and meta["sensitivity"] == 3.0
    after = Ledger.load(run / "privacy_ledger.json")
    assert [e["kind"] for e in after.entries(fp)] == ["dp-sgd training", "release"]
    assert summary["ledger_total_epsilon"] == pytest.approx(after.total_epsilon(fp))
    assert after.total_epsilon(fp) > total_before
    # the same release again: refuses to overwrite the output
    again = fds("release", run, "--data", "digits", "--epsilon", 1, "--out", out)
    assert again.exit_code == 2 and "exists" in again.output


def test_over_budget_release_is_refused_before_writing(run, tmp_path):
    fp = next(iter(Ledger.load(run / "privacy_ledger.json").state["datasets"]))
    spent = Ledger.load(run / "privacy_ledger.json").total_epsilon(fp)
    assert fds("ledger", "set-budget", run, "--epsilon", spent + 0.1).exit_code == 0
    n_entries = len(Ledger.load(run / "privacy_ledger.json").entries(fp))
    out = tmp_path / "z.parquet"
    result = fds("release", run, "--data", "digits", "--epsilon", 1, "--out", out)
    assert result.exit_code == 2
    assert "over the budget" in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "z.parquet.json").exists()
    assert len(Ledger.load(run / "privacy_ledger.json").entries(fp)) == n_entries
    fds("ledger", "set-budget", run)  # remove the budget for other tests


def test_ledger_show_json(run):
    result = fds("ledger", "show", run, "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    (dataset,) = shown["datasets"]
    assert dataset["name"] == "digits" and dataset["total_epsilon"] > 0
    assert shown["accountant"] == "rdp"


def test_composition_grows_with_each_entry(tmp_path):
    ledger = Ledger.load(tmp_path / "l.json")
    entry = {
        "kind": "release",
        "epsilon": 1.0,
        "delta": 1e-5,
        "noise_multiplier": 3.73,
        "sample_rate": 1.0,
        "steps": 1,
    }
    totals = []
    for _ in range(4):
        ledger.add("fp", "data", entry)
        totals.append(ledger.total_epsilon("fp"))
    assert all(a < b for a, b in itertools.pairwise(totals))
    assert ledger.total_epsilon("other") == 0.0
    ledger.save()
    assert Ledger.load(tmp_path / "l.json").total_epsilon("fp") == totals[-1]


def test_release_cli_errors(run, tmp_path):
    bad = fds("release", run, "--data", "digits", "--epsilon", -1, "--out", tmp_path / "z.npy")
    assert bad.exit_code == 2 and "epsilon" in bad.output
    missing = fds(
        "release",
        tmp_path / "nope",
        "--data",
        "digits",
        "--epsilon",
        1,
        "--out",
        tmp_path / "z.npy",
    )
    assert missing.exit_code == 2
    assert not (tmp_path / "z.npy").exists()


def test_fingerprint_follows_content():
    a = np.arange(12.0).reshape(3, 4)
    assert data_fingerprint(a) == data_fingerprint(a.copy())
    assert data_fingerprint(a) != data_fingerprint(a + 1)


@pytest.mark.slow
def test_report_shows_the_privacy_section(run):
    result = fds("report", run)
    assert result.exit_code == 0, result.output
    html = (run / "report.html").read_text()
    assert 'id="privacy"' in html and "dp-sgd" in html and "noise_multiplier" in html


@pytest.mark.slow
def test_codec_statistics_are_a_ledger_entry(tmp_path):
    from fds.data.datasets import make_census

    make_census(n=300, seed=0)[["age", "sex"]].to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        FAST_DP.replace("{epsilon: 2}", "{epsilon: 2, statistics_epsilon: 0.5}")
        + "bounds: {age: [0, 120]}\ncategories: {sex: [female, male]}\n"
    )
    args = ["--data", tmp_path / "t.csv", "--config", tmp_path / "c.yaml", "--quiet", "--json"]
    result = fds("train", *args, "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["privacy_total_epsilon"] > summary["privacy_epsilon"]
    # the ledger composes at its δ (the smallest of its entries: the codec's 1/(10·all rows))
    assert summary["ledger_total_epsilon"] >= summary["privacy_total_epsilon"]
    shown = json.loads(fds("ledger", "show", tmp_path / "r", "--json").stdout)
    kinds = [e["kind"] for e in shown["datasets"][0]["entries"]]
    assert kinds == ["dp-sgd training", "codec statistics"]
