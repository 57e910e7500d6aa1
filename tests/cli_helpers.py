"""Running the `fds` CLI in-process, and the error contract every command shares."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from fds.cli import app

runner = CliRunner()


def fds(*args: object) -> Result:
    """`fds ARGS…` in-process; paths and numbers may be passed as they are."""
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result: Result, *needles: str) -> str:
    """Bad input: exit code 2 and exactly one line on stderr, naming each of `needles`."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def refuses_train_config(tmp_path: Path, yaml_text: str, *needles: str) -> None:
    """`fds train --data census` with a config file holding `yaml_text` is refused: one line
    naming each of `needles`, exit code 2, and no run directory left behind."""
    config = tmp_path / "fds.yaml"
    config.write_text(yaml_text)
    out = tmp_path / "run"
    one_line_error(fds("train", "--data", "census", "--config", config, "--out", out), *needles)
    assert not out.exists()


def train_run(data: object, config: object, out: object) -> object:
    """`fds train --data DATA --config CONFIG --out OUT`, which must succeed; returns OUT."""
    result = fds("train", "--data", data, "--config", config, "--out", out, "--quiet", "--json")
    assert result.exit_code == 0, result.output
    return out
