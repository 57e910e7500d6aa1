"""Privacy commands: DP release, the privacy ledger, attacks and the privacy-utility curve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fds.cli.common import (
    DataRootOpt,
    JsonFlag,
    OverwriteOpt,
    RunArg,
    RunDataOpt,
    RunModelOpt,
    SampleSeedOpt,
    emit,
    err_console,
    new_typer,
    out_console,
    print_json,
    run_of,
)

app = new_typer()


@app.command()
def release(
    run: RunArg = None,
    model: RunModelOpt = None,
    data: Annotated[str, typer.Option("--data", "-d", help="Rows or images to release.")] = ...,
    epsilon: Annotated[float, typer.Option(help="ε of this release (> 0).")] = ...,
    delta: Annotated[float, typer.Option(help="δ of this release, in (0, 1).")] = 1e-5,
    clip: Annotated[
        float | None,
        typer.Option(help="L2 norm C each latent row is clipped to (default √latent_dim)."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Noisy latents: .npy or .parquet.")
    ] = ...,
    seed: Annotated[
        int | None, typer.Option(help="Noise seed, for tests only: a known seed voids the DP.")
    ] = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Release latents with differential privacy: clip each row to norm C, add analytic Gaussian noise.

    Writes FILE and FILE.json (ε, δ, C, σ, what is covered) and charges the run's privacy ledger;
    a release over the ledger's budget is refused before anything is written (exit 2).

    Example: `fds release runs/census --data census.csv --epsilon 1 --delta 1e-5 --out z.npy`
    """
    from fds.workflows.release import release_run

    summary = release_run(
        run_of(model, run),
        data,
        out,
        epsilon=epsilon,
        delta=delta,
        clip=clip,
        seed=seed,
        overwrite=overwrite,
    )
    emit(summary, as_json, "DP release")


ledger_app = new_typer(
    help="The privacy ledger of a run: every DP training run and release, composed.",
)


@ledger_app.command("show")
def ledger_show_command(
    run: RunArg = None, model: RunModelOpt = None, as_json: JsonFlag = False
) -> None:
    """Show the ledger: budget, δ, and per data set each entry and the composed total ε.

    Example: `fds ledger show runs/census --json`
    """
    from fds.privacy.ledger import Ledger, ledger_path

    summary = Ledger.load(ledger_path(run_of(model, run))).summary()
    if as_json:
        print_json(summary)
        return
    out_console.print(
        f"{summary['ledger']}: budget ε = {summary['budget_epsilon']}, δ = {summary['delta']:g} "
        f"({summary['accountant']} accountant)"
    )
    for item in summary["datasets"]:
        table = Table(
            "kind",
            "ε",
            "δ",
            "noise multiplier",
            "sample rate",
            "steps",
            title=f"{item['name']}: total ε = {item['total_epsilon']:.4g}",
        )
        for e in item["entries"]:
            table.add_row(
                e["kind"],
                f"{e['epsilon']:.4g}",
                f"{e['delta']:g}",
                f"{e['noise_multiplier']:.4g}",
                f"{e['sample_rate']:.4g}",
                str(e["steps"]),
            )
        out_console.print(table)


@ledger_app.command("set-budget")
def ledger_set_budget_command(
    run: RunArg = None,
    model: RunModelOpt = None,
    epsilon: Annotated[
        float | None, typer.Option(help="Total ε allowed per data set (omit: no budget).")
    ] = None,
    delta: Annotated[
        float | None, typer.Option(help="δ at which totals are computed (omit: smallest entry δ).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Set the total ε budget (and δ) of a run's ledger; later releases over it are refused.

    Example: `fds ledger set-budget runs/census --epsilon 4 --delta 1e-5`
    """
    from fds.privacy.ledger import Ledger, ledger_path

    with Ledger.transaction(ledger_path(run_of(model, run))) as ledger:
        ledger.set_budget(epsilon, delta)
        ledger.save()
    emit(
        {"ledger": str(ledger.path), "budget_epsilon": epsilon, "delta": ledger.delta()},
        as_json,
        "privacy ledger",
    )


@app.command()
def attack(
    run: RunArg = None,
    model: RunModelOpt = None,
    data: RunDataOpt = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            "-k",
            help="membership, synthetic, inversion, attribute or audit; repeat for several "
            "(default: all but audit; attribute only when there are sensitive attributes).",
            show_default=False,
        ),
    ] = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option(
            "--sensitive",
            help="Attribute to infer from the shared latents: COLUMN, label or factor:NAME "
            "(default: the model's own sensitive attributes); repeatable.",
            show_default=False,
        ),
    ] = None,
    n_rows: Annotated[
        int, typer.Option("--n-rows", help="At most this many member and non-member candidates.")
    ] = 1000,
    noise: Annotated[
        float,
        typer.Option("--noise", help="Std of Gaussian noise on the latents the inverter sees."),
    ] = 0.0,
    utility_target: Annotated[
        str | None,
        typer.Option(
            "--utility-target",
            help="With --kind attribute: also report utility (R² or accuracy) for this target "
            "and the necessary leakage (the best attacker given only the target).",
            show_default=False,
        ),
    ] = None,
    data_root: DataRootOpt = None,
    seed: SampleSeedOpt = 0,
    as_json: JsonFlag = False,
) -> None:
    """Attack a trained run and merge the results into RUN/attacks.json.

    **membership**: who was in the training set? loss (ELBO) threshold, reconstruction distance and
    Monte Carlo attacks (Hilprecht et al. 2019) on training rows vs held-out rows: AUC, TPR at 1% FPR.
    **synthetic**: distance to closest record and DOMIAS on the model's samples.
    **inversion**: an attacker with held-out rows and their latents trains its own decoder; its
    error on training rows is printed beside the owner's.
    **attribute**: logistic regression, gradient boosting, an MLP ensemble and a random forest
    fitted on every training row's shared latents (the public block of an `fds` model) and scored
    on the held-out rows: accuracy beside the majority, AUC, and a lower-bound flag when the learning curve still
    rises; the same figures as `fds evaluate` (`--n-rows` does not apply to this kind). A fusion
    model (attribute inference only) is attacked on its shared block encoded from all modalities
    and from each one alone (`public_from.image`, …).
    **audit** (DP runs only): the run's DP training is repeated once with held-out rows as canaries,
    each included with probability ½ (Steinke, Nasr & Jagielski 2023); the lower bound on ε it proves
    is printed beside the accountant's ε.

    Example: `fds attack runs/census --kind membership --kind inversion`,
    `fds attack runs/census --kind attribute --sensitive sex`, `fds attack runs/dp --kind audit`
    """
    from fds.workflows.attack import attack_path, headline

    target_run = run_of(model, run)
    results, path = attack_path(
        target_run,
        data,
        tuple(kind) if kind else None,
        data_root=data_root,
        n_rows=n_rows,
        noise_std=noise,
        seed=seed,
        sensitive=tuple(sensitive or ()),
        utility_target=utility_target,
        show_progress=not as_json,
    )
    if as_json:
        print_json({"attacks_json": str(path)} | results)
        return
    emit(headline(results), False, "FDS privacy attacks")
    out_console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command("privacy-curve")
def privacy_curve_command(
    run: RunArg = None,
    model: RunModelOpt = None,
    target: Annotated[
        str,
        typer.Option(
            "--target",
            "-t",
            help="What utility predicts: COLUMN, label or factor:NAME.",
            show_default=False,
        ),
    ] = ...,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="The training data; default: the run's config."),
    ] = None,
    sensitive: Annotated[
        str | None,
        typer.Option(
            "--sensitive",
            help="Attribute the attacker infers (default: the model's own sensitive attribute).",
            show_default=False,
        ),
    ] = None,
    epsilons: Annotated[
        str, typer.Option("--epsilons", help="Comma-separated ε values; inf = no DP.")
    ] = "0.5,1,2,4,8,inf",
    mode: Annotated[
        str, typer.Option("--mode", help="training (DP-SGD), release (DP latents) or both.")
    ] = "both",
    n_rows: Annotated[
        int, typer.Option("--n-rows", help="At most this many fit and held-out rows.")
    ] = 1000,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            help="Epochs of each DP re-training (default: the run's).",
            show_default=False,
        ),
    ] = None,
    data_root: DataRootOpt = None,
    seed: SampleSeedOpt = 0,
    as_json: JsonFlag = False,
) -> None:
    """Utility and attacker success over ε, for DP training and DP release; writes
    RUN/privacy_curve.json (shown by `fds report`).

    An experiment to choose ε: it reads the data, so its outputs are not DP and nothing is charged
    to the run's privacy ledger (prefer public or synthetic look-alike data).

    Example: `fds privacy-curve runs/census --target education --sensitive sex --epsilons 1,8,inf`
    """
    from fds.workflows.privacy_curve import HEADERS, NOTE, curve_path, parse_epsilons, summary_rows

    values = parse_epsilons(epsilons)
    target_run = run_of(model, run)
    result, path = curve_path(
        target_run,
        data,
        target,
        data_root=data_root,
        sensitive=sensitive,
        epsilons=values,
        mode=mode,
        n_rows=n_rows,
        epochs=epochs,
        seed=seed,
        show_progress=not as_json,
    )
    if as_json:
        print_json({"privacy_curve_json": str(path)} | result)
        return
    table = Table(title=f"FDS privacy-utility curve: {result['target']} / {result['sensitive']}")
    for header in HEADERS:
        table.add_column(header)
    for row in summary_rows(result):
        table.add_row(*row)
    out_console.print(table)
    err_console.print(f"note: {NOTE}", highlight=False, soft_wrap=True)
    out_console.print(f"wrote {path}", highlight=False, soft_wrap=True)
