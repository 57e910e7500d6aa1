"""FDS's conv β-TCVAE side by side with pythae's BetaTCVAE (issue 19): disentanglement and time.

Both libraries train the SAME convolutional networks (FDS's `architecture: conv`, four stride-2
4×4 convolutions 32-32-64-64 and a 256-wide dense layer, mirrored; pythae gets them as its custom
encoder/decoder, see benchmarks/peer_pythae.py) on the same images, for the same epochs, one
thread each, with the same objective: Bernoulli likelihood summed over pixels, MI + β·TC + dim-KL
with β = 6 (FDS's `beta_tcvae` preset: kl 1 + tc 5). The TC estimates differ in name only: FDS's
default minibatch-weighted sampling, and pythae's `use_mss` weights, which (copied from Chen et
al.'s code) amount to the same with one example left out (docs/peers.md). Each side trains with its library's own defaults otherwise (FDS: batch 128, lr 1e-3; pythae's trainer: batch
64, lr 1e-4); `--same-schedule` gives pythae FDS's batch and lr as well.

The codes (posterior means) of held-out images are scored by FDS's MIG, DCI and FactorVAE score
(src/fds/evaluation/disentanglement/) against the generating factors. Data sets: `shapes` (binary
sprites, 5 factors) and `balls` (RGB, two balls, 5 factors). pythae 0.1.2 lives in its own venv
(benchmarks/.envs/pythae, built on first use by benchmarks/peer_env.py).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peers.py [--seeds 3] [--epochs 10] [--n 10000]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/peers.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import emit_json, environment, median, print_table
from peer_env import ensure_env

from fds import FDS
from fds.config import TRAINING_DEFAULTS, FDSConfig
from fds.data.datasets import load_builtin
from fds.evaluation.disentanglement import evaluate_disentanglement

PYTHAE = ["pythae==0.1.2"]
WORKER = Path(__file__).resolve().parent / "peer_pythae.py"
DATASETS = ("shapes", "balls")
BETA = 6.0  # weight of the total correlation, as in FDS's beta_tcvae preset (kl 1 + tc 5)
SPEC: dict[str, Any] = {
    "preset": "beta_tcvae",
    "architecture": "conv",
    "latent_dim": 10,
    "val_fraction": 0.0,  # pythae trains on every image too
    "verbose": False,
}
PYTHAE_DEFAULTS = {"batch": 64, "lr": 1e-4}  # pythae's BaseTrainerConfig
# training time: wall seconds, and CPU seconds (the fair one on a machine shared with other jobs)
METRICS = ("mig", "dci_disentanglement", "factor_vae_score", "seconds", "cpu_seconds")


def images_for(data: str, n: int, n_test: int, seed: int) -> dict[str, Any]:
    train = load_builtin(data, n=n, seed=seed, split="train")
    test = load_builtin(data, n=n_test, seed=seed, split="test")
    return {"train": train.X, "test": test.X, "factors": test.factors}


def channel_first(images: np.ndarray) -> np.ndarray:
    """uint8 (N,H,W[,C]) → float32 (N,C,H,W) in [0, 1], the layout pythae's conv nets read."""
    x = images.astype(np.float32) / 255.0
    return x[:, None] if x.ndim == 3 else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def run_fds(data: dict[str, Any], epochs: int, seed: int, schedule: dict[str, Any]) -> dict:
    torch.set_num_threads(1)
    model = FDS(**SPEC, **schedule, epochs=epochs, seed=seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(data["train"])
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"codes": model.transform(data["test"]), "seconds": seconds, "cpu_seconds": cpu_seconds}


def run_pythae(
    python: Path,
    data: dict[str, Any],
    epochs: int,
    seed: int,
    schedule: dict[str, Any],
    init: str,
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        inputs, out = Path(tmp) / "data.npz", Path(tmp) / "out.npz"
        np.savez(inputs, train=channel_first(data["train"]), test=channel_first(data["test"]))
        args = [str(python), str(WORKER), str(inputs), str(out), "--seed", str(seed)]
        args += ["--epochs", str(epochs), "--batch", str(schedule["batch"])]
        args += ["--lr", str(schedule["lr"]), "--beta", str(BETA)]
        args += ["--latent-dim", str(SPEC["latent_dim"])]
        args += ["--torch-init"] if init == "torch" else []
        env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        subprocess.run(args, check=True, capture_output=True, text=True, env=env)
        result = np.load(out)
        return {
            "codes": result["codes"],
            "seconds": float(result["seconds"]),
            "cpu_seconds": float(result["cpu_seconds"]),
        }


def score(data: dict[str, Any], run: dict[str, Any], fast: bool) -> dict[str, float]:
    metrics = evaluate_disentanglement(data["factors"], run["codes"], fast=fast, seed=0)
    scores = {name: metrics[name] for name in METRICS[:3]}
    return scores | {"seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"]}


def run_task(task: tuple[str, int, argparse.Namespace]) -> list[dict[str, Any]]:
    """One data set and seed: both libraries on the same images, in alternating order (so a slow
    spell on the shared machine hits both sides)."""
    name, seed, args = task
    data = images_for(name, args.n, args.n_test, seed)
    defaults = TRAINING_DEFAULTS["other"]  # what FDS picks for images when batch and lr are unset
    schedule = {
        "batch": args.fds_batch or defaults["batch_size"],
        "lr": args.fds_lr or defaults["lr"],
    }
    fds_options = {"batch_size": schedule["batch"], "lr": schedule["lr"]}
    fds_options["tc_estimator"] = args.tc_estimator
    if args.fds_schedule:
        fds_options["lr_schedule"] = args.fds_schedule
    fds_options |= args.fds_params
    peer_schedule = schedule if args.same_schedule else PYTHAE_DEFAULTS
    sides = [(side, schedule if side == "fds" else peer_schedule) for side in args.libraries]
    rows = []
    for side, sched in sides if seed % 2 == 0 else sides[::-1]:
        if side == "fds":
            run = run_fds(data, args.epochs, seed, fds_options)
        else:
            run = run_pythae(args.python, data, args.epochs, seed, sched, args.peer_init)
        row = {"data": name, "library": side, "seed": seed, **sched}
        rows.append(row | score(data, run, args.quick))
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..K-1 (data and init)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--n", type=int, default=10_000, help="training images per data set")
    parser.add_argument("--n-test", type=int, default=5_000, help="held-out images scored")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument(
        "--same-schedule", action="store_true", help="pythae trains with FDS's batch and lr"
    )
    parser.add_argument(
        "--peer-init",
        choices=("fds", "torch"),
        default="fds",
        help="pythae's copy of the nets: FDS's He initialisation, or PyTorch's default",
    )
    parser.add_argument("--fds-batch", type=int, default=None)
    parser.add_argument("--fds-lr", type=float, default=None)
    parser.add_argument(
        "--fds-schedule",
        choices=("constant", "cosine", "step"),
        default=None,
        help="FDS's lr_schedule (default: FDS's own, constant)",
    )
    parser.add_argument(
        "--fds-params",
        type=json.loads,
        default={},
        help="JSON of more FDS parameters for the FDS side, e.g. '{\"ema_decay\": 0.99}'",
    )
    parser.add_argument(
        "--tc-estimator",
        choices=("mss", "mws"),
        default=FDSConfig().tc_estimator,
        help="FDS's TC estimate (pythae keeps its use_mss weights, in effect minibatch-weighted)",
    )
    parser.add_argument(
        "--libraries",
        default="fds,pythae",
        help="which sides to train (pythae's runs are deterministic per seed, so a change to FDS "
        "can be measured on the FDS side alone)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="(data set, seed) pairs run at once")
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, 1000 images")
    args = parser.parse_args()
    args.libraries = args.libraries.split(",")
    unknown = set(args.libraries) - {"fds", "pythae"}
    if unknown:
        parser.error(f"unknown library {sorted(unknown)[0]!r}; choose from fds, pythae")
    if args.quick:
        args.seeds, args.epochs, args.n, args.n_test = 1, 1, 1000, 1000
    args.python = ensure_env("pythae", PYTHAE) if "pythae" in args.libraries else None
    tasks = [(name, seed, args) for seed in range(args.seeds) for name in args.datasets.split(",")]
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = [row for rows in pool.map(run_task, tasks) for row in rows]
    report(runs, args)


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    medians: dict[str, dict[str, float]] = {}
    rows = []
    for name in args.datasets.split(","):
        for side in args.libraries:
            mine = [r for r in runs if r["data"] == name and r["library"] == side]
            entry = {m: median([r[m] for r in mine]) for m in METRICS}
            spread = {
                f"{m}_range": max(r[m] for r in mine) - min(r[m] for r in mine) for m in METRICS
            }
            medians[f"{name}/{side}"] = entry | spread
            rows.append([name, side, *(entry[m] for m in METRICS), spread["mig_range"]])
        if len(args.libraries) < 2:
            continue
        ours, theirs = medians[f"{name}/fds"], medians[f"{name}/pythae"]
        for m in METRICS:
            medians[f"{name}/ratio"] = medians.get(f"{name}/ratio", {}) | {
                m: ours[m] / theirs[m] if theirs[m] else float("nan")
            }
        rows.append(
            [name, "ratio fds/pythae", *(medians[f"{name}/ratio"][m] for m in METRICS), 0.0]
        )
    print(f"medians of {args.seeds} seeds; {args.epochs} epochs on {args.n} images")
    header = ["data", "library", "MIG", "DCI D", "FactorVAE", "train s", "train CPU s", "MIG range"]
    print_table(header, rows)
    emit_json(
        {
            "medians": medians,
            "epochs": args.epochs,
            "n_train": args.n,
            "n_test": args.n_test,
            "seeds": args.seeds,
            "beta": BETA,
            "libraries": args.libraries,
            "tc_estimator": args.tc_estimator,
            "fds_schedule": args.fds_schedule,
            "fds_params": args.fds_params,
            "same_schedule": args.same_schedule,
            "peer_init": args.peer_init,
            "pythae_schedule": None if args.same_schedule else PYTHAE_DEFAULTS,
            "quick": args.quick,
            "per_run": runs,
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
