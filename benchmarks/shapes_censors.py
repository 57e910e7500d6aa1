"""Censors of the shapes public block (issue 12's "shapes: public leakage ≤ majority + 0.15"): one
run of the quickstart's model with config overrides, and where the shape leaks from.

Prints and emits (JSON) for one seed: the training CPU seconds (process time); a gradient-boosting
attacker's shape accuracy on the public posterior means of every training sprite, scored on the
held-out ones — on the whole block, on each coordinate, on the block's residual within each
(x, y, scale) cell (each code minus its cell's mean code) and on posterior draws; the public
block's R² for x, y and scale; the key group (`fds.workflows.key_quality`); and the leakage
estimator's figure (`fds.workflows.leakage.measure_leakage`, `--truthful` or the fast budget).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/shapes_censors.py \\
        '{"epochs": 12, "mmd": 300, "mmd_estimate": "unbiased"}' [--seed 0] [--truthful]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd
from _common import emit_json, environment, print_table, swap_and_leakage
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from fds import FDS
from fds.data.files import read_data
from fds.privacy.leakage import FAST, TRUTHFUL
from fds.workflows.key_quality import key_quality
from fds.workflows.leakage import attacker_rows, measure_leakage
from fds.workflows.quickstart import quickstart_params
from fds.workflows.train import split_run_params

ROUNDS = 200  # boosting rounds of the probes


def _accuracy(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    model = HistGradientBoostingClassifier(max_iter=ROUNDS, random_state=0).fit(X[train], y[train])
    return float((model.predict(X[test]) == y[test]).mean())


def _r2(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    model = HistGradientBoostingRegressor(max_iter=ROUNDS, random_state=0).fit(X[train], y[train])
    error = model.predict(X[test]) - y[test]
    return float(1 - (error**2).sum() / ((y[test] - y[test].mean()) ** 2).sum())


def run(overrides: dict[str, Any], seed: int, truthful: bool) -> dict[str, Any]:
    data = read_data("shapes", seed=seed)
    shape = data.factors["shape"].to_numpy()
    started = time.process_time()
    shapes, _ = split_run_params(quickstart_params(overrides.get("epochs")))
    params = shapes | {"seed": seed, "verbose": False} | overrides
    model = FDS(**params).fit(data.X, sensitive=pd.DataFrame({"factor:shape": shape}))
    cpu = time.process_time() - started
    train, test, _ = attacker_rows(model, len(data.X), seed)
    cut = model.model_.public_dim
    public = model.transform(data.X)[:, :cut]
    draws = model.transform(data.X, sample=True, seed=seed)[:, :cut]
    cells = data.factors[["x", "y", "scale"]].astype(str).agg("/".join, axis=1).to_numpy()
    residual = public - pd.DataFrame(public).groupby(cells).transform("mean").to_numpy()
    key = key_quality(model, data, seed=seed)["attributes"]["factor:shape"]
    budget = TRUTHFUL if truthful else FAST
    leak = measure_leakage(model, data, seed=seed, budget=budget, blocks=("public",))
    public_leak = leak["attributes"]["factor:shape"]["public"]
    return {
        "overrides": overrides,
        "seed": seed,
        "train_cpu_s": cpu,
        "boosting_public": _accuracy(public, shape, train, test),
        "boosting_per_coordinate": [
            _accuracy(public[:, [i]], shape, train, test) for i in range(cut)
        ],
        "boosting_residual_in_cell": _accuracy(residual, shape, train, test),
        "boosting_draws": _accuracy(draws, shape, train, test),
        "r2": {
            c: _r2(public, data.factors[c].to_numpy(float), train, test)
            for c in ("x", "y", "scale")
        },
        "keyed_ratio": key["keyed_fidelity"]["attribute_ratio"],
        **swap_and_leakage(key, public_leak),
        "leakage_budget": budget.name,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="?", default="{}", help="JSON of FDS parameters")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--truthful", action="store_true", help="the truthful leakage budget")
    args = parser.parse_args()
    result = run(json.loads(args.overrides), args.seed, args.truthful)
    print_table(
        ["figure", "value"],
        [
            ["boosting, public block", result["boosting_public"]],
            ["boosting, residual within (x, y, scale)", result["boosting_residual_in_cell"]],
            ["boosting, draws", result["boosting_draws"]],
            [f"leakage ({result['leakage_budget']})", result["leakage"]],
            ["leakage majority", result["leakage_majority"]],
            ["keyed ÷ originals", result["keyed_ratio"]],
            ["swap success", result["swap_success"]],
            ["swap position R²", result["swap_position_r2"]],
            ["training CPU s", result["train_cpu_s"]],
        ],
    )
    emit_json(result | environment())


if __name__ == "__main__":
    main()
