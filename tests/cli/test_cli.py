"""The `fds` command as scripts use it: --json on stdout only, one-line errors with exit code 2,
nothing half-written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fds.data.datasets import make_census
from tests.cli_helpers import fds, one_line_error

FAST_YAML = "latent_dim: 3\nhidden_dims: [32]\nepochs: 2\nbatch_size: 64\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    make_census(n=300, seed=0).to_csv(root / "census.csv", index=False)
    (root / "fast.yaml").write_text(FAST_YAML)
    return root


def _train_fast(workspace: Path, out: Path):
    """`fds train` on the small census CSV with the fast config, --json."""
    args = ["--data", workspace / "census.csv", "--config", workspace / "fast.yaml"]
    return fds("train", *args, "--out", out, "--quiet", "--json")


@pytest.fixture(scope="module")
def trained(workspace: Path) -> Path:
    run = workspace / "run"
    result = _train_fast(workspace, run)
    assert result.exit_code == 0, result.output
    return run


def test_train_writes_a_complete_run_and_one_json_object(trained: Path, workspace: Path) -> None:
    for name in (
        "config.yaml",
        "metrics.jsonl",
        "checkpoints/last.safetensors",
        "model/manifest.json",
        "columns.png",
        "samples.csv",
    ):
        assert (trained / name).exists(), name
    result = _train_fast(workspace, workspace / "run2")
    summary = json.loads(result.stdout)
    assert {
        "run_dir",
        "model_dir",
        "epochs_trained",
        "best_epoch",
        "best_val_loss",
        "val_elbo",
        "val_reconstruction_mse",
        "seconds",
    } <= summary.keys()
    assert summary["epochs_trained"] == 2
    assert summary["best_epoch"] in (1, 2)  # the epoch whose weights the model holds


def test_encode_decode_sample_round_trip(trained: Path, workspace: Path) -> None:
    z = workspace / "z.parquet"
    assert (
        fds("encode", "--model", trained, "--data", workspace / "census.csv", "--out", z).exit_code
        == 0
    )
    assert pd.read_parquet(z).shape == (300, 3)
    assert (
        fds(
            "encode",
            "--model",
            trained / "model",
            "--data",
            workspace / "census.csv",
            "--out",
            workspace / "z.npy",
        ).exit_code
        == 0
    )
    assert np.load(workspace / "z.npy").shape == (300, 3)
    result = fds(
        "decode", "--model", trained, "--latents", z, "--out", workspace / "back.csv", "--json"
    )
    assert json.loads(result.stdout)["rows"] == 300
    assert list(pd.read_csv(workspace / "back.csv").columns) == list(
        pd.read_csv(workspace / "census.csv").columns
    )
    result = fds("sample", "--model", trained, "-n", 25, "--out", workspace / "s.parquet", "--json")
    assert result.exit_code == 0 and len(pd.read_parquet(workspace / "s.parquet")) == 25


def test_datasets_lists_builtins_as_json() -> None:
    names = {d["name"] for d in json.loads(fds("datasets", "--json").stdout)["datasets"]}
    assert {"shapes", "digits", "fashion-mnist", "census"} <= names


@pytest.mark.parametrize(
    "command", ["train", "encode", "decode", "sample", "quickstart", "datasets"]
)
def test_help_shows_an_example(command: str) -> None:
    result = fds(command, "--help")
    assert result.exit_code == 0 and "fds " in result.stdout and "Example" in result.stdout


def test_bad_yaml_key_suggests_the_closest(workspace: Path) -> None:
    bad = workspace / "bad.yaml"
    bad.write_text("latent_dims: 3\n")
    result = fds("train", "--data", "census", "--config", bad, "--out", workspace / "never")
    one_line_error(result, "latent_dims", "latent_dim")
    assert not (workspace / "never").exists()


def test_bad_inputs_exit_2_and_write_nothing(workspace: Path, trained: Path) -> None:
    (workspace / "fake.parquet").write_text("this is not parquet")
    (workspace / "latents.npy").write_bytes(b"garbage")
    np.save(workspace / "wrong.npy", np.zeros((4, 7), dtype=np.float32))
    holes = pd.read_csv(workspace / "census.csv")
    holes.loc[3, "age"] = np.nan
    holes.to_csv(workspace / "holes.csv", index=False)
    cases = [
        (
            ["train", "--data", workspace / "missing.csv", "--out", workspace / "o1"],
            ["missing.csv"],
        ),
        (
            ["train", "--data", workspace / "fake.parquet", "--out", workspace / "o2"],
            ["fake.parquet", "not a valid Parquet"],
        ),
        (
            ["train", "--data", "census", "--preset", "betavae", "--out", workspace / "o3"],
            ["betavae", "beta_vae"],
        ),
        (
            [
                "train",
                "--data",
                workspace / "holes.csv",
                "--config",
                workspace / "fast.yaml",
                "--missing",
                "error",
                "--out",
                workspace / "o4",
            ],
            ["'age'", "row 3"],
        ),
        (
            [
                "encode",
                "--model",
                workspace / "nomodel",
                "--data",
                workspace / "census.csv",
                "--out",
                workspace / "o5.npy",
            ],
            ["nomodel"],
        ),
        (
            [
                "decode",
                "--model",
                trained,
                "--latents",
                workspace / "wrong.npy",
                "--out",
                workspace / "o6.csv",
            ],
            ["(N, 3)"],
        ),
        (
            [
                "decode",
                "--model",
                trained,
                "--latents",
                workspace / "latents.npy",
                "--out",
                workspace / "o7.csv",
            ],
            ["latents.npy"],
        ),
        (["sample", "--model", trained, "-n", 0, "--out", workspace / "o8.csv"], ["at least 1"]),
        (["sample", "--model", trained, "-n", 5, "--out", workspace / "o9.txt"], [".txt"]),
    ]
    for args, needles in cases:
        one_line_error(fds(*args), *needles)
    leftovers = [p.name for p in workspace.iterdir() if p.name.startswith(("o", "."))]
    assert leftovers == []


def test_existing_outputs_are_not_overwritten_silently(workspace: Path, trained: Path) -> None:
    target = workspace / "keep.csv"
    target.write_text("user data\n")
    one_line_error(fds("sample", "--model", trained, "-n", 5, "--out", target), "--overwrite")
    assert target.read_text() == "user data\n"
    assert fds("sample", "--model", trained, "-n", 5, "--out", target, "--overwrite").exit_code == 0
    result = fds("train", "--data", workspace / "census.csv", "--out", trained)
    one_line_error(result, "--resume", "--overwrite")


def test_tampered_model_is_refused(workspace: Path, trained: Path) -> None:
    import shutil

    copy = workspace / "tampered"
    shutil.copytree(trained / "model", copy)
    (copy / "config.json").write_text(
        (copy / "config.json").read_text().replace('"latent_dim": 3', '"latent_dim": 4')
    )
    result = fds("sample", "--model", copy, "-n", 3, "--out", workspace / "t.csv")
    one_line_error(result, "sha256")


def test_sample_and_encode_draws_are_fresh_unless_seeded(trained: Path, workspace: Path) -> None:
    """Without --seed the noise comes from the OS (nobody holding the model can regenerate it);
    --seed reproduces it."""

    def draw(command: str, name: str, *seed: object) -> np.ndarray:
        out = workspace / name
        if command == "sample":
            args = ("sample", "--model", trained, "-n", 40, "--out", out, *seed)
        else:
            data = workspace / "census.csv"
            args = ("encode", "--model", trained, "--data", data, "--sample", "--out", out, *seed)
        assert fds(*args).exit_code == 0
        return np.load(out) if name.endswith(".npy") else pd.read_csv(out).to_numpy()

    for command, suffix in (("sample", ".csv"), ("encode", ".npy")):
        first, second = draw(command, f"a{suffix}"), draw(command, f"b{suffix}")
        assert not np.array_equal(first, second), command
        seeded = draw(command, f"c{suffix}", "--seed", 5), draw(command, f"d{suffix}", "--seed", 5)
        assert np.array_equal(*seeded), command


def test_train_missing_flag_picks_the_policy(workspace: Path) -> None:
    gappy = workspace / "gappy.csv"
    make_census(n=300, seed=0, missing=0.2).to_csv(gappy, index=False)
    base = ["train", "--data", gappy, "--config", workspace / "fast.yaml", "--quiet", "--json"]
    result = fds(*base, "--missing", "impute", "--out", workspace / "impute")
    assert result.exit_code == 0, result.output
    assert "missing: impute" in (workspace / "impute" / "config.yaml").read_text()
    samples = pd.read_csv(workspace / "impute" / "samples.csv")
    assert not samples.isna().any().any()  # imputed: no gaps are generated
    one_line_error(fds(*base, "--missing", "fill", "--out", workspace / "bad"), "missing")
    assert not (workspace / "bad").exists()
