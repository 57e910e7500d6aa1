"""`fds tune` / `fds.tune`: an Optuna study whose trials are normal runs — the best one copied to a
model directory, the front of several objectives written as a table and a picture, an interrupted
study continued with --resume, and a non-empty directory never reused by accident."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

import fds
from fds.data.files import read_data
from fds.errors import ConfigError, DataError
from fds.estimator import FDS
from fds.workflows.train import train_run
from tests.cli_helpers import fds as fds_cli
from tests.cli_helpers import one_line_error

SPACE = {
    "latent_dim": {"type": "int", "low": 2, "high": 6},
    "hidden_dims": {"type": "categorical", "choices": [[16], [8, 8]]},
    "batch_size": 64,
}


@pytest.fixture(scope="module")
def census_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "census.csv"
    read_data("census", n=600, seed=0).X.to_csv(path, index=False)
    return path


def _study(out):
    return optuna.load_study(study_name="fds-tune", storage=f"sqlite:///{out / 'study.db'}")


@pytest.mark.slow  # trains
def test_single_objective_saves_every_trial_and_the_best_run(tmp_path, census_csv) -> None:
    out = tmp_path / "tune"
    study = fds.tune(
        str(census_csv), out=out, space=SPACE, trials=4, epochs=2, verbose=False, prune=False
    )
    assert len(study.trials) == 4
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert study.best_value == max(t.value for t in complete)
    for trial in complete:  # every trial is a run whose model loads, trained with its parameters
        model = FDS.load(f"{trial.user_attrs['run_dir']}/model")
        assert model.config_.latent_dim == trial.params["latent_dim"]
        assert list(model.config_.hidden_dims) in ([16], [8, 8])
        assert model.config_.batch_size == 64
    best = FDS.load(out / "best" / "model")
    assert best.config_.latent_dim == study.best_params["latent_dim"]
    summary = json.loads((out / "tune.json").read_text())
    assert summary["best_value"] == pytest.approx(study.best_value)
    assert summary["best_params"]["hidden_dims"] == list(best.config_.hidden_dims)  # a list again
    table = pd.read_csv(out / "trials.csv")
    assert list(table["number"]) == [0, 1, 2, 3]
    assert _study(out).best_value == study.best_value  # the SQLite storage holds the study


@pytest.mark.slow  # trains
def test_resume_continues_an_interrupted_study(tmp_path, census_csv) -> None:
    out = tmp_path / "tune"
    first = fds.tune(str(census_csv), out=out, space=SPACE, trials=2, epochs=1, verbose=False)
    before = [(t.number, t.value) for t in first.trials]
    _study(out).ask()  # a trial left RUNNING, as a killed process leaves it
    with pytest.raises(DataError, match="--resume"):
        fds.tune(str(census_csv), out=out, space=SPACE, trials=2, epochs=1, verbose=False)
    one_line_error(fds_cli("tune", "--resume", "--out", out, "--data", "census"), "--data")
    study = fds.tune(out=out, trials=4, resume=True, verbose=False)
    states = [t.state for t in study.trials]
    assert states[2] == TrialState.FAIL  # the interrupted one
    assert sum(s == TrialState.COMPLETE for s in states) + states.count(TrialState.PRUNED) == 4
    assert [(t.number, t.value) for t in study.trials[:2]] == before


@pytest.mark.slow  # trains
def test_pruning_stops_a_trial_at_an_epoch_boundary_leaving_a_resumable_run(
    tmp_path, census_csv
) -> None:
    def prune_after_first_epoch(record):
        raise optuna.TrialPruned(f"epoch {record['epoch']}")

    run = tmp_path / "run"
    params = {"data": str(census_csv), "latent_dim": 2, "hidden_dims": [16], "epochs": 3}
    with pytest.raises(optuna.TrialPruned):
        train_run(params, run, verbose=False, on_epoch=prune_after_first_epoch)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and (run / "checkpoints" / "last.safetensors").is_file()
    summary = train_run({}, run, resume=True, verbose=False)
    assert summary["epochs_trained"] == 3


@pytest.mark.slow  # trains
def test_two_objectives_give_a_front_of_non_dominated_runs(tmp_path, census_csv) -> None:
    out = tmp_path / "front"
    space = {
        "latent_dim": 6,
        "hidden_dims": [32],
        "mmd": {"type": "float", "low": 0.1, "high": 100.0, "log": True},
    }
    result = fds_cli(
        "tune", "--data", census_csv, "--preset", "fds", "--sensitive", "sex",
        "--objective", "utility:education", "--objective", "leakage",
        "--space", _yaml(tmp_path, space), "--trials", 2, "--epochs", 1, "--out", out, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["objectives"] == ["utility:education", "leakage:sex"]
    assert summary["directions"] == ["maximize", "minimize"]
    front = pd.read_csv(out / "front.csv")
    trials = pd.read_csv(out / "trials.csv")
    done = trials[trials["state"] == "COMPLETE"]
    assert len(front) == summary["front_size"] >= 1
    for _, point in front.iterrows():  # nothing finished beats a front point on both
        better = (done["utility:education"] >= point["utility:education"]) & (
            done["leakage:sex"] <= point["leakage:sex"]
        )
        strictly = (done["utility:education"] > point["utility:education"]) | (
            done["leakage:sex"] < point["leakage:sex"]
        )
        assert not (better & strictly).any()
        model = FDS.load(f"{point['run_dir']}/model")  # each point's run loads
        assert model.model_.private_dim > 0
    assert (out / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.all((front["leakage:sex"] >= 0) & (front["leakage:sex"] <= 1))


def test_bad_inputs_fail_before_anything_is_written(tmp_path, census_csv) -> None:
    out = tmp_path / "tune"
    bad = _yaml(tmp_path, {"latent_dims": {"type": "int", "low": 2, "high": 4}})
    one_line_error(
        fds_cli("tune", "--data", census_csv, "--space", bad, "--out", out), "latent_dims"
    )
    one_line_error(
        fds_cli("tune", "--data", census_csv, "--objective", "leakage", "--out", out),
        "--sensitive",
    )
    assert not out.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    one_line_error(
        fds_cli("tune", "--data", census_csv, "--out", other, "--overwrite"), "no fds tune study"
    )
    assert (other / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="low"):
        fds.tune(
            str(census_csv),
            out=out,
            space={"lr": {"type": "float", "low": 0, "high": 1, "log": True}},
            verbose=False,
        )


def _yaml(tmp_path, space):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    return path


def test_a_space_turns_suggestions_into_options() -> None:
    from fds.workflows.tune_space import default_space, load_space, suggest

    space = load_space(
        {
            "latent_dim": {"type": "int", "low": 2, "high": 8},
            "hidden_dims": {"type": "categorical", "choices": [[16], [32, 32]]},
            "epochs": 3,
        },
        "vae",
    )
    trial = optuna.trial.FixedTrial({"latent_dim": 5, "hidden_dims": "[32, 32]"})
    assert suggest(trial, space) == {"latent_dim": 5, "hidden_dims": [32, 32], "epochs": 3}
    for preset in ("vae", "fds", "beta_tcvae", "ae"):  # every default names real options
        assert "latent_dim" in default_space(preset)
    assert {"mmd", "censor"} <= set(default_space("fds"))
    with pytest.raises(ConfigError, match="seed"):
        load_space({"seed": {"type": "int", "low": 0, "high": 3}}, "vae")
    with pytest.raises(ConfigError, match="choices"):
        load_space({"hidden_dims": {"type": "categorical"}}, "vae")
