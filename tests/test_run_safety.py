"""Runs on disk under misuse, through the CLI: a bad config leaves no run behind, a NaN or Ctrl-C
says exactly what is on disk, and nothing is replaced or deleted without `--overwrite` (and even
then only once the replacement has succeeded)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from fds.data.datasets import make_census

from .cli_helpers import fds, one_line_error

FAST_YAML = "latent_dim: 3\nhidden_dims: [32]\nepochs: 2\nbatch_size: 64\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("safety")
    make_census(n=300, seed=0).to_csv(root / "census.csv", index=False)
    (root / "fast.yaml").write_text(FAST_YAML)
    return root


def _yaml(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(FAST_YAML + text)
    return path


def _train(workspace: Path, out: Path, *extra: object):
    return fds(
        "train",
        "--data",
        workspace / "census.csv",
        "--config",
        workspace / "fast.yaml",
        "--out",
        out,
        "--quiet",
        "--json",
        *extra,
    )


@pytest.fixture(scope="module")
def finished(workspace: Path) -> Path:
    run = workspace / "finished"
    assert _train(workspace, run).exit_code == 0
    return run


def _fresh_copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its sha256: equal snapshots mean nothing was touched."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _only(parent: Path, *names: str) -> None:
    """`parent` holds exactly `names` (no temporary sibling left behind)."""
    assert sorted(p.name for p in parent.iterdir()) == sorted(names)


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        ("hidden_dims: [0]\n", "hidden_dims.0"),
        ("hidden_dims: [-4]\n", "hidden_dims.0"),
        ("seed: -1\n", "seed"),
        ("seed: 1e23\n", "seed"),
        ("seed: 1.0e+23\n", "seed"),
        ("latent_dim: 100000000\n", "latent_dim=100000000"),
        ("1: 2\n", "option names are text, got int 1"),
        ("data: 123\n", "data must be a path or a built-in data set name"),
        ("data: [a, b]\n", "data must be a path or a built-in data set name"),
        ("max_steps: yes\n", "max_steps"),
    ],
)
def test_a_hostile_config_is_one_line_and_leaves_no_run(
    tmp_path: Path, workspace: Path, text: str, culprit: str
) -> None:
    config = _yaml(tmp_path, text)
    for data in (["--data", workspace / "census.csv"], []):
        result = fds("train", *data, "--config", config, "--out", tmp_path / "run", "--quiet")
        one_line_error(result, str(config), culprit)
        assert not (tmp_path / "run").exists()


def test_a_non_utf8_config_names_the_file(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "latin1.yaml"
    config.write_bytes(FAST_YAML.encode() + b"# r\xe9sum\xe9\n")
    result = fds("train", "--data", workspace / "census.csv", "--config", config, "--out", "r")
    one_line_error(result, str(config), "not UTF-8")


# ----------------------------------------------------------------------------- bad output paths


def test_file_outputs_naming_a_folder_or_a_path_under_a_file(
    tmp_path: Path, finished: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("mine")
    folder = tmp_path / "folder"
    folder.mkdir()
    for out in (folder, note / "samples.csv"):
        for extra in ([], ["--overwrite"]):
            result = fds("sample", "--model", finished, "-n", 5, "--out", out, *extra)
            one_line_error(result, str(out))
    _only(tmp_path, "note.txt", "folder")
    _only(folder)
