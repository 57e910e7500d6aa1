"""`fds --help` and `fds COMMAND --help` must start fast: they may not import torch or
scikit-learn (importing torch alone takes seconds on a loaded machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Runs in a fresh interpreter: renders the help of the app and of every command and group found
# by walking the click tree, then reports what it rendered and which heavy modules got imported.
SCRIPT = """
import json, sys
import click, typer
from typer.testing import CliRunner
from fds.cli import app

def paths(command, path):
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from paths(sub, [*path, name])

runner = CliRunner()
rendered = {}
for path in paths(typer.main.get_command(app), []):
    result = runner.invoke(app, [*path, "--help"])
    rendered[" ".join(path)] = result.exit_code == 0 and "Usage" in result.output
heavy = [m for m in ("torch", "sklearn", "fds.estimator") if m in sys.modules]
print(json.dumps({"rendered": rendered, "heavy": heavy}))
"""


def test_help_of_every_command_imports_neither_torch_nor_sklearn() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"COLUMNS": "100"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    rendered = report["rendered"]
    assert {"", "train", "probe", "probe run", "keys new", "ledger show", "federated simulate"} <= (
        rendered.keys()
    )
    assert all(rendered.values()), [path for path, ok in rendered.items() if not ok]
    assert report["heavy"] == []
