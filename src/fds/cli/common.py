"""What every command module shares: the consoles, the option types, the summary printer and the
error boundary, kept free of heavy imports so that `fds --help` starts fast.

The boundary is the root command group's `invoke`, so it holds for `main()` and for in-process
runners alike: an `FDSError` (or an OSError naming a file) is one line and exit 2, Ctrl-C is
exit 130, and any other exception is one line naming the command and a crash log (traceback
without local variables: they hold rows of the user's data), exit 1.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from fds._version import __version__
from fds.errors import FDSError

# User text (paths, column names, option values, messages holding them) is printed literally:
# the consoles read no markup and no :emoji: codes, so a file named `[/red]` is shown as it is.
out_console = Console(markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout, nothing else.")
]
ModelOpt = Annotated[
    Path, typer.Option("--model", "-m", help="Run directory or its model/ folder.")
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
LogOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        help="Track the run: `mlflow` (local mlruns/), `mlflow=URI`, `tensorboard` (tensorboard/) "
        "or `tensorboard=DIR`; repeat for both. Needs `pip install 'fds[mlflow]'` / "
        "`'fds[tensorboard]'`.",
        show_default=False,
    ),
]
RunArg = Annotated[
    Path | None, typer.Argument(help="Run directory (same as --model).", show_default=False)
]
RunModelOpt = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="Run directory or its model/ folder.", show_default=False),
]
RunDataOpt = Annotated[
    str | None,
    typer.Option(
        "--data", "-d", help="The training data (path or built-in); default: the run's config."
    ),
]
SampleSeedOpt = Annotated[int, typer.Option(help="Seed of the samples and sub-samples.")]
NoiseSeedOpt = Annotated[
    int | None,
    typer.Option(
        "--seed",
        help="Fix the noise of the draws (tests, reproductions); omitted, it comes fresh from the "
        "OS, so nobody holding the model can regenerate it.",
        show_default=False,
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="Threads for torch and the BLAS/OpenMP pools; default: the cores free when the work "
        "starts (1 for small models), or OMP_NUM_THREADS if set.",
        show_default=False,
    ),
]
DataRootOpt = Annotated[
    str | None,
    typer.Option("--data-root", help="Folder of a built-in's files (fashion-mnist)."),
]


def new_typer(help: str | None = None, **settings: Any) -> typer.Typer:
    """A Typer app (or command group) with the settings every part of the CLI shares."""
    return typer.Typer(
        help=help,
        cls=BoundaryGroup,
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
        **settings,
    )


def run_of(model: Path | None, run: Path | None) -> Path:
    """The run given as --model RUN or as the positional RUN."""
    if (model or run) is None:
        raise typer.BadParameter("give the run directory with --model RUN (or as RUN)")
    return model or run


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


def labelled(label: str, style: str, message: str) -> Text:
    """`label: message` with only the label styled (the message is printed literally)."""
    return Text.assemble((label, style), " ", message)


# --------------------------------------------------------------------------- the error boundary
_COMMAND = "fds.command"  # ctx.meta key: the names of the group and command being run


class BoundaryGroup(TyperGroup):
    """A command group that records which command runs; the root one runs it in the boundary."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            ctx.meta.setdefault(_COMMAND, []).append(command.name)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors, --help, typer.Exit: click prints and exits itself
        except KeyboardInterrupt as exc:
            hint = str(exc)
            err_console.print(f"interrupted: {hint}" if hint else "interrupted", soft_wrap=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # stdout closed early (`fds … | head`): click exits quietly
            raise typer.Exit(_report(exc, " ".join(ctx.meta.get(_COMMAND, [])))) from None


def _report(exc: Exception, command: str) -> int:
    """Print the one line for `exc` on stderr and return the exit code."""
    if isinstance(exc, FDSError):
        message = str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        message = f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    else:
        try:
            where = f"details in {write_crash_log(exc, command)}"
        except OSError as failed:
            where = f"no crash log: {failed.strerror or type(failed).__name__}"
        line = f"fds: internal error in {command or 'fds'}: {type(exc).__name__} ({where})"
        err_console.print(line, highlight=False, soft_wrap=True)
        return 1
    err_console.print(labelled("error:", "red", message), highlight=False, soft_wrap=True)
    return 2


def write_crash_log(exc: BaseException, command: str) -> Path:
    """Write the traceback of `exc` (frames and messages, never local variables) to a new file
    in $FDS_LOG_DIR or the temporary directory, readable by the user only; returns its path."""
    folder = Path(os.environ.get("FDS_LOG_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    prefix = f"fds-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-"
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".log", dir=folder)  # new file, mode 0600
    header = f"fds {__version__}, Python {platform.python_version()}, command: {command}\n\n"
    with os.fdopen(fd, "w", encoding="utf-8") as log:
        log.write(header + "".join(traceback.format_exception(exc)))
    return Path(path)
