"""Weight averaging (`ema_decay`) on the small procedural image sets, side by side with none.

For each data set of benchmarks/peers.py (`shapes`, `balls`) and seed, trains FDS's conv `vae`
(scored by its test reconstruction MSE) and conv `beta_tcvae` (scored by MIG and DCI
disentanglement, as peers.py scores it) at each decay, on the same images, with peers.py's
model spec, batch and learning rate. Decay 0 is FDS without averaging, so every row compares
with the first of its group in one run. The Fashion-MNIST and key figures come from
fashion_quality.py (`auto_ema…` variants) and key.py (`--shapes-params '{"ema_decay": …}'`);
docs/peers.md#weight-averaging has all three.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/weight_average.py \\
        [--decays 0,0.99,0.999] [--seeds 1] [--epochs 10] [--n 4000] [--n-test 2000] [--quick]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from _common import emit_json, environment, median, print_table
from peers import SPEC, images_for, score

from fds import FDS
from fds.config import TRAINING_DEFAULTS

PRESETS = ("vae", "beta_tcvae")


def train(data: dict[str, Any], preset: str, decay: float, epochs: int, seed: int) -> dict:
    """One model; its test MSE (vae) or disentanglement scores (beta_tcvae), and CPU seconds."""
    torch.set_num_threads(1)
    defaults = TRAINING_DEFAULTS["other"]  # peers.py's FDS batch and lr
    options = SPEC | {"preset": preset, "ema_decay": decay, "epochs": epochs, "seed": seed}
    options |= {"batch_size": defaults["batch_size"], "lr": defaults["lr"]}
    cpu = time.process_time()
    model = FDS(**options).fit(data["train"])
    cpu = time.process_time() - cpu
    if preset == "vae":
        return {"mse": model.reconstruction_mse(data["test"]), "cpu_seconds": cpu}
    run = {"codes": model.transform(data["test"]), "seconds": cpu, "cpu_seconds": cpu}
    scores = score(data, run, fast=False)
    return {"mig": scores["mig"], "dci_d": scores["dci_disentanglement"], "cpu_seconds": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decays", default="0,0.99,0.999", help="comma-separated ema_decay values")
    parser.add_argument("--datasets", default="shapes,balls")
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..K-1 (data and init)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n", type=int, default=4000, help="training images per data set")
    parser.add_argument("--n-test", type=int, default=2000, help="held-out images scored")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, 500 images")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs, args.n, args.n_test = 1, 1, 500, 500
    decays = [float(d) for d in args.decays.split(",")]
    presets = args.presets.split(",")
    runs = []
    for seed in range(args.seeds):
        for name in args.datasets.split(","):
            data = images_for(name, args.n, args.n_test, seed)
            for preset in presets:
                for decay in decays:
                    row = {"data": name, "preset": preset, "ema_decay": decay, "seed": seed}
                    runs.append(row | train(data, preset, decay, args.epochs, seed))
                    print(runs[-1], flush=True)
    rows, medians = [], {}
    for name in args.datasets.split(","):
        for preset in presets:
            for decay in decays:
                mine = [
                    r
                    for r in runs
                    if (r["data"], r["preset"], r["ema_decay"]) == (name, preset, decay)
                ]
                scores = [k for k in ("mse", "mig", "dci_d", "cpu_seconds") if k in mine[0]]
                entry = {k: median([r[k] for r in mine]) for k in scores}
                medians[f"{name}/{preset}/{decay}"] = entry
                shown = " ".join(f"{k} {v:.4g}" for k, v in entry.items())
                rows.append([name, preset, decay, shown])
    print(f"medians of {args.seeds} seed(s); {args.epochs} epochs on {args.n} images")
    print_table(["data", "preset", "ema_decay", "scores"], rows)
    emit_json(
        {
            "benchmark": "weight_average",
            "decays": decays,
            "epochs": args.epochs,
            "n_train": args.n,
            "n_test": args.n_test,
            "seeds": args.seeds,
            "medians": medians,
            "runs": runs,
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
