"""`fds quickstart`: train the `fds` preset on built-in sprites with their shape as the sensitive
factor, evaluate the run (with the leakage of each latent block), and write its HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fds.config import load_yaml
from fds.errors import ConfigError, DataError
from fds.workflows.evaluate import evaluate_path
from fds.workflows.report import write_report
from fds.workflows.train import QUICKSTART, train_run

# What the public block should still be good for: the sprite's horizontal position.
UTILITY_TARGET = "factor:x"


def run_quickstart(
    out: str | Path, *, epochs: int | None = None, overwrite: bool = False, verbose: bool = True
) -> dict[str, Any]:
    """Train the quickstart model into `out`, then write evaluation.json and report.html; returns
    the training summary plus their paths.

    `out` must be missing or empty, or hold an earlier quickstart run, which `overwrite` replaces
    once the new model has trained (anything else there is never touched)."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        if not is_quickstart_run(out):
            raise DataError(
                f"refusing to write into {out}: it is not empty and not an earlier quickstart "
                "run; choose another --out"
            )
        if not overwrite:
            raise DataError(
                f"{out} holds an earlier quickstart run; pass --overwrite to replace it "
                "(its saved probes and privacy ledger included)"
            )
    params = QUICKSTART | ({"epochs": epochs} if epochs is not None else {})
    summary = train_run(params, out, overwrite=overwrite, verbose=verbose)
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


def is_quickstart_run(run_dir: Path) -> bool:
    """Whether `run_dir` is a run of the quickstart's model (its data, preset and sensitive
    factor), judged from its config.yaml."""
    try:
        config = load_yaml(run_dir / "config.yaml")
    except ConfigError:
        return False
    return all(config.get(key) == QUICKSTART[key] for key in ("data", "preset", "sensitive"))
