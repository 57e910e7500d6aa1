"""The HTML report: one self-contained file (no network, inline images) with the sections a run
has, and nothing for what it lacks; plus the pure plotting and JSON-rendering helpers."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fds.data.datasets import load_builtin, make_census
from fds.data.files import LoadedData
from fds.evaluation.disentanglement import factor_latent_mi
from fds.report.html import json_node, probe_tables
from fds.report.plots import training_curves_png
from fds.workflows.report import TSNE_POINTS, Section, _latent_map_section, write_report
from tests.cli_helpers import fds, train_run

FAST_YAML = "latent_dim: 3\nhidden_dims: [32]\nepochs: 2\nbatch_size: 64\n"
PNG = "data:image/png;base64,"
IMAGE_SECTIONS = (
    "Summary",
    "Training curves",
    "Reconstructions",
    "Samples from the prior",
    "Latent traversals",
    "Latent map",
)

EVALUATION = {
    "run": {"data": "census.csv", "held_out": "validation"},
    "reconstruction": {
        "mse": 0.04123,
        "per_column": {"age": {"mae": 1.25, "mse": 2.5}, "income": {"mae": 7.5, "mse": 9.5}},
    },
    "latent_health": {"kl_per_dim": [0.011, 2.31, 0.0021], "active_units": 1},
    "disentanglement": None,
    "importance": [[0.1, 0.9], [0.8, 0.2]],
    "notes": ["sparsity skipped: the code is not sparse"],
}
PROBES = {
    "probes": [
        {
            "target": "high_income",
            "task": "classification",
            "n_train": 240,
            "rows": [
                {"head": "logistic", "features": "latent", "accuracy": 0.7134},
                {"head": "logistic", "features": "raw", "accuracy": 0.8421},
                {"head": "knn", "features": "raw", "accuracy": 0.7911},
                {"head": "knn", "features": "latent", "accuracy": 0.6512},
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    (root / "fast.yaml").write_text(FAST_YAML + "preset: beta_tcvae\n")
    np.save(root / "shapes.npy", load_builtin("shapes", n=400).X)
    make_census(n=300, seed=0).to_csv(root / "census.csv", index=False)
    return root


@pytest.fixture(scope="module")
def shapes_run(workspace: Path) -> Path:
    return train_run(workspace / "shapes.npy", workspace / "fast.yaml", workspace / "shapes_run")


@pytest.fixture(scope="module")
def census_run(workspace: Path) -> Path:
    return train_run(workspace / "census.csv", workspace / "fast.yaml", workspace / "census_run")


def _self_contained(html: str) -> None:
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert "@import" not in html and "url(" not in html
    sources = re.findall(r'<img[^>]*\bsrc="([^"]*)"', html)
    assert sources and all(src.startswith(PNG) for src in sources)
    assert base64.b64decode(sources[0][len(PNG) :])[:8] == b"\x89PNG\r\n\x1a\n"


def _headings(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


def _only_new_file_is_the_report(run: Path, before: set[str]) -> None:
    assert {p.name for p in run.iterdir()} - before == {"report.html"}


@pytest.mark.slow
def test_image_run_report_has_every_section_with_factors(shapes_run: Path) -> None:
    shapes = load_builtin("shapes", n=400)
    data = LoadedData(shapes.X, "shapes (400)", shapes.labels, shapes.factors)
    before = {p.name for p in shapes_run.iterdir()}
    path = write_report(shapes_run, data=data)
    assert path == shapes_run / "report.html"
    _only_new_file_is_the_report(shapes_run, before)
    html = path.read_text()
    _self_contained(html)
    assert _headings(html) == [*IMAGE_SECTIONS, "Factor × latent mutual information"]
    assert html.count(PNG) >= 7  # curves, reconstructions, samples, traversal, PCA, t-SNE, MI
    assert "coloured by label" in html and "beta_tcvae" in html
    assert "Probes" not in html and "Evaluation" not in html  # only what exists


@pytest.mark.slow
def test_cli_report_on_a_table_run_renders_evaluation_and_probes(census_run: Path) -> None:
    (census_run / "evaluation.json").write_text(json.dumps(EVALUATION))
    (census_run / "probes.json").write_text(json.dumps(PROBES))
    try:
        result = fds("report", "--model", census_run / "model", "--json")
    finally:
        (census_run / "evaluation.json").unlink()
        (census_run / "probes.json").unlink()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"report": str(census_run / "report.html")}
    html = (census_run / "report.html").read_text()
    _self_contained(html)
    assert _headings(html) == [
        *IMAGE_SECTIONS,
        "Probes: inference on latents",
        "Evaluation",
    ]
    assert html.count(PNG) >= 6
    assert "held-out rows" in html
    for shown in ("0.04123", "[0.011, 2.31, 0.0021]", "per_column", "sparsity skipped"):
        assert shown in html, shown
    assert "disentanglement" not in html  # null: not computed, so not shown
    assert "rgba(" in html  # the importance matrix is a shaded table
    for shown in ("high_income", "n_train: 240", "logistic", "0.7134", "0.8421", "0.6512"):
        assert shown in html, shown


@pytest.mark.slow
def test_quickstart_ends_with_evaluation_and_report(
    census_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_train_run(params, out, **kwargs):  # training is tested elsewhere: reuse a run
        ignore = shutil.ignore_patterns("report.html", "evaluation.json")
        shutil.copytree(census_run, out, ignore=ignore)
        return {"run_dir": str(out), "model_dir": str(Path(out) / "model")}

    monkeypatch.setattr("fds.workflows.quickstart.train_run", fake_train_run)
    result = fds("quickstart", "--out", tmp_path / "qs", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["report"] == str(tmp_path / "qs" / "report.html")
    assert Path(summary["report"]).is_file()
    evaluation = json.loads(Path(summary["evaluation"]).read_text())
    assert summary["active_units"] == evaluation["latent_health"]["active_units"]
    assert "Evaluation" in Path(summary["report"]).read_text()


def test_missing_run_exits_2_with_one_line(tmp_path: Path) -> None:
    result = fds("report", "--model", tmp_path / "nowhere")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "nowhere" in lines[0]
    result = fds("report", tmp_path / "elsewhere")  # the run as an argument, like evaluate
    assert result.exit_code == 2 and "elsewhere" in result.stderr
    (tmp_path / "empty").mkdir()
    result = fds("report", "--model", tmp_path / "empty")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "empty" / "report.html").exists()


def test_broken_evaluation_json_is_named_and_nothing_is_written(
    census_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(census_run, run, ignore=shutil.ignore_patterns("report.html"))
    (run / "evaluation.json").write_text("{not json")
    result = fds("report", "--model", run)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "evaluation.json" in lines[0]
    assert not [p for p in run.iterdir() if "report" in p.name]


def test_report_help_shows_an_example() -> None:
    result = fds("report", "--help")
    assert result.exit_code == 0 and "Example" in result.stdout and "fds report" in result.stdout


# --------------------------------------------------------------------------- pure helpers


def test_mutual_information_is_one_where_a_dimension_determines_a_factor() -> None:
    rng = np.random.default_rng(0)
    factors = pd.DataFrame({"a": rng.integers(0, 4, 2000), "b": rng.integers(0, 3, 2000)})
    codes = np.column_stack([factors["b"] + rng.normal(0, 0.01, 2000), rng.normal(size=2000)])
    mi = factor_latent_mi(factors, codes)
    assert mi.shape == (2, 2)
    assert mi[1, 0] == pytest.approx(1.0, abs=1e-6)
    assert mi[0, 0] < 0.05 and mi[1, 1] < 0.05


def test_training_curves_are_a_png_of_every_term() -> None:
    records = [
        {"epoch": 1, "lr": 1e-3, "train_loss": 3.0, "train_kl": 0.5, "val_loss": 3.2},
        {"epoch": 2, "lr": 1e-3, "train_loss": 2.0, "train_kl": 0.7, "val_loss": 2.5},
    ]
    assert training_curves_png(records).startswith(b"\x89PNG")


def test_the_tsne_map_embeds_at_most_its_point_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    fitted: list[int] = []

    def fit_transform(self, X, y=None):  # records the rows t-SNE would embed, skips the work
        fitted.append(len(X))
        return np.zeros((len(X), 2))

    monkeypatch.setattr("sklearn.manifold.TSNE.fit_transform", fit_transform)
    codes = np.random.default_rng(0).normal(size=(TSNE_POINTS + 500, 4))
    section = _latent_map_section(codes, np.arange(len(codes)) % 3, "shape", seed=0)
    assert isinstance(section, Section) and len(section.figures) == 2  # PCA, then t-SNE
    assert fitted == [TSNE_POINTS]
    assert f"{len(codes)} rows" in section.intro  # the PCA map shows every encoded row


def test_json_nodes_and_probe_tables() -> None:
    node = json_node({"a": 1.234567, "b": {"x": {"m": 1}, "y": {"m": 2}}, "c": None})
    assert node["kind"] == "group"
    assert node["table"].rows == [["a", "1.235"]]
    assert [child["kind"] for child in node["children"]] == ["table"]  # c (null) is left out
    assert node["children"][0]["table"].rows == [["x", "1"], ["y", "2"]]
    (table,) = probe_tables(PROBES)
    assert table.header[0] == [("head", 1, 2), ("accuracy", 2, 1)]
    assert table.header[1] == [("latent", 1, 1), ("raw", 1, 1)]
    assert table.rows == [["logistic", "0.7134", "0.8421"], ["knn", "0.6512", "0.7911"]]
