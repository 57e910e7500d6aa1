"""Probes: heads on latents beside the raw features, saved without pickle, `fds probe run/apply`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fds import FDS
from fds.cli import app
from fds.data.datasets import load_builtin, make_census
from fds.data.files import LoadedData
from fds.errors import ConfigError, DataError, ModelFormatError
from fds.evaluation.probes import FittedProbe, infer_task, run_probe, split_for_probe
from fds.probefiles import read_probe, write_probe
from fds.workflows.probe import apply_probe, probe_run

TINY = {"latent_dim": 3, "hidden_dims": [32], "epochs": 2, "verbose": False}
runner = CliRunner()


def _classes(n: int = 600, seed: int = 0):
    """A latent that encodes 3 string classes perfectly, and raw features that barely do."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    Z = np.eye(3)[y] + 0.05 * rng.normal(size=(n, 3))
    X = rng.normal(size=(n, 20))
    X[:, 0] += 0.3 * y
    return Z, np.array(["cat", "dog", "eel"])[y], X


def _by(result: dict, head: str, features: str) -> dict:
    (row,) = [r for r in result["rows"] if r["head"] == head and r["features"] == features]
    return row


# --------------------------------------------------------------------------- run_probe
def test_a_perfect_latent_beats_noisy_raw_features_on_every_head() -> None:
    Z, y, X = _classes()
    result = run_probe(
        Z[:400], y[:400], Z[400:], y[400:], heads=["logistic", "knn", "mlp"], raw=(X[:400], X[400:])
    )
    assert result["task"] == "classification"
    assert (result["n_train"], result["n_test"]) == (400, 200)
    for head in ("logistic", "knn", "mlp"):
        latent, raw = _by(result, head, "latent"), _by(result, head, "raw")
        assert latent["accuracy"] >= 0.98, head
        assert latent["balanced_accuracy"] >= 0.98 and latent["macro_f1"] >= 0.98
        assert raw["accuracy"] < latent["accuracy"] - 0.3
    json.dumps(result)  # plain floats only
    assert all(
        type(v) is float
        for r in result["rows"]
        for k, v in r.items()
        if k != "head" and k != "features"
    )


def test_regression_of_a_linear_target_and_clustering_of_separated_blobs() -> None:
    Z, _, X = _classes()
    target = Z @ np.array([1.0, -2.0, 0.5]) + 3.0
    result = run_probe(Z[:400], target[:400], Z[400:], target[400:], raw=(X[:400], X[400:]))
    assert result["task"] == "regression"
    assert _by(result, "ridge", "latent")["r2"] > 0.99
    assert _by(result, "ridge", "raw")["r2"] < 0.2
    assert set(_by(result, "knn", "latent")) == {"head", "features", "r2", "mae"}

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 400)
    blobs = 10 * np.eye(4)[labels] + rng.normal(size=(400, 4))
    clusters = run_probe(blobs[:300], labels[:300], blobs[300:], labels[300:], task="clustering")
    for head in ("kmeans", "gmm"):
        row = _by(clusters, head, "latent")
        assert row["ari"] > 0.99 and row["nmi"] > 0.99 and row["silhouette"] > 0.5
    unlabelled = run_probe(blobs[:300], None, blobs[300:], None, heads="kmeans")
    assert unlabelled["task"] == "clustering"
    assert set(unlabelled["rows"][0]) == {"head", "features", "silhouette"}


def test_infer_task() -> None:
    assert infer_task(["a", "b", None]) == "classification"
    assert infer_task(np.array([True, False])) == "classification"
    assert infer_task(pd.Series(["x", "y"], dtype="category")) == "classification"
    assert infer_task([0, 1, 2, 1, np.nan]) == "classification"
    assert infer_task(np.arange(100)) == "regression"
    assert infer_task([0.5, 1.25, 3.0]) == "regression"


@pytest.mark.parametrize(
    ("change", "error", "needle"),
    [
        ({"y_train": np.zeros(10)}, DataError, "y_train has 10 values"),
        ({"Z_train": np.full((400, 3), np.nan)}, DataError, "NaN"),
        ({"y_train": np.array(["cat"] * 400)}, DataError, "single class"),
        ({"heads": ["logstic"]}, ConfigError, "did you mean 'logistic'"),
        ({"heads": ["ridge"]}, ConfigError, "'ridge' is a regression head"),
        ({"task": "clasification"}, ConfigError, "did you mean 'classification'"),
        ({"Z_test": np.zeros((200, 4))}, DataError, "Z_test has 4 features"),
        ({"raw": (np.zeros((400, 2)), np.zeros((10, 2)))}, DataError, "same rows"),
    ],
)
def test_bad_input_is_one_clear_error(change: dict, error: type, needle: str) -> None:
    Z, y, _ = _classes()
    args = {"Z_train": Z[:400], "y_train": y[:400], "Z_test": Z[400:], "y_test": y[400:]} | change
    with pytest.raises(error, match=needle) as info:
        run_probe(
            args.pop("Z_train"), args.pop("y_train"), args.pop("Z_test"), args.pop("y_test"), **args
        )
    assert "\n" not in str(info.value)


def test_split_drops_missing_targets_and_stratifies() -> None:
    y = np.array(["a"] * 40 + ["b"] * 20 + [None] * 5, dtype=object)
    split = split_for_probe(len(y), y, test_size=0.25, seed=0)
    assert split.task == "classification" and split.n_dropped == 5
    assert not set(split.train) & set(split.test)
    assert len(split.train) + len(split.test) == 60
    assert (y[split.test] == "b").sum() == 5  # stratified: a quarter of each class
    with pytest.raises(ConfigError, match="test_size"):
        split_for_probe(len(y), y, test_size=1.5)


# --------------------------------------------------------------------------- saving
def test_save_load_predict_round_trip_and_tampering(tmp_path: Path) -> None:
    Z, y, _ = _classes()
    for head in ("logistic", "knn", "mlp"):
        probe = FittedProbe.fit(Z, y, head=head, target="animal", seed=3)
        path = write_probe(probe, tmp_path, head)
        loaded = FittedProbe.from_saved(read_probe(tmp_path, head))
        assert np.array_equal(loaded.predict(Z), probe.predict(Z))
        assert loaded.predict(Z[:2]).dtype.kind == "U"  # strings stay strings
        spec = json.loads(path.read_text())["spec"]
        assert spec["classes"] == ["cat", "dog", "eel"] and spec["target"] == "animal"
    regression = FittedProbe.fit(Z, Z[:, 0] * 2, head="ridge")
    write_probe(regression, tmp_path, "reg")
    reloaded = FittedProbe.from_saved(read_probe(tmp_path, "reg"))
    assert np.allclose(reloaded.predict(Z), regression.predict(Z))

    data = tmp_path / "knn.safetensors"
    blob = bytearray(data.read_bytes())
    blob[-1] ^= 1
    data.write_bytes(bytes(blob))
    with pytest.raises(ModelFormatError, match="sha256"):
        read_probe(tmp_path, "knn")
    with pytest.raises(ModelFormatError, match=r"saved probes: .*logistic"):
        read_probe(tmp_path, "missing")
    with pytest.raises(ConfigError, match="bad probe name"):
        write_probe(probe, tmp_path, "../escape")


def test_a_saved_spec_naming_no_registered_head_is_refused(tmp_path: Path) -> None:
    Z, y, _ = _classes()
    path = write_probe(FittedProbe.fit(Z, y, head="knn"), tmp_path, "knn")
    document = json.loads(path.read_text())
    for field, value, error in (
        ("head", "svm", "unknown probe head 'svm'"),
        ("params", {"n_neighbors": 0}, "bad params"),
    ):
        path.write_text(json.dumps({**document, "spec": {**document["spec"], field: value}}))
        saved = read_probe(tmp_path, "knn")  # the files themselves are intact
        with pytest.raises(ModelFormatError, match=error):
            FittedProbe.from_saved(saved)


# --------------------------------------------------------------------------- estimator
@pytest.fixture(scope="module")
def census() -> pd.DataFrame:
    return make_census(n=400, seed=0)


@pytest.fixture(scope="module")
def census_model(census: pd.DataFrame) -> FDS:
    return FDS(**TINY).fit(census)


def test_fds_probe_on_census_and_digits(census: pd.DataFrame, census_model: FDS) -> None:
    result = census_model.probe(census, census["high_income"])
    assert result["task"] == "classification" and result["n_dropped"] == 0
    assert (result["n_train"], result["n_test"]) == (300, 100)
    assert {(r["head"], r["features"]) for r in result["rows"]} == {
        ("logistic", "latent"),
        ("logistic", "raw"),
        ("knn", "latent"),
        ("knn", "raw"),
    }
    assert _by(result, "logistic", "raw")["accuracy"] > 0.95  # the column is in the raw input
    assert result == census_model.probe(census, census["high_income"])  # seeded

    digits = load_builtin("digits", n=400)
    model = FDS(**TINY).fit(digits.X)
    result = model.probe(digits.X, digits.labels, heads="logistic")
    assert _by(result, "logistic", "raw")["accuracy"] > 0.8  # 64 pixels
    assert 0.0 <= _by(result, "logistic", "latent")["accuracy"] <= 1.0
    only_latent = model.probe(digits.X, digits.labels, heads="logistic", raw=False)
    assert [r["features"] for r in only_latent["rows"]] == ["latent"]


# --------------------------------------------------------------------------- workflow
def _save_run(model: FDS, root: Path) -> Path:
    model.save(root / "model")
    (root / "config.yaml").write_text("{}\n")
    return root


def test_probe_run_records_saves_and_refuses_another_model(
    tmp_path: Path, census: pd.DataFrame, census_model: FDS
) -> None:
    run = _save_run(census_model, tmp_path / "run")
    data = LoadedData(census, "census")
    first = probe_run(census_model, data, target="occupation", save_as="job", run_dir=run)
    assert first["target_in_input"] and first["saved_probe"]["name"] == "job"
    probe_run(census_model, data, target="occupation", heads="logistic", run_dir=run)
    probe_run(census_model, data, target="income", task="regression", run_dir=run)
    entries = json.loads((run / "probes.json").read_text())["probes"]
    assert [(e["target"], e["task"]) for e in entries] == [
        ("occupation", "classification"),
        ("income", "regression"),
    ]
    assert [r["head"] for r in entries[0]["rows"]] == ["logistic", "logistic"]  # replaced

    predictions = apply_probe(census_model, run, "job", census)
    assert len(predictions) == len(census) and set(predictions) <= set(census["occupation"])
    FDS.load(run)  # extra files under model/probes/ do not break loading

    other = _save_run(FDS(**TINY, seed=1).fit(census), tmp_path / "other")
    shutil.copytree(run / "model" / "probes", other / "model" / "probes")
    with pytest.raises(ModelFormatError, match="another model"):
        apply_probe(FDS.load(other), other, "job", census)


def test_probe_run_drops_a_target_the_model_never_saw(tmp_path: Path, census: pd.DataFrame) -> None:
    model = FDS(**TINY).fit(census.drop(columns="high_income"))
    run = _save_run(model, tmp_path / "run")
    result = probe_run(
        model, LoadedData(census, "census"), target="high_income", save_as="rich", run_dir=run
    )
    assert result["target_in_input"] is False
    assert _by(result, "logistic", "raw")["accuracy"] < 1.0
    assert set(apply_probe(model, run, "rich", census)) <= {0, 1}
    with pytest.raises(DataError, match="did you mean 'high_income'"):
        probe_run(model, LoadedData(census, "census"), target="high_incme", run_dir=run)
    shapes = LoadedData(np.zeros((4, 8, 8)), "x", labels=None, factors=pd.DataFrame({"s": [0] * 4}))
    with pytest.raises(DataError, match="factor:s"):
        probe_run(model, shapes, target="label")


# --------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("probe_cli")
    make_census(n=300, seed=0).to_csv(root / "census.csv", index=False)
    (root / "fast.yaml").write_text("latent_dim: 3\nhidden_dims: [32]\nepochs: 2\nbatch_size: 64\n")
    result = runner.invoke(
        app,
        [
            "train",
            "--data",
            str(root / "census.csv"),
            "--config",
            str(root / "fast.yaml"),
            "--out",
            str(root / "run"),
            "--quiet",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return root


def test_cli_probe_run_and_apply(cli_run: Path) -> None:
    run, csv = cli_run / "run", cli_run / "census.csv"
    result = runner.invoke(
        app,
        ["probe", "run", "--model", str(run), "--data", str(csv), "--target", "high_income",
         "--heads", "logistic,knn", "--save", "income", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.strip().splitlines()
    summary = json.loads(line)
    assert summary["task"] == "classification" and len(summary["rows"]) == 4
    assert Path(summary["probes_file"]) == run / "probes.json"
    assert (run / "model" / "probes" / "income.json").is_file()

    out = cli_run / "pred.csv"
    result = runner.invoke(
        app,
        ["probe", "apply", "--model", str(run / "model"), "--probe", "income", "--data", str(csv),
         "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 300
    assert list(pd.read_csv(out).columns) == ["prediction"]

    human = runner.invoke(
        app, ["probe", "run", "--model", str(run), "--data", str(csv), "--target", "sex"]
    )
    assert human.exit_code == 0 and "latent / raw" in human.stdout


def test_cli_bad_target_exits_2_with_one_line(cli_run: Path) -> None:
    result = runner.invoke(
        app,
        ["probe", "run", "--model", str(cli_run / "run"), "--data", str(cli_run / "census.csv"),
         "--target", "salary"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'salary'" in lines[0] and "high_income" in lines[0]
    assert result.stdout == ""
