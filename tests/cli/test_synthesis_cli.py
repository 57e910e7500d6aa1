"""`fds metadata detect|validate`, `fds train --metadata` and `fds sample --condition`, run
in-process as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fds.data.datasets import make_census
from tests.cli_helpers import fds, one_line_error

FAST_YAML = "latent_dim: 3\nhidden_dims: [16]\nepochs: 2\nbatch_size: 64\nmissing: impute\n"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synthesis")
    make_census(n=300, seed=0).to_csv(folder / "census.csv", index=False)
    (folder / "fast.yaml").write_text(FAST_YAML)
    return folder / "census.csv"


@pytest.fixture(scope="module")
def run(table: Path) -> Path:
    """Detect, add constraints, train with the file."""
    meta = table.parent / "meta.json"
    assert fds("metadata", "detect", table, "--out", meta).exit_code == 0
    document = json.loads(meta.read_text())
    document["constraints"] = [
        {"type": "inequality", "low": "n_children", "high": "age"},
        {"type": "fixed_combinations", "columns": ["occupation", "education"]},
    ]
    meta.write_text(json.dumps(document))
    out = table.parent / "run"
    result = fds(
        "train", "--data", table, "--config", table.parent / "fast.yaml", "--metadata", meta,
        "--out", out, "--quiet", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_detect_writes_a_file_and_never_overwrites_without_asking(
    table: Path, tmp_path: Path
) -> None:
    out = tmp_path / "meta.json"
    result = fds("metadata", "detect", table, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["out"] == str(out) and summary["columns"] == 11
    assert json.loads(out.read_text())["columns"]["sex"]["categories"] == ["female", "male"]
    out.write_text("mine")
    one_line_error(fds("metadata", "detect", table, "--out", out), str(out), "--overwrite")
    assert out.read_text() == "mine"
    assert fds("metadata", "detect", table, "--out", out, "--overwrite").exit_code == 0
    assert fds("metadata", "validate", out, "--data", table).exit_code == 0


def test_training_with_metadata_declares_its_kinds_bounds_and_constraints(run: Path) -> None:
    params = json.loads((run / "model" / "config.json").read_text())["params"]
    assert params["columns"]["age"] == "count" and params["columns"]["sex"] == "binary"
    assert params["bounds"]["income"][0] > 0
    assert [rule["type"] for rule in params["constraints"]] == ["inequality", "fixed_combinations"]
    assert params["constraints"][1]["combinations"]  # read from the training rows


def test_sample_meets_every_condition(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    result = fds(
        "sample", "--model", run, "-n", 80, "--condition", "sex=female", "--condition", "age>=30",
        "--out", out, "--json", "--seed", 0,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"out": str(out), "rows": 80, "requested": 80}
    rows = pd.read_csv(out)
    assert len(rows) == 80 and (rows["sex"] == "female").all() and (rows["age"] >= 30).all()
    assert (rows["n_children"] <= rows["age"]).all()


@pytest.mark.parametrize(
    ("condition", "needles"),
    [
        ("sex=femal", ["sex=femal", "'femal'", "did you mean 'female'"]),
        ("agee>=3", ["agee>=3", "'agee'"]),
        ("age>=old", ["age>=old", "'old'"]),
        ("income<-5", ["income<-5", "at least"]),
        ("age", ["'age'", "COLUMN OP VALUE"]),
    ],
)
def test_an_impossible_or_bad_condition_is_one_line_and_writes_nothing(
    run: Path, tmp_path: Path, condition: str, needles: list[str]
) -> None:
    out = tmp_path / "s.csv"
    one_line_error(
        fds("sample", "-m", run, "-n", 5, "--condition", condition, "--out", out), *needles
    )
    assert not out.exists()


def test_too_few_rows_fails_unless_allowed(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    args = ["sample", "-m", run, "-n", 400, "--condition", "age>=70", "--max-draws", 800]
    one_line_error(fds(*args, "--out", out), "age>=70", "--allow-fewer")
    assert not out.exists()
    result = fds(*args, "--allow-fewer", "--out", out, "--json", "--seed", 1)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 0 < summary["rows"] < 400 and summary["requested"] == 400
    assert (pd.read_csv(out)["age"] >= 70).all()


def test_a_bad_metadata_file_stops_training_before_any_write(table: Path, tmp_path: Path) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"columns": {"age": {"kind": "number"}}}))
    out = tmp_path / "run"
    one_line_error(
        fds("train", "--data", table, "--metadata", meta, "--out", out),
        str(meta),
        "'age'",
        "'number'",
    )
    meta.write_text(json.dumps({"columns": {"town": {"kind": "categorical"}}}))
    one_line_error(fds("train", "--data", table, "--metadata", meta, "--out", out), "'town'")
    assert not out.exists()
    one_line_error(fds("metadata", "validate", meta, "--data", table), "'town'")
