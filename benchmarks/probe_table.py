"""The Fashion-MNIST probe table (issue 3): how much of the class each model's latents keep.

For each preset (`vae`, `beta_vae`, `sparse_ae`, `ae`), an FDS with latent_dim 16, MLP
784-512-512, Bernoulli likelihood, batch 128, Adam lr 1e-3, trained for 10 epochs on the 60k
training images (val_fraction 0: every training image is used). Its posterior means (codes, for
the deterministic presets) of the training images fit a probe head, scored on the 10k test images;
beside them, the same head on the raw pixels (784 values in [0, 1]). The head is the
`logistic` probe of `fds.evaluation.probes`: StandardScaler + LogisticRegression(max_iter=1000).
`--heads logistic,knn` adds others. Metrics: accuracy, balanced accuracy, macro-F1; the table
also gives each model's test reconstruction MSE and training time.

When Fashion-MNIST is not installed the benchmark says so and is skipped (its JSON line has
"skipped": true).

    .venv/bin/python benchmarks/probe_table.py [--epochs 10] [--n-train 60000] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch
from _common import BATCH, HIDDEN, LATENT_DIM, LR, emit_json, environment, print_table

from fds import FDS
from fds.data.datasets import load_builtin
from fds.errors import DataError
from fds.evaluation.probes import run_probe

PRESETS = ("vae", "beta_vae", "sparse_ae", "ae")
SPEC: dict[str, Any] = {
    "latent_dim": LATENT_DIM,
    "hidden_dims": list(HIDDEN),
    "architecture": "mlp",
    "likelihood": "bernoulli",
    "batch_size": BATCH,
    "lr": LR,
    "val_fraction": 0.0,
}
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


def load(split: str, n: int | None) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        data = load_builtin("fashion-mnist", split=split, n=n)
    except DataError:
        return None
    return data.X, np.asarray(data.labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=None, help="training images (all 60k)")
    parser.add_argument("--n-test", type=int, default=None, help="test images (all 10k)")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--heads", default="logistic", help="probe heads, comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.n_train, args.n_test = 1, 2000, 1000
    presets = args.presets.split(",")
    heads = args.heads.split(",")

    train, test = load("train", args.n_train), load("test", args.n_test)
    if train is None or test is None:
        reason = (
            "fashion-mnist is not installed: apt-get install dataset-fashion-mnist, or set "
            "FDS_FASHION_MNIST to a folder holding the four IDX files"
        )
        print(f"probe_table: SKIPPED, {reason}")
        emit_json({"benchmark": "probe_table", "skipped": True, "reason": reason})
        return
    (X_train, y_train), (X_test, y_test) = train, test

    started = time.perf_counter()
    pixels = (X_train.reshape(len(X_train), -1) / 255.0, X_test.reshape(len(X_test), -1) / 255.0)
    baseline = run_probe(*pixels[:1], y_train, pixels[1], y_test, heads=heads, seed=args.seed)
    raw_s = time.perf_counter() - started
    for row in baseline["rows"]:
        row["features"] = "raw"  # run_probe calls whatever it is given "latent"
    print(f"raw pixels: probes fitted in {raw_s:.0f} s", file=sys.stderr, flush=True)

    results: dict[str, dict[str, Any]] = {}
    for preset in presets:
        started = time.perf_counter()
        model = FDS(preset=preset, epochs=args.epochs, seed=args.seed, verbose=False, **SPEC)
        model.fit(X_train)
        train_s = time.perf_counter() - started
        probe = run_probe(
            model.transform(X_train), y_train, model.transform(X_test), y_test,
            heads=heads, seed=args.seed,
        )  # fmt: skip
        results[preset] = {
            "rows": probe["rows"],
            "test_mse": model.reconstruction_mse(X_test),
            "train_s": train_s,
        }
        accuracy = probe["rows"][0]["accuracy"]
        print(
            f"{preset:10s} {heads[0]} accuracy {accuracy:.4f}  train {train_s:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    print(
        f"\nFashion-MNIST probe table: {len(X_train)} train / {len(X_test)} test images, "
        f"latent_dim {LATENT_DIM}, MLP {'-'.join(map(str, HIDDEN))}, {args.epochs} epochs, "
        f"seed {args.seed}, threads {torch.get_num_threads()}"
    )
    table: list[list[Any]] = []
    nan = float("nan")
    for head in heads:
        for preset in presets:
            (row,) = [r for r in results[preset]["rows"] if r["head"] == head]
            mse, seconds = results[preset]["test_mse"], float(round(results[preset]["train_s"]))
            table.append([preset, head, *(row[m] for m in METRICS), mse, seconds])
        (raw,) = [r for r in baseline["rows"] if r["head"] == head]
        table.append(["raw pixels (784-d)", head, *(raw[m] for m in METRICS), nan, nan])
    print_table(
        ["features", "head", "accuracy", "balanced acc", "macro-F1", "test MSE", "train s"], table
    )
    emit_json(
        {
            "benchmark": "probe_table",
            "skipped": False,
            "n_train": len(X_train),
            "n_test": len(X_test),
            "epochs": args.epochs,
            "seed": args.seed,
            "heads": heads,
            "model": SPEC,
            "presets": results,
            "raw_pixels": {"rows": baseline["rows"], "seconds": raw_s},
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
