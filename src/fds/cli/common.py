"""What every command module shares: the consoles, the option types, the summary printer and the
error handling, kept free of heavy imports so that `fds --help` starts fast."""

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

from fds.errors import FDSError

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


def new_typer(help: str | None = None, **settings: Any) -> typer.Typer:
    """A Typer app (or command group) with the settings every part of the CLI shares."""
    return typer.Typer(help=help, no_args_is_help=True, **settings)


def run_of(model: Path | None, run: Path | None) -> Path:
    """The run given as --model RUN or as the positional RUN."""
    if (model or run) is None:
        raise typer.BadParameter("give the run directory with --model RUN (or as RUN)")
    return model or run


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
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


def emit(summary: dict[str, Any], as_json: bool, title: str) -> None:
    """A command's figures: one JSON object on stdout with --json, else a two-column table."""
    if as_json:
        print_json(summary)
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


def print_json(payload: dict[str, Any]) -> None:
    """One JSON object on one line of stdout (the whole output of a --json command)."""
    sys.stdout.write(json.dumps(payload) + "\n")
