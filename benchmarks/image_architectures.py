"""Which networks decode images best (what `architecture: auto` picks, issue 13 item 1 / issue 19):
MLP, stride-2 convolutions, and the what/where networks, as a plain `vae` on `shapes` (32×32) and
`digits` (8×8), at the same epochs.

Each run trains `FDS(preset="vae", latent_dim=10, hidden_dims=[512, 256], architecture=A)` and
reports, on the test split: reconstruction MSE (pixels in [0, 1]), ELBO (nats per image), CPU
seconds of training (one thread: a busy machine stretches wall time, not CPU time), and on shapes
the share of reconstructions a convolutional shape classifier (fitted on real training sprites,
`fds.evaluation.key.fit_image_classifier`) reads as the right shape: a blob scores the majority.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/image_architectures.py [--repeats 3]
        [--shapes-epochs 15] [--digits-epochs 100] [--datasets shapes,digits]
        [--architectures mlp,conv,what_where] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
from _common import emit_json, environment, print_table

from fds import FDS
from fds.data.datasets import load_builtin
from fds.evaluation.key import fit_image_classifier

ARCHITECTURES = ("mlp", "conv", "what_where")
MODEL = {"preset": "vae", "latent_dim": 10, "hidden_dims": [512, 256], "verbose": False}


def run(data: str, arch: str, epochs: int, seed: int, quick: bool) -> dict[str, Any]:
    n_train = 1000 if quick else (10_000 if data == "shapes" else None)
    n_test = 300 if quick else (2000 if data == "shapes" else None)
    train = load_builtin(data, split="train", n=n_train, seed=seed)
    test = load_builtin(data, split="test", n=n_test, seed=seed)
    started = time.process_time()
    model = FDS(**MODEL, architecture=arch, epochs=epochs, seed=seed).fit(train.X)
    cpu = time.process_time() - started
    row: dict[str, Any] = {
        "data": data,
        "architecture": arch,
        "seed": seed,
        "mse": model.reconstruction_mse(test.X),
        "elbo": float(model.score(test.X)),
        "cpu_s": cpu,
        "shape_accuracy": None,
    }
    if data == "shapes":
        encode, chw = model.codec_.encode, model.codec_.chw
        classify = fit_image_classifier(encode(train.X[:4000]), train.labels[:4000], chw, seed=0)
        rebuilt = encode(model.inverse_transform(model.transform(test.X)))
        row["shape_accuracy"] = float(np.mean(classify(rebuilt) == test.labels))
        row["shape_accuracy_originals"] = float(np.mean(classify(encode(test.X)) == test.labels))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="seeds 0..K-1")
    parser.add_argument("--shapes-epochs", type=int, default=15)
    parser.add_argument("--digits-epochs", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, few images")
    parser.add_argument("--datasets", default="shapes,digits")
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    args = parser.parse_args()
    datasets, architectures = args.datasets.split(","), args.architectures.split(",")
    repeats = 1 if args.quick else args.repeats
    epochs = {"shapes": args.shapes_epochs, "digits": args.digits_epochs}
    if args.quick:
        epochs = {"shapes": 2, "digits": 2}
    runs = [
        run(data, arch, epochs[data], seed, args.quick)
        for seed in range(repeats)
        for data in datasets
        for arch in architectures  # alternate, so a slow spell hits every architecture
    ]
    medians: dict[str, dict[str, Any]] = {}
    rows = []
    for data in datasets:
        for arch in architectures:
            mine = [r for r in runs if r["data"] == data and r["architecture"] == arch]
            entry = {
                name: statistics.median(r[name] for r in mine)
                for name in ("mse", "elbo", "cpu_s", "shape_accuracy")
                if mine[0][name] is not None
            }
            medians[f"{data}/{arch}"] = entry
            accuracy = entry.get("shape_accuracy", float("nan"))
            rows.append([data, arch, entry["mse"], entry["elbo"], entry["cpu_s"], accuracy])
    print(
        f"medians of {repeats} seeds; shapes {epochs['shapes']} epochs, digits {epochs['digits']}"
    )
    print_table(["data", "architecture", "MSE", "ELBO", "CPU s", "shape acc."], rows)
    best = {
        data: min(architectures, key=lambda a: medians[f"{data}/{a}"]["mse"]) for data in datasets
    }
    emit_json(
        {
            "medians": medians,
            "best_mse": best,
            "epochs": epochs,
            "repeats": repeats,
            "quick": args.quick,
            "per_run": runs,
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
