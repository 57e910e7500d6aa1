"""`fds metadata`: write a table's metadata file for the user to edit, and check one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fds.cli.common import JsonFlag, OverwriteOpt, emit, new_typer

app = new_typer(help="Metadata files: column kinds, supports and constraints (docs/synthesis.md).")


@app.command()
def detect(
    data: Annotated[str, typer.Argument(help="CSV, Parquet or built-in table.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Metadata file to write (.json).")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Write each column's kind (continuous, integer, categorical, boolean), support (min, max,
    sign, integer, decimals) or categories, and missing rate, with an empty list of constraints:
    edit it, then train with `fds train --metadata FILE`.

    Example: `fds metadata detect census.csv --out meta.json`
    """
    from fds.data.files import check_creatable, read_data
    from fds.data.metadata import KINDS, detect_metadata
    from fds.errors import DataError
    from fds.rundir import write_json

    if out.exists() and not overwrite:
        raise DataError(f"{out} exists; pass --overwrite to replace it")
    check_creatable(out)
    frame = _table(read_data(data).X, data)
    metadata = detect_metadata(frame)
    write_json(out, metadata.to_json())
    kinds = [column["kind"] for column in metadata.columns.values()]
    summary = {"out": str(out), "columns": len(kinds)} | {k: kinds.count(k) for k in KINDS}
    emit(summary, as_json, "metadata detected")


@app.command()
def validate(
    metadata: Annotated[Path, typer.Argument(help="Metadata file (.json).")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="Also check it against this table (columns, rules)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a metadata file; with `--data`, also that the table has its columns and that every
    row obeys its constraints (what `fds train --metadata` checks before training).

    Example: `fds metadata validate meta.json --data census.csv`
    """
    from fds.config import make_config
    from fds.data.constraints import fit_constraints
    from fds.data.files import read_data
    from fds.data.metadata import read_metadata
    from fds.errors import DataError

    checked = read_metadata(metadata)
    if data is not None:
        frame = _table(read_data(data).X, data)
        unknown = [name for name in checked.columns if name not in frame.columns]
        if unknown:
            raise DataError(f"{metadata}: column {unknown[0]!r} is not in {data}")
        rules = make_config(constraints=checked.constraints).constraints
        fit_constraints(rules, frame, private=False)
    summary = {
        "metadata": str(metadata),
        "columns": len(checked.columns),
        "constraints": len(checked.constraints),
        "data": data,
        "valid": True,
    }
    emit(summary, as_json, "metadata valid")


def _table(X: object, source: str) -> Any:
    """The data as a DataFrame (a 2-D array gets FDS's column names x0, x1, …); pandas is
    imported here, so `fds metadata --help` stays fast."""
    import numpy as np
    import pandas as pd

    from fds.errors import DataError

    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, np.ndarray) and X.ndim == 2:
        return pd.DataFrame(X).add_prefix("x")
    raise DataError(f"{source} holds images; metadata describes tables")
