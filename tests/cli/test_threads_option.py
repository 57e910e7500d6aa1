"""`--threads N` on the commands that train or evaluate: the count is used, recorded in the run's
config (so --resume keeps it), and a count below 1 is a usage error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import fds

RUN = ["--data", "digits", "--epochs", "1", "--latent-dim", "3", "--quiet", "--json"]


def test_train_and_evaluate_take_threads(tmp_path: Path, monkeypatch) -> None:
    from fds.workflows import evaluate

    used: list[int] = []
    real = evaluate.threads_in_use
    monkeypatch.setattr(evaluate, "threads_in_use", lambda n: used.append(n) or real(n))
    run = tmp_path / "run"
    assert fds("train", *RUN, "--threads", 1, "--out", run).exit_code == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["threads"] == 1
    result = fds("evaluate", run, "--fast", "--threads", 1, "--json")
    assert result.exit_code == 0, result.output
    assert used == [1]


@pytest.mark.parametrize(
    "command", [["train", *RUN, "--out", "x"], ["quickstart"], ["evaluate", "x"]]
)
def test_threads_below_one_is_a_usage_error(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = fds(*command, "--threads", 0)
    assert result.exit_code == 2
    assert "--threads" in result.output
    assert not (tmp_path / "x").exists()
