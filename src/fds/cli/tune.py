"""`fds tune`: search FDS options with Optuna; one objective gives the best run, several the
privacy–utility (or any) trade-off front."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fds.cli.common import DataRootOpt, JsonFlag, LogOpt, OverwriteOpt, emit, new_typer, out_console

app = new_typer()


@app.command()
def tune(
    out: Annotated[Path, typer.Option("--out", "-o", help="Tune directory to create.")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="CSV, Parquet, .npy, IDX, PNG folder or built-in name."),
    ] = None,
    preset: Annotated[str, typer.Option(help="The preset every trial trains.")] = "vae",
    space: Annotated[
        Path | None,
        typer.Option(help="Search space YAML (default: the preset's, see the docs)."),
    ] = None,
    trials: Annotated[int, typer.Option(help="Trials in total (with --resume too).")] = 50,
    objective: Annotated[
        list[str] | None,
        typer.Option(
            "--objective",
            help="elbo (default), loss, utility:COLUMN, leakage[:ATTRIBUTE] or a number of "
            "`fds evaluate`; repeat for a front.",
            show_default=False,
        ),
    ] = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="Sensitive attribute (repeat for several)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML with FDS options every trial shares."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of every trial.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of every trial.")] = 0,
    sampler: Annotated[str, typer.Option(help="tpe, random or nsga2.")] = "tpe",
    prune: Annotated[
        bool, typer.Option("--prune/--no-prune", help="Stop bad trials at epoch boundaries.")
    ] = True,
    data_root: DataRootOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the study in --out with its settings.")
    ] = False,
    overwrite: OverwriteOpt = False,
    log: LogOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Tune FDS options with Optuna (TPE, pruning); every trial is a run under OUT/trials/.

    Examples:

    `fds tune --data census --preset vae --trials 50 --epochs 10 --out tune/`

    `fds tune --data table.csv --space space.yaml --objective reconstruction_mse --out tune/`

    `fds tune --data census --preset fds --sensitive sex --objective utility:education
    --objective leakage --trials 24 --out front/`   (the privacy–utility front)

    `fds tune --resume --out tune/ --trials 80`   (continue, up to 80 trials in total)
    """
    from fds.config import load_yaml
    from fds.errors import ConfigError
    from fds.tracking import open_tracker
    from fds.workflows.tune import load_summary
    from fds.workflows.tune import tune as run_tune

    given = {"--data": data, "--space": space, "--objective": objective, "--sensitive": sensitive}
    given |= {"--config": config, "--epochs": epochs}
    if resume and any(value for value in given.values()):
        names = ", ".join(name for name, value in given.items() if value)
        raise ConfigError(
            f"--resume continues the study with the settings in {out}/tune.yaml; drop {names}"
        )
    params = load_yaml(config) if config else None
    if params:
        data = data or params.pop("data", None)
        data_root = data_root or params.pop("data_root", None)
    tracker = open_tracker(log, experiment="fds-tune")
    try:
        run_tune(
            data,
            out=out,
            preset=preset,
            space=space,
            trials=trials,
            objectives=objective or ["elbo"],
            sensitive=sensitive or [],
            params=params,
            epochs=epochs,
            seed=seed,
            sampler=sampler,
            prune=prune,
            data_root=data_root,
            resume=resume,
            overwrite=overwrite,
            verbose=not (quiet or as_json),
            tracker=tracker,
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"the study in {out} keeps every finished trial; continue with "
            f"`fds tune --resume --out {out}`"
        ) from None
    summary = load_summary(out)
    front = summary.pop("front", None)
    if as_json:
        emit(summary | ({"front": front} if front is not None else {}), True, "")
        return
    if front:  # the trials' parameters are in front.csv; here what a point is and where it is
        columns = ["number", *summary["objectives"], "run_dir"]
        table = Table(*columns, title="non-dominated trials (the front)")
        for row in front:
            table.add_row(*(_cell(row[c]) for c in columns))
        out_console.print(table)
    summary["best_params"] = str(summary.get("best_params", "")) or None
    emit({k: v for k, v in summary.items() if v is not None}, False, "fds tune")


def _cell(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
