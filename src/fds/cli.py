"""The `fds` command: parse → call the API → print a summary (rich) or one JSON object (--json).

Every `FDSError` becomes one line on stderr and exit code 2; Ctrl-C during training leaves a
checkpoint and exits with 130.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fds.config import load_yaml
from fds.data.datasets import available_datasets
from fds.data.files import read_data, read_latents, write_output
from fds.errors import DataError, FDSError
from fds.estimator import FDS
from fds.workflows.train import QUICKSTART, train_run

app = typer.Typer(
    help="FDS: factorized autoencoders that decompose, synthesize and protect sensitive data.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
)
out_console = Console()
err_console = Console(stderr=True)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout, nothing else.")
]
ModelOpt = Annotated[
    Path, typer.Option("--model", "-m", help="Run directory or its model/ folder.")
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
RunArg = Annotated[
    Path | None, typer.Argument(help="Run directory (same as --model).", show_default=False)
]
RunModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Run directory or its model/ folder.", show_default=False),
]
SampleSeedOpt = Annotated[int, typer.Option(help="Seed of the samples and sub-samples.")]
DataRootOpt = Annotated[
    str | None,
    typer.Option("--data-root", help="Folder of a built-in's files (fashion-mnist)."),
]


def _run_of(model: Path | None, run: Path | None) -> Path:
    """The run given as --model RUN or as the positional RUN."""
    if (model or run) is None:
        raise typer.BadParameter("give the run directory with --model RUN (or as RUN)")
    return model or run


def _handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user errors into one clear line and exit code 2 (and Ctrl-C into 130)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FDSError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print(
                "interrupted: a checkpoint was saved; continue with `fds train --resume RUN`"
            )
            raise typer.Exit(130) from None

    return wrapper


def _emit(summary: dict[str, Any], as_json: bool, title: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    table = Table(title=title, show_header=False)
    for key, value in summary.items():
        shown = (
            f"{value:.5g}"
            if isinstance(value, float)
            else ", ".join(value)
            if isinstance(value, list)
            else str(value)
        )
        table.add_row(key, shown)
    out_console.print(table)


@app.command()
@_handle_errors
def datasets(as_json: JsonFlag = False) -> None:
    """List the built-in data sets.

    Example: `fds datasets --json`
    """
    items = available_datasets()
    if as_json:
        sys.stdout.write(json.dumps({"datasets": items}) + "\n")
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
@_handle_errors
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Train an FDS and write a run directory (config.yaml, metrics.jsonl, checkpoints/, model/, PNGs).

    Examples:

    `fds train --data census --preset vae --epochs 30 --out runs/census`

    `fds train --data table.csv --config fds.yaml --out runs/mine`

    `fds train --resume runs/mine`   (after a crash or Ctrl-C: continues bit for bit)

    `fds train --data census --preset fds --sensitive sex --out runs/key`   (public/private blocks)
    """
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
    summary = train_run(params, target, resume=resume, overwrite=overwrite, verbose=not quiet)
    _emit(summary, as_json, "FDS training run")


@app.command()
@_handle_errors
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory.")] = Path(
        "runs/quickstart"
    ),
    epochs: Annotated[int, typer.Option(help="Passes over the data.")] = QUICKSTART["epochs"],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
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
    _emit(summary, as_json, "FDS quickstart: the key (fds preset) on shapes")


@app.command()
@_handle_errors
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
    fitted = FDS.load(model)
    codes = fitted.transform(read_data(data).X, sample=sample, part=part)
    write_output(codes, out, overwrite=overwrite)
    _emit({"out": str(out), "rows": len(codes), "latent_dim": codes.shape[1]}, as_json, "encoded")


@app.command()
@_handle_errors
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
            "per row) or `prior` (the prior mean: sensitive attributes hidden).",
        ),
    ] = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Decode latent factors back into rows or images (the decoder mean).

    Example: `fds decode --model runs/census --latents latents.parquet --out rebuilt.csv`

    Example: `fds decode --model runs/key --latents public.npy --private prior --out hidden.csv`
    """
    fitted = FDS.load(model)
    key = private if private in (None, "prior") else read_latents(private)
    decoded = fitted.inverse_transform(read_latents(latents), private=key)
    write_output(decoded, out, overwrite=overwrite)
    _emit({"out": str(out), "rows": len(decoded)}, as_json, "decoded")


@app.command()
@_handle_errors
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
    samples = FDS.load(model).sample(n, seed=seed)
    write_output(samples, out, overwrite=overwrite)
    _emit({"out": str(out), "rows": len(samples)}, as_json, "sampled")


probe_app = typer.Typer(
    help="Inference on latents: fit heads on a model's latents beside the raw features, and "
    "apply a saved head. `fds probe run` fits and scores; `fds probe apply` predicts.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(probe_app, name="probe")


@probe_app.command("run")
@_handle_errors
def probe_run_command(
    model: ModelOpt,
    data: Annotated[
        str, typer.Option("--data", "-d", help="Rows or images (path or built-in name).")
    ],
    target: Annotated[
        str, typer.Option("--target", "-t", help="A column, `label`, or `factor:NAME`.")
    ],
    task: Annotated[
        str, typer.Option(help="auto, classification, regression or clustering.")
    ] = "auto",
    heads: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated heads: logistic, knn, mlp (classification); ridge, knn, mlp "
            "(regression); kmeans, gmm (clustering). Default: the task's first two."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the train/test split and the heads.")] = 0,
    save: Annotated[
        str | None,
        typer.Option("--save", help="Save the best latent head under this name in model/probes/."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score probe heads on the latents beside the same heads on the raw features; records the
    table in RUN/probes.json (for the report).

    Example: `fds probe run --model runs/census --data census.csv --target high_income --save income`
    """
    from fds.workflows.probe import probe_run, run_dir_of

    fitted = FDS.load(model)
    result = probe_run(
        fitted,
        read_data(data),
        target=target,
        task=task,
        heads=heads,
        seed=seed,
        save_as=save,
        run_dir=run_dir_of(model),
    )
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    metrics = [k for k in result["rows"][0] if k not in ("head", "features")]
    table = Table(
        "head",
        *(f"{m}\nlatent / raw" for m in metrics),
        title=f"probe {target!r}: {result['task']}, "
        f"{result['n_train']} train / {result['n_test']} test rows",
    )
    for head in dict.fromkeys(row["head"] for row in result["rows"]):
        by_kind = {r["features"]: r for r in result["rows"] if r["head"] == head}
        table.add_row(
            head,
            *(
                " / ".join(_shown(by_kind.get(k, {}).get(m)) for k in ("latent", "raw"))
                for m in metrics
            ),
        )
    out_console.print(table)
    if result.get("target_in_input"):
        out_console.print(f"note: {target!r} is one of the model's input columns")
    if "saved_probe" in result:
        saved = result["saved_probe"]
        out_console.print(f"saved the {saved['head']} head as {saved['name']!r}: {saved['path']}")
    out_console.print(f"recorded in {result['probes_file']}")


def _shown(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


@probe_app.command("apply")
@_handle_errors
def probe_apply_command(
    model: ModelOpt,
    probe: Annotated[str, typer.Option("--probe", "-p", help="Name given to `--save`.")],
    data: Annotated[str, typer.Option("--data", "-d", help="Rows or images to predict for.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Predictions: .csv, .parquet or .npy.")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Predict with a probe saved by `fds probe run --save NAME`; writes a one-column table
    (`prediction`). Refuses a probe fitted on another model.

    Example: `fds probe apply --model runs/census --probe income --data new.csv --out pred.csv`
    """
    import pandas as pd

    from fds.workflows.probe import apply_probe

    predictions = apply_probe(FDS.load(model), model, probe, read_data(data).X)
    write_output(pd.DataFrame({"prediction": predictions}), out, overwrite=overwrite)
    _emit({"out": str(out), "rows": len(predictions), "probe": probe}, as_json, "probe applied")


@app.command()
@_handle_errors
def evaluate(
    run: RunArg = None,
    model: RunModelOpt = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", "-d", help="The training data (path or built-in); default: the run's config."
        ),
    ] = None,
    iwae_k: Annotated[
        int, typer.Option("--iwae-k", help="Importance samples for the IWAE bound.")
    ] = 100,
    fast: Annotated[
        bool, typer.Option("--fast", help="Fewer rows and samples: a quick preview.")
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
            "should still predict (its probe accuracy is reported beside the leakage).",
        ),
    ] = None,
    seed: SampleSeedOpt = 0,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a trained model on its held-out rows and write RUN/evaluation.json.

    Reconstruction, ELBO and IWAE, latent health, independence, sparsity, disentanglement (when
    factors are known) and the quality of synthetic data; for a model with a private block, the
    leakage of each sensitive attribute from the public and private blocks (best attacker vs the
    majority baseline). With --json the whole report is printed.

    Example: `fds evaluate --model runs/quickstart --data shapes`

    Example: `fds evaluate --model runs/key --utility-target high_income`
    """
    from fds.workflows.evaluate import evaluate_path, headline

    target_run = _run_of(model, run)
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
    )
    if as_json:
        sys.stdout.write(json.dumps({"evaluation_json": str(path)} | report) + "\n")
        return
    for warning in (report.get("latent_health") or {}).get("warnings", []):
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    _emit(headline(report), False, "FDS evaluation")
    out_console.print(f"wrote {path}", highlight=False, soft_wrap=True)


@app.command()
@_handle_errors
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
    from fds.workflows.report import write_report

    target_run = _run_of(model, run)
    loaded = read_data(data) if data else None
    path = write_report(target_run, data=loaded, seed=seed)
    _emit({"report": str(path)}, as_json, "FDS report")


keys_app = typer.Typer(
    help="CKKS keys for encrypted inference: the owner keeps `secret.ctx`, a server gets "
    "`public.ctx` (no secret key).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
@_handle_errors
def keys_new_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the key files.")],
    poly_modulus: Annotated[
        int | None,
        typer.Option(
            "--poly-modulus",
            help="CKKS ring size (8192, 16384, 32768); default 8192, or the smallest that fits "
            "--depth at 128-bit security.",
            show_default=False,
        ),
    ] = None,
    depth: Annotated[
        int,
        typer.Option(help="Multiplicative depth of the head: 1 linear, 3 polynomial MLP."),
    ] = 1,
    galois: Annotated[
        bool,
        typer.Option(
            "--galois/--no-galois",
            help="Also generate Galois (rotation) keys: only the per-record path needs them.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create a CKKS context (128-bit security) and write OUT/secret.ctx (the owner's, mode 0600),
    OUT/public.ctx (what a server gets: no secret key) and OUT/keys.json (parameters, key id).
    Refuses to overwrite existing key files.

    Example: `fds keys new --out keys/ --json`
    """
    from fds.privacy.he import HEParams, create_context, save_keys

    params = HEParams.for_depth(depth, poly_modulus, galois_keys=galois)
    info = save_keys(create_context(params), out, params)
    summary = {
        "out": info["out"],
        "key_id": info["key_id"],
        "poly_modulus_degree": info["poly_modulus_degree"],
        "coeff_mod_bit_sizes": info["coeff_mod_bit_sizes"],
        "global_scale_bits": info["global_scale_bits"],
        "depth": info["depth"],
        "slot_count": info["slot_count"],
        "security_bits": info["security_bits"],
        "galois_keys": info["galois_keys"],
        "public_context_bytes": info["public_context_bytes"],
        "secret_path": info["secret_path"],
        "public_path": info["public_path"],
    }
    if as_json:
        _emit(summary, True, "")
        return
    shown = {**summary, "coeff_mod_bit_sizes": [str(b) for b in summary["coeff_mod_bit_sizes"]]}
    _emit(shown, False, "FDS keys")


@app.command()
@_handle_errors
def encrypt(
    keys: Annotated[
        Path, typer.Option("--keys", "-k", help="Directory written by `fds keys new`.")
    ],
    latents: Annotated[
        Path, typer.Option("--latents", "-l", help="Latents to encrypt: .npy, .parquet or .csv.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Encrypted file (.fdsct).")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Encrypt latents with CKKS, packed feature-major in batches of `slot_count` records, into one
    file. Needs only keys/public.ctx (no secret key), so any machine holding it can encrypt.

    Example: `fds encrypt --keys keys/ --latents latents.parquet --out latents.fdsct --json`
    """
    from fds.privacy.he import PUBLIC_FILE, encrypt_latents, load_public_context, write_encrypted

    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    public_path = keys / PUBLIC_FILE
    if not public_path.is_file():
        raise DataError(f"{public_path} not found (run `fds keys new --out {keys}`)")
    ctx = load_public_context(public_path)
    batches = encrypt_latents(ctx, read_latents(latents))
    info = write_encrypted(out, batches, overwrite=overwrite)
    _emit(
        {
            "out": info["out"],
            "records": info["n_records"],
            "batches": info["n_batches"],
            "bytes": info["bytes"],
            "key_id": info["key_id"],
        },
        as_json,
        "encrypted",
    )


@app.command()
@_handle_errors
def decrypt(
    keys: Annotated[
        Path, typer.Option("--keys", "-k", help="Directory written by `fds keys new`.")
    ],
    source: Annotated[
        Path, typer.Option("--in", "-i", help="Encrypted file written by `fds encrypt`.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Plaintext output: .npy, .parquet or .csv.")
    ],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Decrypt an encrypted file (latents, or scores) with keys/secret.ctx. Ciphertexts made under
    other keys are refused, never decrypted to garbage.

    Example: `fds decrypt --keys keys/ --in latents.fdsct --out latents.npy --json`
    """
    import pandas as pd

    from fds.privacy.he import decrypt_batches, load_secret_context, read_encrypted

    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    ctx = load_secret_context(keys)
    batches = read_encrypted(source, ctx)
    values = decrypt_batches(ctx, batches)
    kind = batches[0].kind
    result: Any = values
    if kind == "scores" and out.suffix.lower() != ".npy":
        result = pd.DataFrame({f"score_{k}": values[:, k] for k in range(values.shape[1])})
    write_output(result, out, overwrite=overwrite)
    _emit(
        {
            "out": str(out),
            "kind": kind,
            "records": len(values),
            "features": values.shape[1],
            "batches": len(batches),
            "key_id": batches[0].key_id,
        },
        as_json,
        "decrypted",
    )


@app.command()
@_handle_errors
def serve(
    model: ModelOpt,
    probe: Annotated[
        str,
        typer.Option(
            "--probe",
            "-p",
            help="A saved probe of the model: logistic or ridge (linear), or a classification "
            "mlp (run with a degree-2 polynomial activation; needs keys with --depth 3).",
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_request_mb: Annotated[
        float, typer.Option("--max-request-mb", help="Largest request body accepted (MB).")
    ] = 64.0,
) -> None:
    """Serve a saved linear probe on CKKS-encrypted latents (FastAPI + uvicorn). The server gets
    public contexts only (a context holding a secret key is refused) and returns encrypted scores.

    Example: `fds serve --model runs/census --probe income --port 8000`
    """
    import uvicorn

    from fds.privacy.he import PolyMLPHead, head_from_probe
    from fds.privacy.service import create_app
    from fds.workflows.probe import load_model_probe

    if max_request_mb <= 0:
        raise typer.BadParameter("--max-request-mb must be positive")
    head = head_from_probe(load_model_probe(model, probe))
    if isinstance(head, PolyMLPHead):
        err_console.print(
            f"polynomial activation: {json.dumps(head.approximation)}", highlight=False
        )
    service = create_app(head, max_request_bytes=int(max_request_mb * (1 << 20)))
    err_console.print(
        f"serving probe {probe!r} ({head.n_features} features → {head.n_outputs} scores) on "
        f"http://{host}:{port}",
        highlight=False,
    )
    uvicorn.run(service, host=host, port=port, log_level="warning")


@app.command("infer-remote")
@_handle_errors
def infer_remote_command(
    url: Annotated[str, typer.Option("--url", help="The `fds serve` address.")],
    keys: Annotated[
        Path, typer.Option("--keys", "-k", help="Directory written by `fds keys new`.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Predictions and scores: .csv, .parquet or .npy.")
    ],
    latents: Annotated[
        Path | None, typer.Option("--latents", "-l", help="Latents to send (.npy/.parquet/.csv).")
    ] = None,
    model: RunModelOpt = None,
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Rows or images to encode with --model.")
    ] = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Encrypted inference on a remote head: encode (with --model/--data, or take --latents),
    encrypt with keys/secret.ctx, send keys/public.ctx and the ciphertexts, decrypt the scores.
    Writes a table with `prediction` and `score_0…` columns; the server never sees either.

    Example: `fds infer-remote --url http://127.0.0.1:8000 --keys keys/ --model runs/census
    --data new.csv --out predictions.csv`
    """
    import pandas as pd

    from fds.privacy.he import PUBLIC_FILE, load_secret_context
    from fds.privacy.service import infer_remote

    if (latents is None) == (model is None or data is None):
        raise typer.BadParameter("give either --latents FILE or both --model RUN and --data PATH")
    if out.exists() and not overwrite:
        raise typer.BadParameter(f"{out} exists; pass --overwrite to replace it")
    secret = load_secret_context(keys)
    public_path = keys / PUBLIC_FILE
    if not public_path.is_file():
        raise typer.BadParameter(f"{public_path} not found (run `fds keys new --out {keys}`)")
    Z = (
        read_latents(latents)
        if latents is not None
        else FDS.load(model).transform(read_data(data).X)
    )
    result = infer_remote(url, secret, Z, public_context=public_path.read_bytes())
    table = pd.DataFrame(
        {f"score_{k}": result["scores"][:, k] for k in range(result["scores"].shape[1])}
    )
    predictions = result["predictions"]
    if predictions.ndim == 1:
        table.insert(0, "prediction", predictions)
    write_output(table, out, overwrite=overwrite)
    _emit(
        {
            "out": str(out),
            "rows": len(table),
            "url": url,
            "key_id": result["key_id"],
            "batches": result["batches"],
            "bytes_sent": result["bytes_sent"],
            "bytes_received": result["bytes_received"],
            "seconds": result["seconds"],
        },
        as_json,
        "encrypted inference",
    )


# --------------------------------------------------------------------------- DP release, ledger


@app.command()
@_handle_errors
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
        _run_of(model, run),
        data,
        out,
        epsilon=epsilon,
        delta=delta,
        clip=clip,
        seed=seed,
        overwrite=overwrite,
    )
    _emit(summary, as_json, "DP release")


ledger_app = typer.Typer(
    help="The privacy ledger of a run: every DP training run and release, composed.",
    no_args_is_help=True,
)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("show")
@_handle_errors
def ledger_show_command(
    run: RunArg = None, model: RunModelOpt = None, as_json: JsonFlag = False
) -> None:
    """Show the ledger: budget, δ, and per data set each entry and the composed total ε.

    Example: `fds ledger show runs/census --json`
    """
    from fds.privacy.ledger import Ledger, ledger_path

    summary = Ledger.load(ledger_path(_run_of(model, run))).summary()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
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
@_handle_errors
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

    ledger = Ledger.load(ledger_path(_run_of(model, run)))
    ledger.set_budget(epsilon, delta)
    ledger.save()
    _emit(
        {"ledger": str(ledger.path), "budget_epsilon": epsilon, "delta": ledger.delta()},
        as_json,
        "privacy ledger",
    )


# --------------------------------------------------------------------------- privacy attacks


@app.command()
@_handle_errors
def attack(
    run: RunArg = None,
    model: RunModelOpt = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", "-d", help="The training data (path or built-in); default: the run's config."
        ),
    ] = None,
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
    **attribute**: logistic regression, random forest and an MLP fitted on held-out rows' shared
    latents (the public block of an `fds` model) predict a sensitive attribute of the training rows;
    the best accuracy is printed beside the majority baseline.
    **audit** (DP runs only): the run's DP training is repeated once with held-out rows as canaries,
    each included with probability ½ (Steinke, Nasr & Jagielski 2023); the lower bound on ε it proves
    is printed beside the accountant's ε.

    Example: `fds attack runs/census --kind membership --kind inversion`,
    `fds attack runs/census --kind attribute --sensitive sex`, `fds attack runs/dp --kind audit`
    """
    from fds.workflows.attack import attack_path, headline

    target_run = _run_of(model, run)
    results, path = attack_path(
        target_run,
        data,
        tuple(kind) if kind else None,
        data_root=data_root,
        n_rows=n_rows,
        noise_std=noise,
        seed=seed,
        sensitive=tuple(sensitive or ()),
        show_progress=not as_json,
    )
    if as_json:
        sys.stdout.write(json.dumps({"attacks_json": str(path)} | results) + "\n")
        return
    _emit(headline(results), False, "FDS privacy attacks")
    out_console.print(f"wrote {path}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------- federated (issue 4)
federated_app = typer.Typer(
    help="Federated training on Flower: sites train one FDS without pooling their data.\n\n"
    "Example: `FLWR_TELEMETRY_ENABLED=0 fds federated simulate --config fed.yaml --out runs/fed`",
    no_args_is_help=True,
)
app.add_typer(federated_app, name="federated")
FedConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="fed.yaml: model options plus a federated: section.")
]


@federated_app.command("simulate")
@_handle_errors
def federated_simulate_command(
    config: FedConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """N simulated sites on Flower's simulation engine (Ray); writes RUN/config.yaml,
    RUN/metrics.jsonl (one line per round) and RUN/model/.

    Example: `FLWR_TELEMETRY_ENABLED=0 fds federated simulate --config fed.yaml --out runs/fed`
    """
    from fds.workflows.federated import simulate

    summary = simulate(config, out, overwrite=overwrite, verbose=not as_json)
    summary["site_rows"] = ", ".join(f"{k}: {v}" for k, v in summary["site_rows"].items())
    if not as_json:
        summary.pop("val_elbo_per_site")
    _emit(summary, as_json, "federated simulation")


@federated_app.command("partition")
@_handle_errors
def federated_partition_command(
    config: FedConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for one file per site.")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Split the config's data into one file per site (for a real deployment or a demo).

    Example: `fds federated partition --config fed.yaml --out sites/`
    """
    from fds.workflows.federated import write_partitions

    summary = write_partitions(config, out, overwrite=overwrite)
    if not as_json:
        summary["files"] = ", ".join(summary["files"].values())
        summary["rows"] = ", ".join(f"{k}: {v}" for k, v in summary["rows"].items())
    _emit(summary, as_json, "site files")


@federated_app.command("app")
@_handle_errors
def federated_app_command(
    config: FedConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Flower app directory to create.")],
    run: Annotated[Path, typer.Option("--run", help="Run directory the ServerApp will write.")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Create the Flower app directory (pyproject.toml) for `flwr run` against a SuperLink.

    Example: `fds federated app --config fed.yaml --out fedapp --run runs/fed && flwr run fedapp`
    """
    from fds.workflows.federated_app import write_app

    _emit(write_app(config, out, run, overwrite=overwrite), as_json, "Flower app")


# --------------------------------------------------------------------------- privacy curve (issue 6)
@app.command("privacy-curve")
@_handle_errors
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
    target_run = _run_of(model, run)
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
        sys.stdout.write(json.dumps({"privacy_curve_json": str(path)} | result) + "\n")
        return
    table = Table(title=f"FDS privacy-utility curve: {result['target']} / {result['sensitive']}")
    for header in HEADERS:
        table.add_column(header)
    for row in summary_rows(result):
        table.add_row(*row)
    out_console.print(table)
    err_console.print(f"note: {NOTE}", highlight=False, soft_wrap=True)
    out_console.print(f"wrote {path}", highlight=False, soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
