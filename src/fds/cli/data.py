"""Data and training commands: datasets, train, quickstart, encode, decode, sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fds.cli.common import (
    DataRootOpt,
    JsonFlag,
    LogOpt,
    ModelOpt,
    NoiseSeedOpt,
    OverwriteOpt,
    ThreadsOpt,
    emit,
    new_typer,
    out_console,
    print_json,
)

app = new_typer()

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
StreamOpt = Annotated[
    bool | None,
    typer.Option(
        "--stream/--no-stream",
        help="Read the input piece by piece and write --out (.parquet) one row group at a time "
        "(docs/scale.md).",
        show_default="a folder of Parquet files, or a table file over 512 MiB",
    ),
]


@app.command()
def datasets(
    action: Annotated[
        str | None,
        typer.Argument(help="`make` writes a generated table (see NAME).", show_default=False),
    ] = None,
    name: Annotated[
        str | None,
        typer.Argument(help="With make: big-table (20 mixed columns).", show_default=False),
    ] = None,
    rows: Annotated[
        int, typer.Option("--rows", min=1, help="With make: how many rows.")
    ] = 1_000_000,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="With make: the .parquet file to write.")
    ] = None,
    seed: Annotated[int, typer.Option(help="With make: the generator's seed.")] = 0,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """List the built-in data sets, or write a generated table too large to hold in memory.

    Example: `fds datasets --json`

    Example: `fds datasets make big-table --rows 10000000 --out big.parquet`   (written in
    row groups of 65,536 rows, never whole in memory; docs/scale.md)
    """
    if action is not None:
        _make_table(action, name, rows, out, seed, overwrite, quiet, as_json)
        return
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


def _make_table(
    action: str,
    name: str | None,
    rows: int,
    out: Path | None,
    seed: int,
    overwrite: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """`fds datasets make big-table --rows N --out FILE.parquet`."""
    from fds.data.datasets.big_table import BIG_TABLE_COLUMNS, big_table_pieces
    from fds.data.files import check_parquet_output, write_parquet_pieces
    from fds.training.progress import RowProgress

    if action != "make" or name != "big-table":
        raise typer.BadParameter(
            f"unknown action {' '.join(filter(None, (action, name)))!r}; "
            "use `fds datasets make big-table --rows N --out FILE.parquet`"
        )
    if out is None:
        raise typer.BadParameter("give the file to write with --out FILE.parquet")
    check_parquet_output(out, overwrite)
    with RowProgress(not quiet, "big-table", rows) as progress:

        def counted() -> Any:
            for piece in big_table_pieces(rows, seed):
                yield piece
                progress.advance(len(piece))

        written = write_parquet_pieces(counted(), out, overwrite=overwrite)
    summary = {"out": str(out), "rows": written, "columns": BIG_TABLE_COLUMNS, "seed": seed}
    emit(summary, as_json, "big-table written")


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
        typer.Option(
            help="ae, dae, sparse_ae, vae, beta_vae, beta_tcvae, factor_vae, vae_gan, fds."
        ),
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
    mmd_given: Annotated[
        list[str] | None,
        typer.Option(
            "--mmd-given",
            help="A column the public block keeps (a utility target): the MMD hides the "
            "sensitive attributes only beyond what it reveals (repeat for several).",
            show_default=False,
        ),
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option(
            "--metadata",
            help="Metadata file (`fds metadata detect`): its kinds, bounds, categories and "
            "constraints are laid over the config's.",
            show_default=False,
        ),
    ] = None,
    missing: Annotated[
        str | None,
        typer.Option(
            help="Missing values: model (learned, samples keep the missing rates), impute "
            "(median/mode), drop (rows) or error.",
            show_default="model",
        ),
    ] = None,
    fusion: Annotated[
        str | None,
        typer.Option(help="Multimodal data: poe, moe, mopoe (default) or mmvae_plus."),
    ] = None,
    missing_rate: Annotated[
        float | None,
        typer.Option("--missing-rate", help="Multimodal data: share of modalities hidden."),
    ] = None,
    modalities: Annotated[
        str | None,
        typer.Option(
            help="Columns holding each modality: image=COL (PNG paths), text=COL, audio=COL "
            "(WAV paths), table=rest|COL+COL.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run directory to create.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in RUN from its last checkpoint.")
    ] = False,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Read the table piece by piece, never whole (Parquet file or folder, CSV; "
            "docs/scale.md).",
            show_default="a folder of Parquet files, or a table file over 512 MiB",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    threads: ThreadsOpt = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="auto (CUDA when available), cpu or cuda; under torchrun NCCL on CUDA, else gloo.",
            show_default="auto",
        ),
    ] = None,
    log: LogOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Train an FDS and write a run directory (config.yaml, metrics.jsonl, checkpoints/, model/, PNGs).

    Examples:

    `fds train --data census --preset vae --epochs 30 --out runs/census`

    `fds train --data table.csv --config fds.yaml --out runs/mine`

    `fds train --resume runs/mine`   (after a crash or Ctrl-C: continues bit for bit)

    `fds train --data census --preset fds --sensitive sex --out runs/key`   (public/private blocks)

    `fds train --data census --preset fds --sensitive sex --mmd-given income --out runs/k`
    (the public block keeps income and reveals sex no more than income does)

    `fds train --data table.csv --metadata meta.json --out runs/mine`   (kinds, constraints)

    `fds train --data census --epochs 10 --out runs/c --log mlflow`   (tracked in ./mlruns)

    `fds train --data table.csv --missing impute --out runs/filled`   (no NaN in samples)

    `fds train --data shapes-mm --fusion mmvae_plus --missing-rate 0.5 --out runs/mm`

    `fds train --data items.csv --modalities image=photo,text=description,table=rest --out runs/i`
    (image, caption, sound and table of each record in one code; docs/multimodal.md)

    `fds train --data shapes-mm --fusion moe --preset fds --sensitive factor:shape --out runs/k`
    (a key on the fused code: the shape in the private block, encoded from the shape alone)

    `torchrun --nproc-per-node 2 -m fds train --data census --out runs/ddp`   (one model, two
    processes, DistributedDataParallel; rank 0 writes the run and prints; docs/scale.md)

    `fds train --data parts/ --epochs 1 --out runs/big`   (a folder of Parquet files, streamed)
    """
    from fds.config import load_yaml
    from fds.data.multimodal.columns import parse_modalities
    from fds.tracking import open_tracker
    from fds.training.distributed import env_rank
    from fds.workflows.train import train_run

    target = out or run
    if target is None:
        raise typer.BadParameter("give the run directory with --out RUN (or as RUN)")
    if metadata is not None and resume:
        raise typer.BadParameter("--metadata sets up a new run; --resume reads the run's own")
    params: dict[str, Any] = load_yaml(config) if config else {}
    if metadata is not None:
        from fds.data.metadata import read_metadata, with_metadata

        params = with_metadata(params, read_metadata(metadata))
    cli = {
        "data": data,
        "data_root": data_root,
        "preset": preset,
        "epochs": epochs,
        "latent_dim": latent_dim,
        "seed": seed,
        "sensitive": tuple(sensitive) if sensitive else None,
        "private_dim": private_dim,
        "mmd_given": tuple(mmd_given) if mmd_given else None,
        "threads": threads,
        "device": device,
        "missing": missing,
        "fusion": fusion,
        "missing_rate": missing_rate,
        "modalities": parse_modalities(modalities) if modalities else None,
        "stream": stream,
    }
    params |= {k: v for k, v in cli.items() if v is not None}
    # Ctrl-C: train_run's KeyboardInterrupt says what is on disk and how to go on
    tracker = open_tracker(log)  # a missing package fails before anything trains
    summary = train_run(
        params, target, resume=resume, overwrite=overwrite, verbose=not quiet, tracker=tracker
    )
    if env_rank() == 0:  # under torchrun, rank 0 alone reports
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
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Replace an earlier quickstart run in --out (its probes and ledger included).",
        ),
    ] = False,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Train the `fds` preset on the built-in `shapes` sprites (shape = the sensitive factor, held
    by the private block), evaluate it (with the leakage of each block) and write its report.

    Writes a complete run directory (model, metrics, PNGs, evaluation.json, report.html) and prints
    the report's path. `--out` must be missing, empty, or (with `--overwrite`) an earlier
    quickstart run, which is replaced only once the new one has trained.
    Example: `fds quickstart --out runs/demo`
    """
    from fds.workflows.quickstart import run_quickstart

    summary = run_quickstart(
        out, epochs=epochs, threads=threads, overwrite=overwrite, verbose=not quiet
    )
    emit(summary, as_json, "FDS quickstart: the key (fds preset) on shapes")


@app.command()
def encode(
    model: ModelOpt,
    data: Annotated[str, typer.Option("--data", "-d", help="Rows or images to encode.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Latents file: .npy or .parquet (.fdsz sealed).")
    ],
    sample: Annotated[
        bool, typer.Option("--sample", help="Draw z ~ q(z|x) instead of the posterior mean.")
    ] = False,
    part: Annotated[
        str,
        typer.Option(
            "--part", help="all, or with a private block: public (shareable) or private (the key)."
        ),
    ] = "all",
    seal: Annotated[
        Path | None,
        typer.Option(
            "--seal",
            help="Keys directory (`fds keys new`): write a .fdsz file, the public block in the "
            "clear and the private block encrypted under these keys (only public.ctx is read).",
            show_default=False,
        ),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Multimodal model: the modalities to encode from, e.g. image,text (default: all).",
            show_default=False,
        ),
    ] = None,
    seed: NoiseSeedOpt = None,
    stream: StreamOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Encode data into latent factors.

    Example: `fds encode --model runs/census --data census.csv --out latents.parquet`

    Example: `fds encode --model runs/key --data census --part public --out public.npy`

    Example: `fds encode --model runs/key --data census --seal keys/ --out shared.fdsz`

    Example: `fds encode --model runs/mm --data shapes-mm --from text --out codes.npy`

    Example: `fds encode --model runs/mmkey --data shapes-mm --from image --part public --out p.npy`

    Example: `fds encode --model runs/big --data parts/ --out latents.parquet`   (streamed)
    """
    from fds.data.files import SEALED_SUFFIX, open_data, write_output
    from fds.errors import DataError
    from fds.estimator import FDS

    if seal is not None:
        if out.suffix.lower() != SEALED_SUFFIX:
            raise typer.BadParameter(f"--seal writes a sealed file: give --out NAME{SEALED_SUFFIX}")
        if out.exists() and not overwrite:
            raise DataError(f"{out} exists; pass --overwrite to replace it")
    fitted = FDS.load(model)
    loaded = open_data(data, stream=stream)
    if loaded.table is not None:
        from fds.workflows.streamed import encode_streamed

        if seal is not None or from_:
            raise DataError("--seal and --from apply to data in memory, not to a streamed table")
        summary = encode_streamed(
            fitted,
            loaded.table,
            out,
            transform=lambda frame, s: fitted.transform(frame, sample=sample, part=part, seed=s),
            seed=seed,
            overwrite=overwrite,
            show_progress=not quiet,
        )
        emit(summary, as_json, "encoded (streamed)")
        return
    X = loaded.X
    if fitted.input_kind_ == "multimodal":  # a table's path columns: beside the table file
        from fds.multimodal import as_modalities

        X, _ = as_modalities(X, fitted.config_, Path(data).parent)
    if seal is None:
        given: dict[str, Any] = {"modalities": _names(from_)} if from_ else {}
        if fitted.input_kind_ == "multimodal" and fitted.sensitive_ and part != "public":
            from fds.workflows.leakage import sensitive_values

            # the key is encoded from the sensitive values: a factor or label of the data set
            names = [c.name for c in fitted.sensitive_]
            given["sensitive"] = sensitive_values(loaded, names)
        codes = fitted.transform(X, sample=sample, part=part, seed=seed, **given)
        write_output(codes, out, overwrite=overwrite)
        emit(
            {"out": str(out), "rows": len(codes), "latent_dim": codes.shape[1]}, as_json, "encoded"
        )
        return
    sealed = fitted.transform(X, sample=sample, part=part, seed=seed, seal=seal)
    info = sealed.save(out, overwrite=overwrite)
    summary = {
        "out": str(out),
        "rows": sealed.n_rows,
        "latent_dim": sealed.public_dim + sealed.private_dim,
        "public_dim": sealed.public_dim,
        "private_dim": sealed.private_dim,
        "key_id": sealed.key_id,
        "model_id": sealed.model_id,
        "bytes": info["bytes"],
    }
    emit(summary, as_json, "encoded and sealed")


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
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            "-k",
            help="For a sealed .fdsz file: the keys directory holding secret.ctx, to decrypt "
            "the private block (full records); without it, public-only records.",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Multimodal model: the modality to decode into, e.g. text."),
    ] = None,
    seed: NoiseSeedOpt = None,
    stream: StreamOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Decode latent factors back into rows or images (the decoder mean).

    Example: `fds decode --model runs/census --latents latents.parquet --out rebuilt.csv`

    Example: `fds decode --model runs/key --latents public.npy --private prior --out hidden.csv`

    Example: `fds decode --model runs/key --latents shared.fdsz --keys keys/ --out records.csv`

    Example: `fds decode --model runs/mm --latents codes.npy --to text --out captions.csv`
    (captions and tables as .csv, images and sounds as .npy)

    Example: `fds decode --model runs/big --latents latents.parquet --stream --out rows.parquet`
    """
    from fds.data.files import SEALED_SUFFIX, open_data, read_latents, write_output
    from fds.errors import DataError
    from fds.estimator import FDS

    sealed = latents.suffix.lower() == SEALED_SUFFIX
    if keys is not None and not sealed:
        raise typer.BadParameter(f"--keys opens a sealed {SEALED_SUFFIX} file; {latents} is not")
    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    fitted = FDS.load(model)
    if to is not None:
        from fds.workflows.multimodal import modality_frame

        key = private if private in (None, "prior", "neutral") else read_latents(private)
        decoded = fitted.inverse_transform(
            read_latents(latents), private=key, seed=seed, modality=to
        )
        write_output(modality_frame(to, decoded), out, overwrite=overwrite)
        emit({"out": str(out), "rows": len(decoded), "modality": to}, as_json, "decoded")
        return
    key = private if private in (None, "prior", "neutral") else read_latents(private)
    table = None if sealed else open_data(latents, stream=stream).table
    if table is not None:
        from fds.workflows.streamed import decode_streamed

        summary = decode_streamed(
            fitted,
            table,
            out,
            private=key,
            seed=seed,
            overwrite=overwrite,
            show_progress=not quiet,
        )
        emit(summary, as_json, "decoded (streamed)")
        return
    extra: dict[str, Any] = {}
    if sealed:
        from fds.privacy.he import SealedLatents

        codes: Any = SealedLatents.load(latents)
        extra = {"keyed": keys is not None, "key_id": codes.key_id}
    else:
        codes = read_latents(latents)
    decoded = fitted.inverse_transform(codes, private=key, keys=keys, seed=seed)
    write_output(decoded, out, overwrite=overwrite)
    title = "decoded (public only)" if extra.get("keyed") is False else "decoded"
    emit({"out": str(out), "rows": len(decoded), **extra}, as_json, title)


@app.command()
def sample(
    model: ModelOpt,
    n: Annotated[int, typer.Option("-n", "--n", help="How many rows or images.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output: .csv/.parquet (tables) or .npy.")
    ],
    condition: Annotated[
        list[str] | None,
        typer.Option(
            "--condition",
            help="Keep rows meeting COLUMN OP VALUE (OP: = == != < <= > >=), e.g. sex=female or "
            "'age>=30'; repeat for several (all must hold).",
            show_default=False,
        ),
    ] = None,
    max_draws: Annotated[
        int | None,
        typer.Option(
            "--max-draws",
            min=1,
            help="Most rows drawn to meet the conditions and constraints.",
            show_default="200 per row asked, at least 100,000",
        ),
    ] = None,
    allow_fewer: Annotated[
        bool,
        typer.Option(
            "--allow-fewer", help="Write the rows that met the conditions even if fewer than -n."
        ),
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Multimodal model: the modalities to generate, e.g. image,text (default: all); "
            "--out is then a folder (image.npy, audio.npy, text.csv, table.csv).",
            show_default=False,
        ),
    ] = None,
    seed: NoiseSeedOpt = None,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Draw and write --out (.parquet) 65,536 rows at a time, never all in memory.",
            show_default="above 1,000,000 rows",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate new rows or images from the prior (tables: every row obeys the model's
    constraints and meets every `--condition`; too few rows within `--max-draws` is an error, nothing
    written, unless `--allow-fewer`).

    Example: `fds sample --model runs/census -n 1000 --out synthetic.csv`

    Example: `fds sample --model runs/census -n 100 --condition sex=female --condition 'age>=30'
    --out women_over_30.csv`

    Example: `fds sample --model runs/mm -n 50 --to image,text --out samples/`

    Example: `fds sample --model runs/big -n 10000000 --out synthetic.parquet`   (streamed)
    """
    from fds.data.files import write_output
    from fds.errors import DataError
    from fds.estimator import FDS

    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    fitted = FDS.load(model)
    if fitted.input_kind_ == "multimodal":
        from fds.workflows.multimodal import write_modalities

        if condition:
            raise DataError("--condition applies to tables; this model is multimodal")
        drawn = fitted.sample(n, seed=seed, modalities=_names(to) if to else None)
        files = write_modalities(drawn, out, overwrite=overwrite)
        emit({"out": str(out), "rows": n, "files": [str(f) for f in files]}, as_json, "sampled")
        return
    from fds.workflows.streamed import SAMPLE_STREAM_ROWS, sample_streamed

    if stream or (stream is None and n > SAMPLE_STREAM_ROWS):
        summary = sample_streamed(
            fitted,
            n,
            out,
            seed=seed,
            overwrite=overwrite,
            show_progress=not quiet,
            conditions=condition or None,
            max_draws=max_draws,
            allow_fewer=allow_fewer,
        )
        emit(summary, as_json, "sampled (streamed)")
        return
    fitted.verbose = not quiet  # a bar once rejection sampling takes over a second
    samples = fitted.sample(
        n, seed=seed, conditions=condition or None, max_draws=max_draws, allow_fewer=allow_fewer
    )
    write_output(samples, out, overwrite=overwrite)
    emit({"out": str(out), "rows": len(samples), "requested": n}, as_json, "sampled")


def _names(value: str) -> list[str]:
    """`image, text` → ["image", "text"]."""
    return [name.strip() for name in value.split(",") if name.strip()]
