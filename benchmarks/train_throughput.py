"""Training throughput of an FDS `vae` against a bare PyTorch loop and the machine's FLOP bound.

Model: MLP encoder 784-512-512-(2×16), decoder 16-512-512-784, Bernoulli likelihood, batch 128,
Adam lr 1e-3, on Fashion-MNIST training images (uniform random images of the same shape when the
data set is not installed). Three figures, measured in one process and interleaved per repeat
(FDS, bare, matmul, FDS, bare, matmul, …) because the machine is shared and noisy; before each
repeat the script waits (up to `--wait` seconds) for the CPUs to be idle, and it records the CPU
pressure (Linux PSI) during each repeat, so a disturbed repeat can be recognised:

  fds    steady-state examples/s of `FDS(...).fit`: epoch seconds from `history_`, the first epoch
         of each fit skipped as warm-up (no validation split, no run directory), with its default
         precision (bfloat16 passes on a CPU with native bfloat16; `--fds-precision float32`);
  bare   the same model and loss in a plain PyTorch loop (data already a float tensor, a shuffled
         index each epoch), timed the same way;
  pythae pythae 0.1.2's VAE on the same model with its own BaseTrainer (benchmarks/
         peer_pythae_vae.py, in its own venv benchmarks/.envs/pythae, built on first use), timed
         the same way (its training loop per epoch, the first epoch skipped); `--no-pythae`
         leaves it out;
  bound  measured dense float32 matmul rate ÷ (6 × MACs per example), MACs = Σ in×out over the
         Linear layers. Two rates: a large 2048² matmul ("machine peak", the conservative bound)
         and the model's own matmuls at batch 128 (forward, grad-input and grad-weight shapes).

Everything runs on one thread (`--threads`). Goals: fds / bare ≥ 1.2 and fds / pythae ≥ 1.5
(issue 19), fds / bound(machine peak) ≥ 0.6 (issue 2).

    .venv/bin/python benchmarks/train_throughput.py [--repeats 5] [--n 20000] [--quick]

Prints one line per repeat, a table of medians (and best repeats), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import (
    BATCH,
    MODEL_SPEC,
    BareVAE,
    CpuPressure,
    bare_train,
    emit_json,
    environment,
    linear_macs,
    load_fashion,
    median,
    print_table,
    random_images,
    wait_for_idle,
)

from fds import FDS

PEER_SCRIPT = Path(__file__).resolve().with_name("peer_pythae_vae.py")
GOAL_OVER_BARE, GOAL_OVER_PYTHAE, GOAL_OVER_BOUND = 1.2, 1.5, 0.6


def fds_epoch_seconds(
    X: np.ndarray, epochs: int, seed: int, precision: str = "auto"
) -> tuple[list[float], FDS, float]:
    started = time.perf_counter()
    model = FDS(
        **MODEL_SPEC,
        batch_size=BATCH,
        epochs=epochs,
        optimizer="adam",
        lr=1e-3,
        lr_schedule="constant",
        val_fraction=0.0,
        seed=seed,
        threads=torch.get_num_threads(),
        precision=precision,
        verbose=False,
    ).fit(X)
    wall = time.perf_counter() - started
    return [float(h["seconds"]) for h in model.history_], model, wall


def bare_epoch_seconds(x: torch.Tensor, epochs: int, seed: int) -> list[float]:
    torch.manual_seed(seed)
    return bare_train(BareVAE(), x, epochs, seed=seed)


def pythae_python() -> Path:
    """The pythae venv's python (built on first use; another benchmark may be building it)."""
    from peer_env import ensure_env

    for attempt in range(3):
        try:
            return ensure_env("pythae", ["pythae==0.1.2"])
        except (subprocess.CalledProcessError, OSError):
            if attempt == 2:
                raise
            time.sleep(30)
    raise AssertionError("unreachable")


def pythae_epoch_seconds(python: Path, data: Path, epochs: int, seed: int) -> list[float]:
    proc = subprocess.run(
        [str(python), str(PEER_SCRIPT), str(data), "--epochs", str(epochs), "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"},
    )
    if proc.returncode != 0:
        raise SystemExit(f"pythae run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["epoch_seconds"]


def _rate(calls: list[tuple[torch.Tensor, torch.Tensor]], min_time: float) -> float:
    """FLOP/s of running all `calls` (a @ b) back to back, repeated for at least `min_time` s."""
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in calls)
    for a, b in calls:  # warm-up
        torch.mm(a, b)
    best, elapsed, reps = 0.0, 0.0, 0
    while elapsed < min_time or reps < 3:
        started = time.perf_counter()
        for a, b in calls:
            torch.mm(a, b)
        dt = time.perf_counter() - started
        elapsed, reps = elapsed + dt, reps + 1
        best = max(best, flops / dt)
    return best


def matmul_rates(model: torch.nn.Module, min_time: float) -> dict[str, float]:
    """Dense float32 matmul FLOP/s: a large square one and the model's own training matmuls."""
    big = torch.randn(2048, 2048)
    large = _rate([(big, big)], min_time)
    calls = []
    for layer in model.modules():
        if isinstance(layer, torch.nn.Linear):
            i, o = layer.in_features, layer.out_features
            calls.append((torch.randn(BATCH, i), torch.randn(i, o)))  # forward
            calls.append((torch.randn(BATCH, o), torch.randn(o, i)))  # grad wrt input
            calls.append((torch.randn(o, BATCH), torch.randn(BATCH, i)))  # grad wrt weight
    shaped = _rate(calls, min_time)
    return {"large": large, "model": shaped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=11, help="interleaved repeats (medians)")
    parser.add_argument("--n", type=int, default=6400, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per fit (+1 warm-up)")
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="before each repeat, wait up to this many seconds for idle CPUs (0: don't)",
    )
    parser.add_argument("--threads", type=int, default=1, help="threads of every contender")
    parser.add_argument("--no-pythae", action="store_true", help="leave pythae out")
    parser.add_argument(
        "--fds-precision",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="FDS's precision (auto: bfloat16 passes on CPUs with native bfloat16)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.repeats, args.n, args.epochs, args.wait = 1, 1280, 1, 0.0
    min_time = 0.1 if args.quick else 0.3

    loaded = load_fashion("train", n=args.n)
    if loaded is None:
        print("fashion-mnist not installed: timing on random images of the same shape")
        X = random_images(args.n)
    else:
        X = loaded[0]
    data = "fashion-mnist" if loaded is not None else "random"
    x_tensor = torch.from_numpy(X.reshape(len(X), -1).copy())
    per_epoch = (len(X) // BATCH) * BATCH
    python = None if args.no_pythae else pythae_python()
    scratch = tempfile.TemporaryDirectory(prefix="fds-throughput-")
    data_file = Path(scratch.name) / "images.npy"
    np.save(data_file, x_tensor.numpy()[:per_epoch])
    macs = linear_macs(BareVAE())
    flops_per_example = 6 * macs

    runs: list[dict[str, float]] = []
    for r in range(args.repeats):
        waited = wait_for_idle(timeout=args.wait) if args.wait > 0 else 0.0
        with CpuPressure() as pressure:
            seconds, fitted, wall = fds_epoch_seconds(
                X, 1 + args.epochs, seed=r, precision=args.fds_precision
            )
            bare_seconds = bare_epoch_seconds(x_tensor, 1 + args.epochs, seed=r)
            peer_seconds = (
                pythae_epoch_seconds(python, data_file, 1 + args.epochs, seed=r)
                if python is not None
                else [float("nan")] * 2
            )
            rates = matmul_rates(BareVAE(), min_time)
        if r == 0:
            fds_macs = linear_macs(fitted.model_)
            assert fds_macs == macs, f"FDS model has {fds_macs} MACs/example, reference {macs}"
        run = {
            "fds": per_epoch / median(seconds[1:]),
            "bare": per_epoch / median(bare_seconds[1:]),
            "pythae": per_epoch / median(peer_seconds[1:]),
            "bound_peak": rates["large"] / flops_per_example,
            "bound_model": rates["model"] / flops_per_example,
            "gflops_peak": rates["large"] / 1e9,
            "gflops_model": rates["model"] / 1e9,
            "fds_fit_wall_s": wall,
            "waited_for_idle_s": waited,
            "cpu_pressure": pressure.value if pressure.value is not None else float("nan"),
        }
        runs.append(run)
        print(
            f"repeat {r + 1}/{args.repeats}: fds {run['fds']:,.0f}/s  bare {run['bare']:,.0f}/s  "
            f"pythae {run['pythae']:,.0f}/s  "
            f"matmul {run['gflops_peak']:.0f} GFLOP/s (2048²), {run['gflops_model']:.0f} (model "
            f"shapes)  cpu pressure {run['cpu_pressure']:.0%}  waited {waited:.0f} s",
            flush=True,
        )

    def med(key: str) -> float:
        return median([run[key] for run in runs])

    def best(key: str) -> float:
        return max(run[key] for run in runs)

    def paired(key: str) -> float:
        """Median over repeats of FDS ÷ `key` measured in the same repeat (robust to drift)."""
        return median([run["fds"] / run[key] for run in runs])

    print()
    print(
        f"data: {data}, {per_epoch} images/epoch, batch {BATCH}, threads {torch.get_num_threads()}, "
        f"FDS precision {args.fds_precision}; "
        f"{args.repeats} interleaved repeats, each 1 warm-up + {args.epochs} timed epochs"
    )
    print(
        f"MACs/example {macs:,} → {flops_per_example / 1e6:.2f} MFLOP per training example (6×MACs)"
    )
    print("median = median over repeats; best = fastest repeat (least disturbed by other load)")
    print_table(
        ["", "median ex/s", "best ex/s", "FDS/this median", "FDS/this best", "goal"],
        [
            ["FDS fit (steady state)", med("fds"), best("fds"), 1.0, 1.0, ""],
            [
                "bare PyTorch loop",
                med("bare"),
                best("bare"),
                paired("bare"),
                best("fds") / best("bare"),
                f"≥ {GOAL_OVER_BARE}",
            ],
            [
                "pythae 0.1.2 VAE, its BaseTrainer",
                med("pythae"),
                best("pythae"),
                paired("pythae"),
                best("fds") / best("pythae"),
                f"≥ {GOAL_OVER_PYTHAE}",
            ],
            [
                f"FLOP bound, 2048² matmul ({med('gflops_peak'):.0f} GFLOP/s median)",
                med("bound_peak"),
                best("bound_peak"),
                paired("bound_peak"),
                best("fds") / best("bound_peak"),
                f"≥ {GOAL_OVER_BOUND}",
            ],
            [
                f"FLOP bound, model-shaped matmuls ({med('gflops_model'):.0f} GFLOP/s median)",
                med("bound_model"),
                best("bound_model"),
                paired("bound_model"),
                best("fds") / best("bound_model"),
                "",
            ],
        ],
    )
    result = {
        "benchmark": "train_throughput",
        "data": data,
        "fds_precision": args.fds_precision,
        "images_per_epoch": per_epoch,
        "batch_size": BATCH,
        "repeats": args.repeats,
        "timed_epochs_per_fit": args.epochs,
        "macs_per_example": macs,
        "flops_per_example": flops_per_example,
        "fds_examples_per_s": med("fds"),
        "bare_examples_per_s": med("bare"),
        "pythae_examples_per_s": med("pythae"),
        "flop_bound_examples_per_s": med("bound_peak"),
        "flop_bound_model_shapes_examples_per_s": med("bound_model"),
        "matmul_gflops_large": med("gflops_peak"),
        "matmul_gflops_model_shapes": med("gflops_model"),
        "fds_over_bare": paired("bare"),
        "fds_over_pythae": paired("pythae"),
        "fds_over_flop_bound": paired("bound_peak"),
        "fds_over_flop_bound_model_shapes": paired("bound_model"),
        "best_fds_examples_per_s": best("fds"),
        "best_bare_examples_per_s": best("bare"),
        "best_flop_bound_examples_per_s": best("bound_peak"),
        "best_fds_over_bare": best("fds") / best("bare"),
        "best_fds_over_flop_bound": best("fds") / best("bound_peak"),
        "goal_fds_over_bare": GOAL_OVER_BARE,
        "goal_fds_over_pythae": GOAL_OVER_PYTHAE,
        "goal_fds_over_flop_bound": GOAL_OVER_BOUND,
        "fds_fit_wall_s": med("fds_fit_wall_s"),
        "per_repeat": runs,
        **environment(),
    }
    result["meets_goals"] = (
        result["fds_over_bare"] >= GOAL_OVER_BARE
        and result["fds_over_pythae"] >= GOAL_OVER_PYTHAE
        and result["fds_over_flop_bound"] >= GOAL_OVER_BOUND
    )
    scratch.cleanup()
    emit_json(result)


if __name__ == "__main__":
    main()
