"""Runs on disk under misuse, through the CLI: a bad config leaves no run behind, a NaN or Ctrl-C
says exactly what is on disk, and nothing is replaced or deleted without `--overwrite` (and even
then only once the replacement has succeeded)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from fds.data.datasets import make_census
from fds.training.trainer import Trainer
from tests.cli_helpers import fds, one_line_error

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


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [("seed: -1\n", "invalid option seed"), ("1: x\n", "option names are text")],
)
def test_resume_with_an_edited_invalid_config_names_it(
    tmp_path: Path, finished: Path, edit: str, culprit: str
) -> None:
    run = _fresh_copy(finished, tmp_path / "run")
    with (run / "config.yaml").open("a") as handle:
        handle.write(edit)
    before = _snapshot(run)
    one_line_error(fds("train", "--resume", run), str(run / "config.yaml"), culprit)
    assert _snapshot(run) == before


# ----------------------------------------------------------------------------- honest checkpoints
@pytest.mark.parametrize(
    ("text", "what"),
    [
        # one step per epoch: the step's loss is finite, the weights after it are not usable
        ("batch_size: 1000\nlr: 1.0e+9\n", "val_loss became"),
        ("batch_size: 1000\nlr: 1.0e+9\nval_fraction: 0\n", "the loss of one training batch"),
        ("lr: 1.0e+30\n", "loss term"),
    ],
)
def test_a_divergence_before_any_checkpoint_keeps_nothing_and_says_so(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch, text: str, what: str
) -> None:
    monkeypatch.chdir(tmp_path)
    config = _yaml(tmp_path, text)
    result = fds(
        "train", "--data", workspace / "census.csv", "--config", config, "--out", "r", "--quiet"
    )
    line = one_line_error(result, what, "no checkpoint was written, so nothing was kept in r")
    assert "last checkpoint" not in line
    assert not Path("r").exists()


def test_a_validation_nan_after_a_good_epoch_keeps_that_epoch(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate = Trainer.validate
    calls = []

    def nan_in_the_second_epoch(self: Trainer, rows: object) -> dict[str, float]:
        calls.append(1)
        return validate(self, rows) | ({"val_loss": float("nan")} if len(calls) == 2 else {})

    monkeypatch.setattr(Trainer, "validate", nan_in_the_second_epoch)
    run = tmp_path / "run"
    line = one_line_error(_train(workspace, run), "val_loss became nan at epoch 2")
    checkpoint = run / "checkpoints" / "last.safetensors"
    assert (
        f"the last checkpoint with finite values (step 4, 1 epoch done) is in {checkpoint}" in line
    )
    weights = load_file(str(checkpoint))
    assert all(np.isfinite(v).all() for v in weights.values() if v.dtype.kind == "f")
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.slow
def test_ctrl_c_before_the_first_checkpoint_says_so_and_resume_starts_cleanly(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: Trainer, resume: bool = False) -> None:
        raise KeyboardInterrupt  # Ctrl-C while the model is being built

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "fit", interrupted)
        result = _train(workspace, run)
    assert result.exit_code == 130
    assert result.stderr.strip() == (
        "interrupted: stopped before the first checkpoint, nothing was trained; "
        f"`fds train --resume {run}` starts it from the beginning"
    )
    assert not (run / "checkpoints" / "last.safetensors").exists()
    resumed = fds("train", "--resume", run, "--quiet", "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["epochs_trained"] == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_ctrl_c_during_training_names_the_checkpoint_it_wrote(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = Trainer._step

    def ctrl_c_at_step_3(self: Trainer, x: object, index: int, *args: object) -> object:
        if index == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the trainer's handler finishes the step
        return step(self, x, index, *args)

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", ctrl_c_at_step_3)
        result = _train(workspace, run)
    assert result.exit_code == 130
    checkpoint = run / "checkpoints" / "last.safetensors"
    assert result.stderr.strip() == (
        f"interrupted: a checkpoint (step 3, 0 epochs done) is in {checkpoint}; "
        f"continue with `fds train --resume {run}`"
    )
    assert fds("train", "--resume", run, "--quiet").exit_code == 0


# ----------------------------------------------------------------------------- nothing lost
def test_overwrite_that_diverges_leaves_the_old_run_whole(
    tmp_path: Path, workspace: Path, finished: Path
) -> None:
    run = _fresh_copy(finished, tmp_path / "run")
    before = _snapshot(run)
    config = _yaml(tmp_path, "lr: 1.0e+30\n")
    data = workspace / "census.csv"
    result = fds("train", "--data", data, "--config", config, "--out", run, "--overwrite", "-q")
    one_line_error(result, "loss term", f"the new run was discarded and {run} still holds")
    assert _snapshot(run) == before
    _only(tmp_path, "run", "config.yaml")


def test_overwrite_interrupted_leaves_the_old_run_whole(
    tmp_path: Path, workspace: Path, finished: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _fresh_copy(finished, tmp_path / "run")
    before = _snapshot(run)

    def interrupted(self: Trainer, resume: bool = False) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    result = _train(workspace, run, "--overwrite")
    assert result.exit_code == 130
    assert "the new run was discarded" in result.stderr
    assert _snapshot(run) == before
    _only(tmp_path, "run")


def test_overwrite_swaps_in_the_new_run_at_the_end(
    tmp_path: Path, workspace: Path, finished: Path
) -> None:
    run = _fresh_copy(finished, tmp_path / "run")
    (run / "old-note.txt").write_text("from the earlier run")
    result = _train(workspace, run, "--overwrite")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["run_dir"] == str(run)
    assert all(Path(p).is_file() and Path(p).parent == run for p in summary["artifacts"])
    assert not (run / "old-note.txt").exists()
    assert (run / "model" / "manifest.json").is_file()
    _only(tmp_path, "run")


@pytest.mark.slow
def test_resume_of_a_finished_run_keeps_its_probes_and_ledger(
    tmp_path: Path, workspace: Path, finished: Path
) -> None:
    run = _fresh_copy(finished, tmp_path / "run")
    data = workspace / "census.csv"
    saved = fds("probe", "run", "--model", run, "--data", data, "--target", "sex", "--save", "p")
    assert saved.exit_code == 0, saved.output
    assert fds("ledger", "set-budget", run, "--epsilon", 3).exit_code == 0
    kept = {
        name: (run / name).read_bytes()
        for name in ("model/probes/p.json", "model/probes/p.safetensors", "privacy_ledger.json")
    }
    assert fds("train", "--resume", run, "--quiet").exit_code == 0
    assert {name: (run / name).read_bytes() for name in kept} == kept
    applied = fds(
        "probe",
        "apply",
        "--model",
        run,
        "--probe",
        "p",
        "--data",
        data,
        "--out",
        tmp_path / "p.csv",
    )
    assert applied.exit_code == 0, applied.output  # same weights: the probe still applies


def test_probe_save_refuses_an_existing_name_without_overwrite(
    tmp_path: Path, workspace: Path, finished: Path
) -> None:
    run = _fresh_copy(finished, tmp_path / "run")
    args = ["probe", "run", "--model", run, "--data", workspace / "census.csv", "--save", "p"]
    assert fds(*args, "--target", "sex").exit_code == 0
    before = _snapshot(run / "model" / "probes")
    one_line_error(fds(*args, "--target", "age", "--json"), "probe 'p' already exists")
    assert _snapshot(run / "model" / "probes") == before
    replaced = fds(*args, "--target", "age", "--overwrite", "--json")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((run / "model" / "probes" / "p.json").read_text())["spec"]["target"] == "age"


def test_quickstart_replaces_only_an_earlier_quickstart_run_and_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []

    def fake_train_run(params: dict, out: Path, **kwargs: object) -> dict:
        calls.append(bool(kwargs["overwrite"]))
        raise KeyboardInterrupt  # training itself is tested above: stop here

    monkeypatch.setattr("fds.workflows.quickstart.train_run", fake_train_run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for flags in ([], ["--overwrite"], ["--json"]):
        result = fds("quickstart", "--out", mine, *flags)
        one_line_error(result, "not an earlier quickstart run")
        assert result.stdout == ""
    earlier = tmp_path / "qs"
    earlier.mkdir()
    (earlier / "config.yaml").write_text(
        "data: shapes\npreset: fds\nsensitive: [factor:shape]\nlatent_dim: 10\n"
    )
    (earlier / "privacy_ledger.json").write_text("{}")
    for flags in ([], ["--json"]):
        one_line_error(fds("quickstart", "--out", earlier, *flags), "--overwrite")
    assert calls == []
    assert fds("quickstart", "--out", earlier, "--overwrite").exit_code == 130
    assert calls == [True]
    assert (mine / "notes.txt").read_text() == "keep me"
    assert (earlier / "privacy_ledger.json").read_text() == "{}"


# ----------------------------------------------------------------------------- bad output paths
def test_train_out_naming_a_file_or_a_path_under_one(tmp_path: Path, workspace: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("mine")
    one_line_error(_train(workspace, note), f"{note} is a file")
    one_line_error(_train(workspace, note / "run"), f"{note} is a file, not a folder")
    assert note.read_text() == "mine"
    _only(tmp_path, "note.txt")


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
