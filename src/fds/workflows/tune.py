"""`fds tune` / `fds.tune(...)`: an Optuna study over FDS options, every trial a normal run.

The tune directory:

    tune.yaml        what the study searches (data, preset, space, objectives, …): --resume reads it
    study.db         Optuna's SQLite storage (`optuna.load_study(storage="sqlite:///…/study.db")`)
    trials/NNNN/     each trial's run directory (`fds train`'s layout; a pruned trial keeps its
                     checkpoint and config.yaml, so `fds train --resume` can finish it)
    trials.csv       one row per trial: number, state, values, parameters, run directory
    best/            a copy of the best trial's run (one objective): best/model/ is a model directory
    front.csv, front.png   (several objectives) the non-dominated trials and the trade-off picture
    tune.json        the summary `fds tune --json` prints

TPE is the default sampler (it handles several objectives too). With one objective that a run
reports per epoch (elbo, loss), bad trials are pruned at epoch boundaries by Optuna's median
rule through the Trainer's `on_epoch` hook. `trials` counts complete and pruned trials: a failed
one (its training diverged, or it was running when the study was interrupted) is replaced. An
interrupted study continues with `resume`, which marks its running trials failed.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from fds.config import dump_yaml, make_config, read_yaml_mapping
from fds.data.files import LoadedData, check_creatable, read_data
from fds.errors import ConfigError, DataError, TrainingDivergedError
from fds.estimator import FDS
from fds.rundir import MODEL_DIR, write_json, write_text
from fds.tracking import Tracker, epoch_logger, run_files, tracked_run
from fds.workflows.train import train_run
from fds.workflows.tune_objectives import Objective, TrialFigures, parse_objectives
from fds.workflows.tune_space import chosen_values, load_space, suggest

__all__ = ["SAMPLERS", "load_summary", "tune"]

SETTINGS_FILE = "tune.yaml"
STORAGE_FILE = "study.db"
TRIALS_DIR = "trials"
TRIALS_CSV = "trials.csv"
BEST_DIR = "best"
FRONT_CSV = "front.csv"
FRONT_PNG = "front.png"
SUMMARY_FILE = "tune.json"
STUDY_NAME = "fds-tune"
SAMPLERS = ("tpe", "random", "nsga2")
_PRUNE_STARTUP = 4  # trials finished before the median rule may prune
_PRUNE_WARMUP = 1  # epochs a trial always trains before it may be pruned


def tune(
    data: str | None = None,
    *,
    out: str | Path,
    preset: str = "vae",
    space: str | Path | dict[str, Any] | None = None,
    trials: int = 50,
    objectives: list[str] | tuple[str, ...] = ("elbo",),
    sensitive: list[str] | tuple[str, ...] = (),
    params: dict[str, Any] | None = None,
    epochs: int | None = None,
    seed: int = 0,
    sampler: str = "tpe",
    prune: bool = True,
    data_root: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    verbose: bool = True,
    tracker: Tracker | None = None,
) -> Any:
    """Search FDS options on `data` and return the Optuna study (`study.best_trial`,
    `study.best_trials` for several objectives, `trial.user_attrs["run_dir"]`).

    `space`: a YAML file or mapping (see `fds.workflows.tune_space`), default the preset's.
    `objectives`: names from `fds.workflows.tune_objectives` (default the held-out ELBO).
    `params`: FDS options every trial shares (the space overrides them). `resume` continues the
    study in `out` with the settings it was started with (`trials` is the new total)."""
    import optuna

    out = Path(out)
    if trials < 1:
        raise ConfigError(f"--trials must be at least 1, got {trials}")
    if resume:
        settings = _saved_settings(out)
    else:
        settings = _settings(
            data, preset, space, objectives, sensitive, params, epochs, seed, sampler, prune
        )
        settings["data_root"] = data_root
        _prepare(out, overwrite)
    goals = parse_objectives(settings["objectives"], tuple(settings["sensitive"]))
    loaded = read_data(settings["data"], seed=settings["seed"], root=settings["data_root"])
    if not resume:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / SETTINGS_FILE, dump_yaml(settings))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=f"sqlite:///{(out / STORAGE_FILE).resolve()}",
        directions=[g.direction for g in goals],
        sampler=_sampler(settings["sampler"], settings["seed"], len(goals)),
        pruner=_pruner(goals, settings["prune"]),
        load_if_exists=True,
    )
    _fail_interrupted(study)
    remaining = trials - len(_finished(study))
    objective = _Objective(settings, goals, loaded, out, tracker)
    with _StudyProgress(verbose, study, goals, trials) as progress:
        if remaining > 0:
            study.optimize(
                objective,
                n_trials=remaining,
                catch=(TrainingDivergedError,),
                callbacks=[progress.update],
            )
    _write_results(study, goals, settings["space"], out)
    return study


# ----------------------------------------------------------------------------- settings
def _settings(
    data: str | None,
    preset: str,
    space: str | Path | dict[str, Any] | None,
    objectives: list[str] | tuple[str, ...],
    sensitive: list[str] | tuple[str, ...],
    params: dict[str, Any] | None,
    epochs: int | None,
    seed: int,
    sampler: str,
    prune: bool,
) -> dict[str, Any]:
    """Everything the study needs, checked before any file is written."""
    if data is None:
        raise DataError("no data given: pass --data PATH|BUILTIN")
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    shared = dict(params or {}) | {"preset": preset, "seed": seed}
    if sensitive:
        shared["sensitive"] = list(sensitive)
    if epochs is not None:
        shared["epochs"] = epochs
    make_config(**shared)  # a bad option or preset fails here, naming it
    parse_objectives(list(objectives), tuple(sensitive))
    return {
        "data": str(data),
        "preset": preset,
        "space": load_space(space, preset),
        "objectives": list(objectives) or ["elbo"],
        "sensitive": list(sensitive),
        "params": shared,
        "seed": seed,
        "sampler": sampler,
        "prune": prune,
    }


def _saved_settings(out: Path) -> dict[str, Any]:
    path = out / SETTINGS_FILE
    if not (path.is_file() and (out / STORAGE_FILE).is_file()):
        raise DataError(f"cannot resume: {out} holds no fds tune study ({SETTINGS_FILE}, study.db)")
    return read_yaml_mapping(path)


def _prepare(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty `out` unless `overwrite` and it holds an earlier study (never a folder
    that is not one); then clear it."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file, not a tune directory: choose another --out")
    if not out.exists():
        check_creatable(out)
        return
    if not any(out.iterdir()):
        return
    if not (out / SETTINGS_FILE).is_file():
        raise DataError(f"refusing to write into {out}: it exists and holds no fds tune study")
    if not overwrite:
        raise DataError(
            f"{out} already holds a study; use --resume to continue it or --overwrite to replace it"
        )
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _sampler(name: str, seed: int, n_objectives: int) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    # Few startup trials: a small budget (the benchmark's ≤ half a grid) must leave TPE room.
    startup = 5 if n_objectives == 1 else 8
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def _pruner(goals: list[Objective], prune: bool) -> Any:
    import optuna

    if prune and len(goals) == 1 and goals[0].epoch_key is not None:
        return optuna.pruners.MedianPruner(
            n_startup_trials=_PRUNE_STARTUP, n_warmup_steps=_PRUNE_WARMUP
        )
    return optuna.pruners.NopPruner()  # Optuna prunes single-objective studies only


def _finished(study: Any) -> list[Any]:
    """The trials that count towards `trials`; failed ones (diverged, or interrupted) do not."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _fail_interrupted(study: Any) -> None:
    """Trials left RUNNING by a killed study will never report: mark them failed."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


# ----------------------------------------------------------------------------- trials
class _Objective:
    """One trial: suggested options → a run in trials/NNNN → the objectives' values."""

    def __init__(
        self,
        settings: dict[str, Any],
        goals: list[Objective],
        data: LoadedData,
        out: Path,
        tracker: Tracker | None,
    ) -> None:
        self.settings, self.goals, self.data, self.out = settings, goals, data, out
        self.tracker = tracker

    def __call__(self, trial: Any) -> float | list[float]:
        chosen = suggest(trial, self.settings["space"])
        run = self.out / TRIALS_DIR / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run))
        params = self.settings["params"] | chosen | {"data": self.settings["data"]}
        if self.settings.get("data_root"):
            params["data_root"] = self.settings["data_root"]
        # The trial is one tracked run: its parameters as searched, each epoch, the run's
        # figures with the objectives' values, and its files.
        with tracked_run(self.tracker, run.name, params | {"trial": trial.number}):
            hook = epoch_logger(self.tracker, self._pruning(trial))
            summary = train_run(params, run, verbose=False, on_epoch=hook)
            model = FDS.load(run / MODEL_DIR)
            seed = self.settings["seed"]
            values = TrialFigures(self.goals, model, self.data, summary, seed).values()
            if self.tracker is not None:
                figures = {
                    f"objective.{g.name}": v for g, v in zip(self.goals, values, strict=True)
                }
                self.tracker.log_metrics(summary | figures)
                self.tracker.log_artifacts(run_files(run))
        return values[0] if len(values) == 1 else values

    def _pruning(self, trial: Any) -> Callable[[dict[str, Any]], None] | None:
        key = self.goals[0].epoch_key
        if len(self.goals) != 1 or key is None or not self.settings["prune"]:
            return None

        def on_epoch(record: dict[str, Any]) -> None:
            import optuna

            if key in record:
                trial.report(float(record[key]), int(record["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned(
                        f"{key} = {record[key]:.4g} at epoch {record['epoch']}"
                    )

        return on_epoch


# ----------------------------------------------------------------------------- results
def _write_results(study: Any, goals: list[Objective], space: dict[str, Any], out: Path) -> None:
    """trials.csv; best/ (one objective) or front.csv and front.png (several); tune.json."""
    from optuna.trial import TrialState

    rows = [_trial_row(t, goals, space) for t in study.get_trials(deepcopy=False)]
    table = pd.DataFrame(rows)
    write_text(out / TRIALS_CSV, table.to_csv(index=False))
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    summary: dict[str, Any] = {
        "out": str(out),
        "study": STUDY_NAME,
        "storage": str(out / STORAGE_FILE),
        "objectives": [g.name for g in goals],
        "directions": [g.direction for g in goals],
        "trials": len(rows),
        "complete": len(complete),
        "pruned": sum(r["state"] == "PRUNED" for r in rows),
        "failed": sum(r["state"] == "FAIL" for r in rows),
        "trials_csv": str(out / TRIALS_CSV),
    }
    if complete and len(goals) == 1:
        best = study.best_trial
        _copy_run(Path(best.user_attrs["run_dir"]), out / BEST_DIR)
        summary |= {
            "best_trial": best.number,
            "best_value": best.value,
            "best_params": chosen_values(best.params, space),
            "best_run": str(out / BEST_DIR),
            "best_model": str(out / BEST_DIR / MODEL_DIR),
        }
    elif complete:
        front = [_trial_row(t, goals, space) for t in study.best_trials]
        front.sort(key=lambda r: r[goals[0].name])
        write_text(out / FRONT_CSV, pd.DataFrame(front).to_csv(index=False))
        from fds.report.front import front_png

        points = [{"number": t.number, "values": t.values} for t in complete]
        on_front = [{"number": t.number, "values": t.values} for t in study.best_trials]
        names = (goals[0].name, goals[1].name)
        directions = (goals[0].direction, goals[1].direction)
        front_png(points, on_front, names, directions, out / FRONT_PNG)
        summary |= {
            "front_size": len(front),
            "front": front,
            "front_csv": str(out / FRONT_CSV),
            "front_png": str(out / FRONT_PNG),
        }
    write_json(out / SUMMARY_FILE, summary)


def _trial_row(trial: Any, goals: list[Objective], space: dict[str, Any]) -> dict[str, Any]:
    values = trial.values or [None] * len(goals)
    params = chosen_values(trial.params, space)
    return (
        {"number": trial.number, "state": trial.state.name}
        | {g.name: v for g, v in zip(goals, values, strict=True)}
        | {f"param_{k}": v for k, v in params.items()}
        | {"run_dir": trial.user_attrs.get("run_dir")}
    )


def _copy_run(run: Path, target: Path) -> None:
    """Copy the best run to `target` beside it first, then swap, so `target` is never half a run."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    shutil.copytree(run, staging / "run", ignore=shutil.ignore_patterns("checkpoints"))
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        target.replace(old / "run")
    (staging / "run").replace(target)
    shutil.rmtree(staging)
    if old is not None:
        shutil.rmtree(old)


def load_summary(out: str | Path) -> dict[str, Any]:
    """tune.json of a finished study."""
    import json

    return json.loads((Path(out) / SUMMARY_FILE).read_text())


# ----------------------------------------------------------------------------- progress
class _StudyProgress:
    """Trials done of the total, the best value (or the front's size) and an ETA, on stderr."""

    def __init__(self, enabled: bool, study: Any, goals: list[Objective], total: int) -> None:
        self.enabled, self.study, self.goals, self.total = enabled, study, goals, total
        self.progress: Any = None
        self.task: Any = None
        self.started = time.perf_counter()

    def __enter__(self) -> _StudyProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[bold]trials"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[best]}"),
                console=Console(file=sys.stderr),
            )
            self.progress.start()
            done = len(_finished(self.study))
            self.task = self.progress.add_task(
                "trials", total=self.total, completed=done, best=self._best()
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, study: Any, trial: Any) -> None:
        if self.progress is not None:
            self.progress.update(self.task, advance=1, best=self._best())

    def _best(self) -> str:
        from optuna.trial import TrialState

        if not self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return "no finished trial yet"
        if len(self.goals) == 1:
            return f"best {self.goals[0].name} = {self.study.best_value:.4g}"
        return f"front: {len(self.study.best_trials)} non-dominated"
