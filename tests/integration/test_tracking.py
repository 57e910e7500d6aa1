"""`--log mlflow` and `--log tensorboard`: what a tracked run records is read back from a local
MLflow store and from TensorBoard's event files, the way a user's `mlflow ui` or `tensorboard`
would read it."""

from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from tests.cli_helpers import fds, one_line_error

EPOCHS = 3


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            preset: vae
            latent_dim: 3
            hidden_dims: [16]
            epochs: {EPOCHS}
            batch_size: 64
            """
        )
    )
    return path


def _train(tmp_path, config, *log: str):
    args = ["train", "--data", "digits", "--config", config, "--out", tmp_path / "run", "--quiet"]
    for spec in log:
        args += ["--log", spec]
    result = fds(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow  # trains
def test_mlflow_records_params_epochs_figures_and_the_run(tmp_path, config) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra (pip install 'fds[mlflow]') is absent")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    summary = _train(tmp_path, config, f"mlflow={store}")
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("fds")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "run"
    assert run.data.params["latent_dim"] == "3"
    assert run.data.params["preset"] == "vae"
    history = client.get_metric_history(run.info.run_id, "val_elbo")
    per_epoch = sorted((m.step, m.value) for m in history if m.step > 0)
    assert [step for step, _ in per_epoch] == list(range(1, EPOCHS + 1))
    epochs = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [v for _, v in per_epoch] == pytest.approx([r["val_elbo"] for r in epochs])
    final = [m.value for m in history if m.step == 0]
    assert final == pytest.approx([summary["val_elbo"]])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model", "config.yaml", "metrics.jsonl"} <= artifacts
    model_files = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert "model/weights.safetensors" in model_files
    assert not any(a.startswith("checkpoints") for a in artifacts)


@pytest.mark.slow  # trains
def test_tensorboard_event_files_hold_each_epoch_and_the_final_figures(tmp_path, config) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is absent")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    summary = _train(tmp_path, config, f"tensorboard={logdir}")
    events = EventAccumulator(str(logdir / "fds" / "run"), size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Tags()["scalars"]
    steps = [e.step for e in events.Scalars("val_elbo")]
    assert steps == list(range(1, EPOCHS + 1))
    (final,) = events.Scalars("final/val_elbo")
    assert final.value == pytest.approx(summary["val_elbo"], rel=1e-6)
    assert "train_loss" in scalars
    assert "columns" in events.Tags()["images"] or "samples" in events.Tags()["images"]


@pytest.mark.slow  # trains
def test_both_trackers_at_once(tmp_path, config) -> None:
    pytest.importorskip("mlflow", reason="the mlflow extra is absent")
    pytest.importorskip("tensorboard", reason="the tensorboard extra is absent")
    _train(tmp_path, config, f"mlflow={tmp_path / 'ml'}", f"tensorboard={tmp_path / 'tb'}")
    assert (tmp_path / "ml" / "mlflow.db").is_file()
    assert list((tmp_path / "tb" / "fds" / "run").glob("events.out.tfevents.*"))


def test_a_missing_tracker_package_is_one_line_saying_how_to_install(
    tmp_path, config, monkeypatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    result = fds(
        "train",
        "--data",
        "digits",
        "--config",
        config,
        "--out",
        tmp_path / "run",
        "--log",
        "mlflow",
    )
    one_line_error(result, "pip install 'fds[mlflow]'")
    assert not (tmp_path / "run").exists()


def test_an_unknown_tracker_is_refused(tmp_path, config) -> None:
    result = fds(
        "train", "--data", "digits", "--config", config, "--out", tmp_path / "run", "--log", "wandb"
    )
    one_line_error(result, "wandb", "mlflow or tensorboard")


@pytest.mark.slow  # trains
def test_tune_tracks_every_trial_as_a_run(tmp_path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is absent")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    space = tmp_path / "space.yaml"
    space.write_text("latent_dim: {type: int, low: 2, high: 4}\nhidden_dims: [16]\n")
    logdir = tmp_path / "tb"
    result = fds(
        "tune", "--data", "digits", "--space", space, "--trials", 2, "--epochs", 2,
        "--out", tmp_path / "tune", "--log", f"tensorboard={logdir}", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    runs = sorted(p.name for p in (logdir / "fds-tune").iterdir())
    assert runs == ["0000", "0001"]
    values = {}
    for run in runs:
        events = EventAccumulator(str(logdir / "fds-tune" / run))
        events.Reload()
        assert [e.step for e in events.Scalars("val_elbo")] == [1, 2]
        (objective,) = events.Scalars("final/objective.elbo")  # the value the trial returned
        values[int(run)] = objective.value
    trials = pd.read_csv(tmp_path / "tune" / "trials.csv")
    assert values == pytest.approx(dict(zip(trials["number"], trials["elbo"], strict=True)))


@pytest.mark.slow  # trains
def test_federated_simulation_tracks_each_round(tmp_path) -> None:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is absent")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tmp_path / "fed.yaml"
    config.write_text(
        textwrap.dedent(
            """
            data: digits
            preset: vae
            latent_dim: 3
            hidden_dims: [16]
            batch_size: 64
            federated: {sites: 2, rounds: 2, local_epochs: 1, timeout: 300}
            """
        )
    )
    logdir = tmp_path / "tb"
    result = fds(
        "federated", "simulate", "--config", config, "--out", tmp_path / "fed",
        "--log", f"tensorboard={logdir}", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    events = EventAccumulator(str(logdir / "fds-federated" / "fed"))
    events.Reload()
    assert [e.step for e in events.Scalars("val_elbo")] == [1, 2]
    (final,) = events.Scalars("final/val_elbo")
    assert final.value == pytest.approx(summary["val_elbo"], rel=1e-6)
