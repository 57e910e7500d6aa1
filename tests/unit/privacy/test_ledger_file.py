"""The ledger file under misuse: corrupt content is one line naming it, a failed write leaves the
old ledger and no temporary file, and parallel releases can neither exceed the budget nor lose an
entry (the check and the record are one locked transaction)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from fds import FDS
from fds.errors import FDSError, ModelFormatError, PrivacyBudgetError
from fds.privacy.ledger import Ledger, release_entry
from fds.privacy.release import release_metadata
from fds.rundir import LEDGER_FILE
from tests.conftest import FAST

ENTRY = {
    "kind": "release",
    "epsilon": 1.0,
    "delta": 1e-5,
    "noise_multiplier": 1.2,
    "sample_rate": 1.0,
    "steps": 1,
}


def _state(**changes) -> dict:
    return {"format": "fds-privacy-ledger", "budget": None, "delta": None, "datasets": {}} | changes


CORRUPT = {
    "a-list": b"[]",
    "garbage": b"\x00\xffnot json",
    "not-utf8-json": b'{"format": "\xff"}',
    "another-format": json.dumps({"format": "something"}).encode(),
    "datasets-list": json.dumps(_state(datasets=[])).encode(),
    "budget-text": json.dumps(_state(budget="5")).encode(),
    "budget-negative": json.dumps(_state(budget=-1)).encode(),
    "delta-two": json.dumps(_state(delta=2)).encode(),
    "entries-missing": json.dumps(_state(datasets={"fp": {"name": "d"}})).encode(),
    "entry-without-epsilon": json.dumps(
        _state(datasets={"fp": {"name": "d", "entries": [{"kind": "release"}]}})
    ).encode(),
    "entry-nan-noise": json.dumps(
        _state(datasets={"fp": {"name": "d", "entries": [ENTRY | {"noise_multiplier": None}]}})
    ).encode(),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_a_corrupt_ledger_is_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    path = tmp_path / LEDGER_FILE
    path.write_bytes(CORRUPT[case])
    for read in (Ledger.load, lambda p: Ledger.transaction(p).__enter__()):
        with pytest.raises(ModelFormatError) as info:
            read(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_a_failed_write_keeps_the_old_ledger_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch
) -> None:
    path = tmp_path / LEDGER_FILE
    ledger = Ledger.load(path)
    ledger.add("fp", "data", ENTRY)
    ledger.save()
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with Ledger.transaction(path) as locked:
        locked.add("fp", "data", ENTRY)
        monkeypatch.setattr("fds.rundir.os.fsync", fail)
        with pytest.raises(OSError, match="No space"):
            locked.save()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".{LEDGER_FILE}.lock", LEDGER_FILE]


def test_a_save_over_a_ledger_changed_since_it_was_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    stale = Ledger.load(path)
    with Ledger.transaction(path) as other:
        other.add("fp", "data", ENTRY)
        other.save()
    stale.set_budget(4.0, None)
    with pytest.raises(FDSError, match="changed by another command"):
        stale.save()
    assert len(Ledger.load(path).entries("fp")) == 1  # the other command's entry is kept


# ------------------------------------------------------------------------ parallel releases
N_PARALLEL, N_ADMITTED, EPSILON = 8, 3, 1.0


def _release_in_a_process(run: str, data: str, out: str, start, results) -> None:
    """One `fds release` in its own process, started together with the others."""
    from fds.workflows.release import release_run

    start.wait()
    try:
        release_run(run, data, out, epsilon=EPSILON, delta=1e-5)
        results.put(("released", out, ""))
    except FDSError as exc:
        results.put((type(exc).__name__, out, str(exc)))


@pytest.mark.slow
def test_parallel_releases_never_exceed_the_budget_nor_lose_an_entry(tmp_path: Path, census):
    run = tmp_path / "run"
    FDS(**FAST).fit(census).save(run / "model")
    data = tmp_path / "census.csv"
    census.to_csv(data, index=False)
    # a budget between the composed totals of 3 and of 4 releases of this size
    entry = release_entry(release_metadata(EPSILON, 1e-5, np.sqrt(FAST["latent_dim"]), len(census)))
    scratch = Ledger.load(tmp_path / "scratch.json")
    totals = []
    for _ in range(N_ADMITTED + 1):
        scratch.add("fp", "census", entry)
        totals.append(scratch.total_epsilon("fp"))
    with Ledger.transaction(run / LEDGER_FILE) as ledger:
        ledger.set_budget((totals[-2] + totals[-1]) / 2, None)
        ledger.save()

    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(N_PARALLEL), context.Queue()
    outs = [str(tmp_path / f"z{i}.npy") for i in range(N_PARALLEL)]
    workers = [
        context.Process(
            target=_release_in_a_process, args=(str(run), str(data), out, start, results)
        )
        for out in outs
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=240) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    released = sorted(out for kind, out, _ in outcomes if kind == "released")
    refused = [(kind, message) for kind, _, message in outcomes if kind != "released"]
    assert len(released) == N_ADMITTED, outcomes
    assert all(kind == PrivacyBudgetError.__name__ for kind, _ in refused), refused
    assert all("over the budget" in message for _, message in refused)
    # only the admitted releases wrote latents; the ledger holds exactly them, totalled right
    assert sorted(str(p) for p in tmp_path.glob("z*.npy")) == released
    ledger = Ledger.load(run / LEDGER_FILE)
    (fingerprint,) = ledger.state["datasets"]
    assert len(ledger.entries(fingerprint)) == N_ADMITTED
    assert ledger.total_epsilon(fingerprint) == pytest.approx(totals[N_ADMITTED - 1])
