"""The CLI's error boundary: a crash is one line plus a crash log and never shows the user's data,
user text is printed literally (never read as Rich markup), Ctrl-C exits 130."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from rich.traceback import Traceback

import fds.workflows.train as train_workflow
from fds.cli import main
from tests.cli_helpers import fds, one_line_error

MARKER = "SECRET-MARKER-7f3a"
FAST_YAML = "latent_dim: 2\nhidden_dims: [16]\nepochs: 1\nbatch_size: 32\n"


def _crash_on_the_table(params: dict, out: object, **kwargs: object) -> None:
    """Stands in for the train workflow: reads the user's table, then fails with it in scope."""
    table = pd.read_csv(params["data"])  # noqa: F841  (a local holding the user's rows)
    raise RuntimeError("injected crash while processing the table")


def test_a_crash_is_one_line_and_a_log_without_the_users_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "people.csv"
    pd.DataFrame({"name": [MARKER, f"{MARKER}-2"], "age": [31, 47]}).to_csv(csv, index=False)
    # The injected crash does hold the marker in its locals: a traceback that shows them leaks it.
    try:
        _crash_on_the_table({"data": csv}, None)
    except RuntimeError as exc:
        shown = io.StringIO()
        Console(file=shown, width=200).print(
            Traceback.from_exception(type(exc), exc, exc.__traceback__, show_locals=True)
        )
        assert MARKER in shown.getvalue()

    monkeypatch.setattr(train_workflow, "train_run", _crash_on_the_table)
    monkeypatch.setenv("FDS_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # typer installs its own hook
    argv = ["fds", "train", "--data", str(csv), "--out", str(tmp_path / "run"), "--json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        main()
    out, err = capfd.readouterr()
    assert stopped.value.code == 1
    assert out == ""  # --json: stdout stays clean
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    found = re.fullmatch(
        r"fds: internal error in train: RuntimeError \(details in (.+)\)", lines[0]
    )
    assert found, lines[0]
    log = Path(found.group(1))
    assert log.parent == tmp_path / "logs" and log.name.startswith("fds-crash-")
    text = log.read_text()
    assert "Traceback" in text and "injected crash while processing the table" in text
    assert MARKER not in out + err + text


def test_ctrl_c_exits_130_with_the_workflows_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The boundary prints what the interrupted work says happened (tests/test_run_safety.py
    checks that train's line tells the truth about its checkpoints), and nothing else."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("nothing was written to RUN")

    monkeypatch.setattr(train_workflow, "train_run", interrupted)
    result = fds("train", "--data", "census", "--out", tmp_path / "run")
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted: nothing was written to RUN"


@pytest.fixture(scope="module")
def markup_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CSV at `…/[/red]x[/b].csv` (a folder `[`, then `red]x[`) whose columns are `[/red]`
    and `x[/b]`, and whose categories look like markup too."""
    folder = tmp_path_factory.mktemp("markup") / "[" / "red]x["
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "[/red]": rng.normal(size=120),
            "x[/b]": rng.choice(["[bold]a", "b"], size=120),
            "plain": rng.normal(size=120),
        }
    )
    path = folder / "b].csv"
    table.to_csv(path, index=False)
    (folder / "fast.yaml").write_text(FAST_YAML)
    return path


def test_markup_in_file_and_column_names_is_shown_literally(
    markup_table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fds.cli.common import out_console

    # long paths on one line, so they can be matched (the console may predate any COLUMNS set here)
    monkeypatch.setattr(out_console, "width", 500)
    assert str(markup_table).endswith("[/red]x[/b].csv")
    run = markup_table.parent / "[bold]run"
    config = markup_table.parent / "fast.yaml"
    trained = fds("train", "--data", markup_table, "--config", config, "--out", run, "--quiet")
    assert trained.exit_code == 0, trained.output
    assert str(run) in trained.stdout

    latents = markup_table.parent / "x[/b].npy"
    encoded = fds("encode", "--model", run, "--data", markup_table, "--out", latents)
    assert encoded.exit_code == 0, encoded.output
    assert str(latents) in encoded.stdout and latents.is_file()

    lacking = markup_table.parent / "lacking.csv"
    pd.read_csv(markup_table).drop(columns=["x[/b]"]).to_csv(lacking, index=False)
    result = fds("encode", "--model", run, "--data", lacking, "--out", latents, "--overwrite")
    one_line_error(result, "'x[/b]'")


def test_a_missing_file_named_like_markup_is_named_literally(tmp_path: Path) -> None:
    result = fds("train", "--data", "[bold]missing.csv", "--out", tmp_path / "run")
    one_line_error(result, "[bold]missing.csv")
    assert not (tmp_path / "run").exists()


def test_an_output_path_under_a_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder\n")
    result = fds("train", "--data", "census", "--out", tmp_path / "afile" / "run")
    one_line_error(result, str(tmp_path / "afile"), "is a file, not a folder")
