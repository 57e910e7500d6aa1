"""The `fds` command: parse → call the API → print a summary (rich) or one JSON object (--json).

One module per command group; each imports what it needs (torch, the estimator, the workflows)
inside its commands, so `fds --help` and `fds COMMAND --help` stay fast.
"""

from __future__ import annotations

from fds.cli import data, evaluate, federated, he, metadata, privacy, probe, tune
from fds.cli.common import new_typer

__all__ = ["app", "main"]

app = new_typer(
    help="FDS: factorized autoencoders that decompose, synthesize and protect sensitive data.",
    add_completion=False,
    rich_markup_mode="markdown",
)
# The order here is the order of `fds --help`: the commands, then the command groups.
for commands in (data.app, evaluate.app, tune.app, he.app, privacy.app):
    app.add_typer(commands)
app.add_typer(probe.app, name="probe")
app.add_typer(he.keys_app, name="keys")
app.add_typer(privacy.ledger_app, name="ledger")
app.add_typer(federated.app, name="federated")
app.add_typer(metadata.app, name="metadata")


def main() -> None:
    """The `fds` console script."""
    app()
