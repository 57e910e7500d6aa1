"""Conditional sampling and constraints on census (issue 15, part 3), in one run:

1. how often unconstrained samples break each constraint (what rejection sampling throws away);
2. per condition: the share of unconditional samples that meet it (the acceptance rate), the
   seconds to get 1,000 conditional rows, and how faithful they are: the total-variation distance
   between the real rows' and the synthetic rows' `occupation` (or `sex`) given the condition,
   beside the same distance for unconditional samples. The latter is what "fixing" the
   conditioned column (overwriting it in unconditional samples, the shortcut rejection sampling
   does not take) gives: the other columns keep their unconditional distribution;
3. what training with the detected metadata file (`fds metadata detect` → `--metadata`: its
   supports become declared bounds) does to SDMetrics' quality on the held-out test split,
   beside training without metadata, per seed.

    .venv/bin/python benchmarks/conditions.py [--rows 5000] [--epochs 15] [--quick]

`--quick`: 1,500 rows, 3 epochs, one seed (a smoke test). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from _common import emit_json, environment, print_table

from fds import FDS
from fds.config import make_config
from fds.data.conditions import parse_conditions
from fds.data.constraints import describe, fit_constraints, holds
from fds.data.datasets import make_census
from fds.data.metadata import detect_metadata
from fds.evaluation.synthetic import table_quality

CONSTRAINTS = [
    {"type": "range", "column": "hours_per_week", "low": 5, "high": 80},
    {"type": "inequality", "low": "n_children", "high": "age"},
    {"type": "fixed_combinations", "columns": ["occupation", "education"]},
    {"type": "positive", "column": "income", "strict": True},
]
# condition, the column whose conditional distribution is compared
CONDITIONS = [
    (["sex=female"], "occupation"),
    (["occupation=craft"], "sex"),
    (["age>=60"], "occupation"),
    (["sex=female", "education=doctorate"], "occupation"),
]


def tv_distance(a: pd.Series, b: pd.Series) -> float:
    """Total variation between two categorical samples' frequencies."""
    p = a.astype(str).value_counts(normalize=True)
    q = b.astype(str).value_counts(normalize=True)
    return float(0.5 * p.subtract(q, fill_value=0).abs().sum())


def met(frame: pd.DataFrame, model: FDS, texts: list[str]) -> np.ndarray:
    specs = {c.name: c for c in model.codec_.columns}
    mask = np.ones(len(frame), bool)
    for condition in parse_conditions(texts, specs):
        mask &= condition.meets(frame)
    return mask


def metadata_quality(real: pd.DataFrame, args: argparse.Namespace) -> dict[str, list[dict]]:
    """SDMetrics' quality on the test split, without metadata and with the detected file."""
    test = make_census(n=len(real) // 2, seed=0, split="test")
    found: dict[str, list[dict]] = {}
    rows = []
    for name, params in (("none", {}), ("detected", detect_metadata(real).params())):
        for seed in range(args.seeds):
            model = FDS(epochs=args.epochs, seed=seed, verbose=False, **params).fit(real)
            quality = table_quality(test, model.sample(len(test), seed=seed))
            keys = ("quality_score", "column_shapes", "column_pair_trends")
            found.setdefault(name, []).append({k: quality[k] for k in keys})
            rows.append([name, seed, *(quality[k] for k in keys)])
    print_table(["metadata", "seed", "quality", "column shapes", "pair trends"], rows)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.samples, args.seeds = 1500, 3, 5000, 1
    torch.set_num_threads(1)
    real = make_census(n=args.rows, seed=0)
    model = FDS(epochs=args.epochs, seed=0, verbose=False).fit(real)
    free = model.sample(args.samples, seed=1)  # no constraints yet: the model's raw samples
    # Constraints play no part in training: the same weights, now sampling under them.
    rules = fit_constraints(make_config(constraints=CONSTRAINTS).constraints, real, private=False)
    model.config_ = model.config_.model_copy(update={"constraints": rules})

    broken = [(f"constraint {describe(r)}", float(1 - holds(r, free).mean())) for r in rules]
    print_table(["rule", "share of raw samples breaking it"], broken)
    print()
    rows, results = [], []
    for texts, target in CONDITIONS:
        started = time.perf_counter()
        conditional = model.sample(1000, seed=2, conditions=texts)
        seconds = time.perf_counter() - started
        truth = real[met(real, model, texts)][target]
        record = {
            "condition": " & ".join(texts),
            "target": target,
            "real_rows": len(truth),
            "acceptance": float(met(free, model, texts).mean()),
            "seconds_per_1000": seconds,
            "tv_rejection": tv_distance(truth, conditional[target]),
            "tv_unconditional": tv_distance(truth, free[target]),  # = fixing the column
        }
        results.append(record)
        rows.append(list(record.values()))
    print_table(
        ["condition", "target", "real rows", "acceptance", "s / 1000 rows", "TV rejection",
         "TV unconditional = fixing"],
        rows,
    )  # fmt: skip
    print()
    quality = metadata_quality(real, args)
    emit_json(
        {
            "benchmark": "conditions",
            "rows": args.rows,
            "epochs": args.epochs,
            "samples": args.samples,
            "broken": dict(broken),
            "conditions": results,
            "metadata_quality": quality,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
