"""`fds probe run|apply`: fit heads on a model's latents beside the raw features, apply a saved one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fds.cli.common import (
    JsonFlag,
    ModelOpt,
    OverwriteOpt,
    emit,
    new_typer,
    out_console,
    print_json,
)

app = new_typer(
    help="Inference on latents: fit heads on a model's latents beside the raw features, and "
    "apply a saved head. `fds probe run` fits and scores; `fds probe apply` predicts.",
)


@app.command("run")
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
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a saved probe of the same name.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Score probe heads on the latents beside the same heads on the raw features; records the
    table in RUN/probes.json (for the report).

    Example: `fds probe run --model runs/census --data census.csv --target high_income --save income`
    """
    from fds.data.files import read_data
    from fds.estimator import FDS
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
        overwrite=overwrite,
    )
    if as_json:
        print_json(result)
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


@app.command("apply")
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

    from fds.data.files import read_data, write_output
    from fds.estimator import FDS
    from fds.workflows.probe import apply_probe

    predictions = apply_probe(FDS.load(model), model, probe, read_data(data).X)
    write_output(pd.DataFrame({"prediction": predictions}), out, overwrite=overwrite)
    emit({"out": str(out), "rows": len(predictions), "probe": probe}, as_json, "probe applied")
