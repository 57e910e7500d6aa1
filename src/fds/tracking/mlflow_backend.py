"""MLflow backend: params, per-epoch metrics, final figures and the run's files as artifacts.

`--log mlflow` writes to a local folder, `mlruns/` by default: MLflow ≥ 3.7 keeps its plain-file
store in maintenance mode (it refuses to open one), so the folder holds a SQLite database
(`mlruns/mlflow.db`) and the artifacts (`mlruns/artifacts/`); `mlflow ui --backend-store-uri
sqlite:///mlruns/mlflow.db` shows it. `--log mlflow=URI` with a scheme (`http://…`,
`sqlite:///…`, `file:…`) goes to that tracking server or store instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fds.tracking.base import flat_params, numeric

__all__ = ["MLflowTracker", "tracking_uri"]

_BATCH = 100  # MLflow's limit of params per log_batch call


def tracking_uri(where: str) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment) of `--log mlflow=WHERE`."""
    if "://" in where or where.startswith("file:"):
        return where, None
    folder = Path(where).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


class MLflowTracker:
    """Runs in one MLflow experiment, through a client (no global active run to leak)."""

    def __init__(self, where: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # schema migrations log at INFO on first use
            logging.getLogger(name).setLevel(logging.WARNING)
        self.uri, artifacts = tracking_uri(where)
        self.client = MlflowClient(self.uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = (
            found.experiment_id
            if found is not None
            else self.client.create_experiment(experiment, artifact_location=artifacts)
        )
        self.run_id: str | None = None

    def start_run(self, name: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        run = self.client.create_run(self.experiment_id, run_name=name)
        self.run_id = run.info.run_id
        items = [Param(k, v) for k, v in flat_params(params).items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, v, now, step or 0) for k, v in numeric(metrics).items()]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self._run(), metrics=items[i : i + _BATCH])

    def log_artifacts(self, paths: Sequence[Path]) -> None:
        for path in paths:
            if path.is_dir():
                self.client.log_artifacts(self._run(), str(path), artifact_path=path.name)
            elif path.is_file():
                self.client.log_artifact(self._run(), str(path))

    def end_run(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)
            self.run_id = None

    def _run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("MLflowTracker: log_* called outside start_run/end_run")
        return self.run_id
