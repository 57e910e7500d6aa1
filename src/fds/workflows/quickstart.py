"""`fds quickstart`: train the `fds` preset on built-in sprites with their shape as the sensitive
factor, evaluate the run (with the leakage of each latent block), and write its HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fds.workflows.evaluate import evaluate_path
from fds.workflows.report import write_report
from fds.workflows.train import QUICKSTART, train_run

# What the public block should still be good for: the sprite's horizontal position.
UTILITY_TARGET = "factor:x"


def run_quickstart(
    out: str | Path, *, epochs: int | None = None, verbose: bool = True
) -> dict[str, Any]:
    """Train the quickstart model into `out` (replacing an earlier quickstart run there), then
    write evaluation.json and report.html; returns the training summary plus their paths."""
    params = QUICKSTART | ({"epochs": epochs} if epochs is not None else {})
    summary = train_run(params, out, overwrite=True, verbose=verbose)
    evaluation, evaluation_path = evaluate_path(summary["model_dir"], utility_target=UTILITY_TARGET)
    summary["active_units"] = evaluation["latent_health"]["active_units"]
    summary["mig"] = (evaluation.get("disentanglement") or {}).get("mig")
    leakage = evaluation.get("leakage") or {}
    shape = (leakage.get("attributes") or {}).get("factor:shape")
    if shape:
        summary["shape_public_best_accuracy"] = shape["public"]["best_accuracy"]
        summary["shape_public_auc"] = shape["public"]["best_auc"]
        summary["shape_majority"] = shape["public"]["majority"]
        summary["shape_public_lower_bound"] = shape["public"]["lower_bound"]
        summary["shape_necessary_accuracy"] = shape.get("necessary_accuracy")
        summary["shape_private_best_accuracy"] = shape["private"]["best_accuracy"]
    if leakage.get("utility"):
        summary["utility_metric"] = leakage["utility"]["utility_metric"]
        summary["utility"] = leakage["utility"]["utility"]
    summary["evaluation"] = str(evaluation_path)
    summary["report"] = str(write_report(Path(summary["run_dir"])))
    return summary
