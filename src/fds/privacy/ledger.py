"""The privacy ledger: every DP computation on a data set, composed by an accountant, with a budget.

`RUN/privacy_ledger.json` (next to `RUN/model/`, which is replaced atomically on save) holds, per data
set fingerprint, one entry per DP-SGD training run and per DP release. Each entry is a (subsampled)
Gaussian mechanism — noise multiplier σ/Δ, sample rate q, steps — so the total is the composition of
all of them by Opacus' RDP accountant, reported as ε at the ledger's δ. A configured budget is
checked BEFORE a release writes anything (`Ledger.check`); an over-budget release is refused.

Concurrent commands on one run (parallel releases, a release during training) go through
`Ledger.transaction`, which holds a file lock (`.privacy_ledger.json.lock`, left in place: deleting
a lock file races) from the read through the check to the write, so no two can both pass the
budget or drop each other's entry. A `save` outside a transaction refuses to overwrite a ledger
another process changed since it was read.

The ledger's δ is the one set with `fds ledger set-budget`, else the smallest δ of its entries.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from fds.errors import ConfigError, FDSError, ModelFormatError, PrivacyBudgetError
from fds.io import resolve_model_dir
from fds.rundir import LEDGER_FILE, write_json
from fds.training.accounting import epsilon_spent

ACCOUNTANT = "rdp"


def data_fingerprint(X: pd.DataFrame | np.ndarray) -> str:
    """sha256 of the data's content (column names and values), so a ledger follows the data."""
    digest = hashlib.sha256()
    if isinstance(X, pd.DataFrame):
        digest.update(json.dumps([str(c) for c in X.columns]).encode())
        digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    else:
        X = np.asarray(X)
        digest.update(f"{X.shape}{X.dtype}".encode())
        for start in range(0, len(X), 4096):
            digest.update(np.ascontiguousarray(X[start : start + 4096]).tobytes())
    return digest.hexdigest()


def ledger_path(model: str | Path) -> Path:
    """The ledger file of a run directory (or of the folder holding a bare model directory)."""
    return resolve_model_dir(model).parent / LEDGER_FILE


class Ledger:
    """Read, check, extend and atomically rewrite one ledger file."""

    def __init__(self, path: Path, state: dict[str, Any], raw: bytes | None = None) -> None:
        self.path, self.state = path, state
        self._raw = raw  # the file's bytes when read (None: there was no file)
        self._lock = FileLock(path.with_name(f".{path.name}.lock"))

    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        """A snapshot of the ledger (an empty one if the file does not exist yet)."""
        path = Path(path)
        raw = _read_raw(path)
        if raw is None:
            empty = {"format": "fds-privacy-ledger", "budget": None, "delta": None, "datasets": {}}
            return cls(path, empty)
        try:
            state = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ModelFormatError(f"{path} is not valid JSON") from None
        problem = _state_problem(state)
        if problem is not None:
            raise ModelFormatError(f"{path} is not a valid FDS privacy ledger: {problem}")
        return cls(path, state, raw)

    @classmethod
    @contextmanager
    def transaction(cls, path: str | Path) -> Iterator[Ledger]:
        """The ledger, locked against every other process from this read to the end of the block:
        check, do the DP work and `save` inside it."""
        lock = FileLock(Path(path).with_name(f".{Path(path).name}.lock"))
        with lock:
            ledger = cls.load(path)
            ledger._lock = lock
            yield ledger

    # ------------------------------------------------------------------ figures
    def entries(self, fingerprint: str) -> list[dict[str, Any]]:
        return self.state["datasets"].get(fingerprint, {}).get("entries", [])

    def delta(self, extra: list[dict[str, Any]] = ()) -> float:
        if self.state.get("delta") is not None:
            return float(self.state["delta"])
        deltas = [e["delta"] for d in self.state["datasets"].values() for e in d["entries"]]
        deltas += [e["delta"] for e in extra]
        return min(deltas) if deltas else 1e-5

    def total_epsilon(self, fingerprint: str, extra: list[dict[str, Any]] = ()) -> float:
        """ε at the ledger's δ of every entry on this data set (plus `extra`), composed."""
        entries = [*self.entries(fingerprint), *extra]
        history = [(e["noise_multiplier"], e["sample_rate"], e["steps"]) for e in entries]
        return epsilon_spent(history, self.delta(extra), ACCOUNTANT)

    def check(self, fingerprint: str, entry: dict[str, Any]) -> float:
        """The total ε with `entry` added; raises PrivacyBudgetError if that exceeds the budget."""
        total = self.total_epsilon(fingerprint, [entry])
        budget = self.state.get("budget")
        if budget is not None and total > budget:
            before = self.total_epsilon(fingerprint)
            raise PrivacyBudgetError(
                f"refused: this {entry['kind']} (ε = {entry['epsilon']:g}) would bring the data "
                f"set's total to ε = {total:.4g} at δ = {self.delta([entry]):g} (spent so far "
                f"{before:.4g}), over the budget ε = {budget:g} in {self.path}"
            )
        return total

    # ------------------------------------------------------------------ changes
    def add(self, fingerprint: str, name: str, entry: dict[str, Any]) -> None:
        data = self.state["datasets"].setdefault(fingerprint, {"name": name, "entries": []})
        data["entries"].append(entry | {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def remove(self, fingerprint: str, **match: Any) -> None:
        """Drop this data set's entries whose fields equal `match` (a run recorded again)."""
        data = self.state["datasets"].get(fingerprint)
        if data is not None:
            data["entries"] = [
                e for e in data["entries"] if any(e.get(k) != v for k, v in match.items())
            ]

    def set_budget(self, epsilon: float | None, delta: float | None) -> None:
        if epsilon is not None and not epsilon > 0:
            raise ConfigError(f"the budget's epsilon must be positive, got {epsilon}")
        if delta is not None and not 0 < delta < 1:
            raise ConfigError(f"the ledger's delta must be in (0, 1), got {delta}")
        self.state["budget"], self.state["delta"] = epsilon, delta

    def save(self) -> Path:
        """Write atomically under the lock; refused if another process changed the file since it
        was read (outside a transaction), so no entry or budget is lost."""
        with self._lock:
            if _read_raw(self.path) != self._raw:
                raise FDSError(
                    f"{self.path} was changed by another command while this one ran; run it again"
                )
            write_json(self.path, self.state)
            self._raw = _read_raw(self.path)
        return self.path

    def summary(self) -> dict[str, Any]:
        """What `fds ledger show` prints: budget, δ and each data set's entries and total ε."""
        return {
            "ledger": str(self.path),
            "budget_epsilon": self.state.get("budget"),
            "delta": self.delta(),
            "accountant": ACCOUNTANT,
            "datasets": [
                {
                    "fingerprint": fp,
                    "name": d["name"],
                    "entries": d["entries"],
                    "total_epsilon": self.total_epsilon(fp),
                }
                for fp, d in self.state["datasets"].items()
            ],
        }


def _read_raw(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from None


def _number(value: Any, low: float, high: float, *, open_low: bool = False) -> bool:
    """A JSON number (not a bool) in [low, high] (or (low, high] with `open_low`)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return (low < value if open_low else low <= value) and value <= high


def _state_problem(state: Any) -> str | None:
    """What makes a parsed ledger unusable, None when nothing does."""
    if not isinstance(state, dict) or state.get("format") != "fds-privacy-ledger":
        return "no fds-privacy-ledger object"
    if state.get("budget") is not None and not _number(state["budget"], 0, math.inf, open_low=True):
        return "budget must be a positive number or null"
    if state.get("delta") is not None and not _number(state["delta"], 0, 1, open_low=True):
        return "delta must be in (0, 1) or null"
    datasets = state.get("datasets")
    if not isinstance(datasets, dict):
        return "datasets must be an object"
    for fingerprint, data in datasets.items():
        if not (
            isinstance(data, dict)
            and isinstance(data.get("name"), str)
            and isinstance(data.get("entries"), list)
        ):
            return f"data set {fingerprint[:12]} needs a name and a list of entries"
        for entry in data["entries"]:
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("kind"), str)
                and _number(entry.get("epsilon"), 0, math.inf)
                and _number(entry.get("delta"), 0, 1, open_low=True)
                and _number(entry.get("noise_multiplier"), 0, math.inf, open_low=True)
                and _number(entry.get("sample_rate"), 0, 1, open_low=True)
                and isinstance(entry.get("steps"), int)
                and entry["steps"] >= 0
            ):
                return f"an entry of data set {fingerprint[:12]} is malformed"
    return None


def training_entry(privacy: dict[str, Any]) -> dict[str, Any]:
    """A ledger entry from the manifest's DP-SGD record."""
    keys = ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps", "max_grad_norm")
    return {"kind": "dp-sgd training"} | {k: privacy[k] for k in keys}


def statistics_entry(statistics: dict[str, Any]) -> dict[str, Any]:
    """A ledger entry for the codec's DP histograms (one Gaussian mechanism)."""
    keys = ("epsilon", "delta", "noise_multiplier", "sample_rate", "steps")
    return {"kind": "codec statistics"} | {k: statistics[k] for k in keys}


def release_entry(metadata: dict[str, Any]) -> dict[str, Any]:
    """A ledger entry for one Gaussian release: noise multiplier σ/Δ, every row, one step."""
    keys = ("epsilon", "delta", "noise_multiplier", "clip", "noise_std")
    return {"kind": "release", "sample_rate": 1.0, "steps": 1} | {k: metadata[k] for k in keys}
