"""`fds quickstart`: train on built-in data, evaluate the run, and write its HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fds.workflows.evaluate import evaluate_path
from fds.workflows.report import write_report
from fds.workflows.train import QUICKSTART, train_run


def run_quickstart(
    out: str | Path, *, epochs: int | None = None, verbose: bool = True
) -> dict[str, Any]:
    """Train the quickstart model into `out` (replacing an earlier quickstart run there), then
    write evaluation.json and report.html; returns the training summary plus their paths."""
    params = QUICKSTART | ({"epochs": epochs} if epochs is not None else {})
    summary = train_run(params, out, overwrite=True, verbose=verbose)
    evaluation, evaluation_path = evaluate_path(summary["model_dir"])
    summary["active_units"] = evaluation["latent_health"]["active_units"]
    summary["mig"] = (evaluation.get("disentanglement") or {}).get("mig")
    summary["evaluation"] = str(evaluation_path)
    summary["report"] = str(write_report(Path(summary["run_dir"])))
    return summary
