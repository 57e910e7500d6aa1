"""Data and training commands: datasets, train, quickstart, encode, decode, sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fds.cli.common import (
    DataRootOpt,
    JsonFlag,
    ModelOpt,
    OverwriteOpt,
    emit,
    err_console,
    new_typer,
    out_console,
    print_json,
)

app = new_typer()

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@app.command()
def datasets(as_json: JsonFlag = False) -> None:
    """List the built-in data sets.

    Example: `fds datasets --json`
    """
    from fds.data.datasets import available_datasets

    items = available_datasets()
    if as_json:
        print_json({"datasets": items})
        return
    table = Table("name", "kind", "available", "description")
    for item in items:
        table.add_row(
            item["name"],
            item["kind"],
            "yes" if item["available"] else f"no: {item['hint']}",
            item["description"],
        )
    out_console.print(table)


@app.command()
def train(
    run: Annotated[
        Path | None, typer.Argument(help="Run directory (same as --out).", show_default=False)
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="CSV, Parquet, .npy, IDX, PNG folder or built-in name."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML with FDS parameters (and data:).")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help="ae, dae, sparse_ae, vae, beta_vae, beta_tcvae, factor_vae, fds."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Passes over the training rows.")] = None,
    latent_dim: Annotated[
        int | None, typer.Option("--latent-dim", help="Number of latent factors.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for splits, initialisation and noise.")
    ] = None,
    data_root: DataRootOpt = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option(
            "--sensitive",
            help="Sensitive attribute held by the private block: a column, `label` or "
            "`factor:NAME` (repeat for several).",
        ),
    ] = None,
    private_dim: Annotated[
        int | None, typer.Option("--private-dim", help="Size of the private latent block.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run directory to create.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in RUN from its last checkpoint.")
    ] = False,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Train an FDS and write a run directory (config.yaml, metrics.jsonl, checkpoints/, model/, PNGs).

    Examples:

    `fds train --data census --preset vae --epochs 30 --out runs/census`

    `fds train --data table.csv --config fds.yaml --out runs/mine`

    `fds train --resume runs/mine`   (after a crash or Ctrl-C: continues bit for bit)

    `fds train --data census --preset fds --sensitive sex --out runs/key`   (public/private blocks)
    """
    from fds.config import load_yaml
    from fds.workflows.train import train_run

    target = out or run
    if target is None:
        raise typer.BadParameter("give the run directory with --out RUN (or as RUN)")
    params: dict[str, Any] = load_yaml(config) if config else {}
    cli = {
        "data": data,
        "data_root": data_root,
        "preset": preset,
        "epochs": epochs,
        "latent_dim": latent_dim,
        "seed": seed,
        "sensitive": tuple(sensitive) if sensitive else None,
        "private_dim": private_dim,
    }
    params |= {k: v for k, v in cli.items() if v is not None}
    try:
        summary = train_run(params, target, resume=resume, overwrite=overwrite, verbose=not quiet)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            "a checkpoint was saved; continue with `fds train --resume RUN`"
        ) from None
    emit(summary, as_json, "FDS training run")


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path(
        "runs/quickstart"
    ),
    epochs: Annotated[
        int | None,
        typer.Option(help="Passes over the data.", show_default="the quickstart's"),
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Train the `fds` preset on the built-in `shapes` sprites (shape = the sensitive factor, held
    by the private block), evaluate it (with the leakage of each block) and write its report.

    Writes a complete run directory (model, metrics, PNGs, evaluation.json, report.html) and prints
    the report's path. Replaces an earlier quickstart run in the same directory.
    Example: `fds quickstart --out runs/demo`
    """
    from fds.workflows.quickstart import run_quickstart

    if (out / "config.yaml").is_file() and not as_json:
        err_console.print(f"replacing the earlier run in {out}")
    summary = run_quickstart(out, epochs=epochs, verbose=not quiet)
    emit(summary, as_json, "FDS quickstart: the key (fds preset) on shapes")


@app.command()
def encode(
    model: ModelOpt,
    data: Annotated[str, typer.Option("--data", "-d", help="Rows or images to encode.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Latents file: .npy or .parquet.")],
    sample: Annotated[
        bool, typer.Option("--sample", help="Draw z ~ q(z|x) instead of the posterior mean.")
    ] = False,
    part: Annotated[
        str,
        typer.Option(
            "--part", help="all, or with a private block: public (shareable) or private (the key)."
        ),
    ] = "all",
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Encode data into latent factors.

    Example: `fds encode --model runs/census --data census.csv --out latents.parquet`

    Example: `fds encode --model runs/key --data census --part public --out public.npy`
    """
    from fds.data.files import read_data, write_output
    from fds.estimator import FDS

    fitted = FDS.load(model)
    codes = fitted.transform(read_data(data).X, sample=sample, part=part)
    write_output(codes, out, overwrite=overwrite)
    emit({"out": str(out), "rows": len(codes), "latent_dim": codes.shape[1]}, as_json, "encoded")


@app.command()
def decode(
    model: ModelOpt,
    latents: Annotated[
        Path, typer.Option("--latents", "-l", help="Latents: .npy, .parquet or .csv.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output: .csv/.parquet (tables) or .npy.")
    ],
    private: Annotated[
        str | None,
        typer.Option(
            "--private",
            help="Private blocks to decode public latents with: a latents FILE (one row, or one "
            "per row), `prior` (keys drawn per sensitive group: the attributes follow their "
            "marginal; the default for public latents) or `neutral` (the mean key for every row).",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Decode latent factors back into rows or images (the decoder mean).

    Example: `fds decode --model runs/census --latents latents.parquet --out rebuilt.csv`

    Example: `fds decode --model runs/key --latents public.npy --private prior --out hidden.csv`
    """
    from fds.data.files import read_latents, write_output
    from fds.estimator import FDS

    fitted = FDS.load(model)
    key = private if private in (None, "prior", "neutral") else read_latents(private)
    decoded = fitted.inverse_transform(read_latents(latents), private=key)
    write_output(decoded, out, overwrite=overwrite)
    emit({"out": str(out), "rows": len(decoded)}, as_json, "decoded")


@app.command()
def sample(
    model: ModelOpt,
    n: Annotated[int, typer.Option("-n", "--n", help="How many rows or images.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output: .csv/.parquet (tables) or .npy.")
    ],
    seed: Annotated[int, typer.Option(help="Seed of the prior draws.")] = 0,
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate new rows or images from the prior.

    Example: `fds sample --model runs/census -n 1000 --out synthetic.csv`
    """
    from fds.data.files import write_output
    from fds.estimator import FDS

    samples = FDS.load(model).sample(n, seed=seed)
    write_output(samples, out, overwrite=overwrite)
    emit({"out": str(out), "rows": len(samples)}, as_json, "sampled")
