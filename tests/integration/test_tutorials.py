"""Every tutorial notebook in docs/tutorials runs top to bottom, so the docs cannot rot: each is
executed in a fresh kernel in a temporary folder, and its own assert cells check what it shows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra")

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"
BUDGET_SECONDS = 60  # the goal: each tutorial under a minute here

pytestmark = pytest.mark.slow  # each trains at least one small model


@pytest.mark.parametrize("path", sorted(TUTORIALS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_tutorial_runs(path, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    book = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    nbclient.NotebookClient(
        book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    seconds = time.perf_counter() - started
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    print(f"{path.name}: {seconds:.1f} s (budget {BUDGET_SECONDS} s on an idle machine)")


def test_the_tutorials_page_lists_every_notebook() -> None:
    page = (TUTORIALS / "index.md").read_text()
    for path in TUTORIALS.glob("*.ipynb"):
        assert f"({path.name})" in page, f"{path.name} is not linked from docs/tutorials/index.md"
