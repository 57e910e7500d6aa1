"""Evaluation commands: `fds evaluate` (RUN/evaluation.json) and `fds report` (RUN/report.html)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fds.cli.common import (
    DataRootOpt,
    JsonFlag,
    RunArg,
    RunDataOpt,
    RunModelOpt,
    SampleSeedOpt,
    ThreadsOpt,
    emit,
    err_console,
    labelled,
    new_typer,
    out_console,
    print_json,
    run_of,
)

app = new_typer()


@app.command()
def evaluate(
    run: RunArg = None,
    model: RunModelOpt = None,
    data: RunDataOpt = None,
    iwae_k: Annotated[
        int, typer.Option("--iwae-k", help="Importance samples for the IWAE bound.")
    ] = 100,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Fewer rows and samples and cheap leakage attackers: a quick preview whose "
            "leakage figures are lower bounds.",
        ),
    ] = False,
    target: Annotated[
        str | None,
        typer.Option("--target", help="Table column to predict for TSTR (default: the labels)."),
    ] = None,
    factors: Annotated[
        Path | None,
        typer.Option("--factors", help="CSV/Parquet of ground-truth factors, one row per sample."),
    ] = None,
    data_root: DataRootOpt = None,
    utility_target: Annotated[
        str | None,
        typer.Option(
            "--utility-target",
            help="With a private block: a column, `label` or `factor:NAME` the public block "
            "should still predict; its utility (R² or accuracy) and the necessary leakage (the "
            "best attacker given only this target) are reported beside the leakage.",
        ),
    ] = None,
    seed: SampleSeedOpt = 0,
    threads: ThreadsOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a trained model on its held-out rows and write RUN/evaluation.json.

    Reconstruction, ELBO and IWAE, latent health, independence, sparsity, disentanglement (when
    factors are known) and the quality of synthetic data (tables: column shapes, pair trends over
    all pairs beside SDMetrics' thresholded figure, TSTR, values outside the training support,
    missing-rate error, category coverage, precision kept, DCR share over several reference
    subsets; docs/synthetic-quality.md); for a model with a private block, the
    leakage of each sensitive attribute from the public and private blocks (best attacker's
    accuracy beside the majority, AUC, learning curve; a fusion model's public block encoded from
    all modalities and from each one alone). With --json the whole report is printed.

    Example: `fds evaluate --model runs/quickstart --data shapes`

    Example: `fds evaluate --model runs/key --utility-target high_income`
    """
    from fds.workflows.evaluate import evaluate_path, headline

    target_run = run_of(model, run)
    report, path = evaluate_path(
        target_run,
        data,
        data_root=data_root,
        factors_path=factors,
        iwae_k=iwae_k,
        fast=fast,
        seed=seed,
        target=target,
        utility_target=utility_target,
        threads=threads,
    )
    if as_json:
        print_json({"evaluation_json": str(path)} | report)
        return
    for warning in (report.get("latent_health") or {}).get("warnings", []):
        err_console.print(labelled("warning:", "yellow", warning), highlight=False)
    emit(headline(report), False, "FDS evaluation")
    out_console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command()
def report(
    run: RunArg = None,
    model: RunModelOpt = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", "-d", help="Data to draw the figures from; default: the run's config."
        ),
    ] = None,
    seed: SampleSeedOpt = 0,
    as_json: JsonFlag = False,
) -> None:
    """Write RUN/report.html: one self-contained page (training curves, reconstructions, samples,
    traversals, latent maps, factor × latent MI, probes, evaluation.json) that opens offline.

    Example: `fds report --model runs/quickstart`
    """
    from fds.data.files import read_data
    from fds.workflows.report import write_report

    target_run = run_of(model, run)
    loaded = read_data(data) if data else None
    path = write_report(target_run, data=loaded, seed=seed)
    emit({"report": str(path)}, as_json, "FDS report")
