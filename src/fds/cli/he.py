"""Encrypted inference commands (CKKS): keys, encrypt, decrypt, serve, infer-remote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from fds.cli.common import (
    JsonFlag,
    ModelOpt,
    OverwriteOpt,
    RunModelOpt,
    emit,
    err_console,
    new_typer,
)
from fds.errors import DataError

app = new_typer()
keys_app = new_typer(
    help="CKKS keys for encrypted inference: the owner keeps `secret.ctx`, a server gets "
    "`public.ctx` (no secret key).",
)


@keys_app.command("new")
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
        emit(summary, True, "")
        return
    shown = {**summary, "coeff_mod_bit_sizes": [str(b) for b in summary["coeff_mod_bit_sizes"]]}
    emit(shown, False, "FDS keys")


@app.command()
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
    from fds.data.files import read_latents
    from fds.privacy.he import PUBLIC_FILE, encrypt_latents, load_public_context, write_encrypted

    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    public_path = keys / PUBLIC_FILE
    if not public_path.is_file():
        raise DataError(f"{public_path} not found (run `fds keys new --out {keys}`)")
    ctx = load_public_context(public_path)
    batches = encrypt_latents(ctx, read_latents(latents))
    info = write_encrypted(out, batches, overwrite=overwrite)
    emit(
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

    from fds.data.files import write_output
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
    emit(
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
    max_contexts: Annotated[
        int,
        typer.Option(
            "--max-contexts", min=1, help="Registered contexts at once (then 429, never eviction)."
        ),
    ] = 16,
    max_contexts_per_client: Annotated[
        int,
        typer.Option("--max-contexts-per-client", min=1, help="Registered contexts per address."),
    ] = 4,
    context_ttl: Annotated[
        float,
        typer.Option("--context-ttl", min=1.0, help="Seconds an unused context is kept."),
    ] = 900.0,
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
    service = create_app(
        head,
        max_request_bytes=int(max_request_mb * (1 << 20)),
        max_contexts=max_contexts,
        max_contexts_per_client=max_contexts_per_client,
        context_ttl=context_ttl,
    )
    err_console.print(
        f"serving probe {probe!r} ({head.n_features} features → {head.n_outputs} scores) on "
        f"http://{host}:{port}",
        highlight=False,
    )
    uvicorn.run(service, host=host, port=port, log_level="warning")


@app.command("infer-remote")
def infer_remote_command(
    url: Annotated[str, typer.Option("--url", help="The `fds serve` address.")],
    keys: Annotated[
        Path, typer.Option("--keys", "-k", help="Directory written by `fds keys new`.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Predictions and scores: .csv, .parquet or .npy.")
    ],
    latents: Annotated[
        Path | None,
        typer.Option(
            "--latents", "-l", help="Latents to send (.npy/.parquet/.csv, or sealed .fdsz)."
        ),
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

    from fds.data.files import SEALED_SUFFIX, read_data, read_latents, write_output
    from fds.estimator import FDS
    from fds.privacy.he import PUBLIC_FILE, SealedLatents, load_secret_context
    from fds.privacy.service import infer_remote

    if (latents is None) == (model is None or data is None):
        raise typer.BadParameter("give either --latents FILE or both --model RUN and --data PATH")
    if out.exists() and not overwrite:
        raise typer.BadParameter(f"{out} exists; pass --overwrite to replace it")
    secret = load_secret_context(keys)
    public_path = keys / PUBLIC_FILE
    if not public_path.is_file():
        raise typer.BadParameter(f"{public_path} not found (run `fds keys new --out {keys}`)")
    if latents is None:
        Z: Any = FDS.load(model).transform(read_data(data).X)
    elif latents.suffix.lower() == SEALED_SUFFIX:
        Z = SealedLatents.load(latents)  # the sealed private block is sent as it is
    else:
        Z = read_latents(latents)
    result = infer_remote(url, secret, Z, public_context=public_path.read_bytes())
    table = pd.DataFrame(
        {f"score_{k}": result["scores"][:, k] for k in range(result["scores"].shape[1])}
    )
    predictions = result["predictions"]
    if predictions.ndim == 1:
        table.insert(0, "prediction", predictions)
    write_output(table, out, overwrite=overwrite)
    emit(
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
