"""Cost of DP-SGD: DP epoch time ÷ non-private epoch time on the core benchmark model (goal ≤ 3×),
and a privacy-utility sweep over ε for DP training and for DP release of latents.

Model: the benchmarks' core `vae` (MLP 784-512-512-(2×16), Bernoulli likelihood, batch 128) on
Fashion-MNIST (uniform random images of the same shape when it is not installed). DP training uses
`privacy: {epsilon: 8}`; the vae preset's free bits are dropped under DP (batch-coupled), so the
non-private reference drops them too. Non-private and DP fits are interleaved in
each repeat (the machine is shared); the first epoch of each fit is skipped as warm-up. DP uses
ghost clipping (the default); `--hooks` also times per-example-gradient hooks, for comparison.

    OMP_NUM_THREADS=1 python benchmarks/dp_cost.py [--repeats 5] [--n 6400] [--hooks] [--curve] [--quick]

`--curve` adds the privacy-utility sweep (ε ∈ {0.5, 1, 2, 4, 8, ∞}): test reconstruction MSE and a
logistic-regression probe's accuracy on the latents, for DP training and for DP release (the
release clips latents of the non-private model to C = √d and adds analytic Gaussian noise).
Attacker success is measured by the attack branch (`fds attack`); `sweep_training` and
`sweep_release` below are the functions to call with it.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np
from _common import (
    BATCH,
    MODEL_SPEC,
    CpuPressure,
    emit_json,
    environment,
    load_fashion,
    median,
    print_table,
    random_images,
)
from sklearn.linear_model import LogisticRegression

from fds import FDS
from fds.privacy.release import release_latents

EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0, math.inf)


def fit(X: np.ndarray, epochs: int, seed: int, privacy: dict | None) -> FDS:
    """The core model, with DP-SGD when `privacy` is given (free bits off in both cases)."""
    return FDS(
        **MODEL_SPEC,
        free_bits=0.0,
        batch_size=BATCH,
        epochs=epochs,
        val_fraction=0.0,
        seed=seed,
        verbose=False,
        privacy=privacy,
    ).fit(X)


def epoch_seconds(model: FDS) -> float:
    return median([h["seconds"] for h in model.history_[1:]])


def probe_accuracy(Z_train: np.ndarray, y_train: Any, Z_test: np.ndarray, y_test: Any) -> float:
    head = LogisticRegression(max_iter=300).fit(Z_train, y_train)
    return float(head.score(Z_test, y_test))


def sweep_training(X, y, X_test, y_test, epochs: int, seed: int = 0) -> list[dict[str, Any]]:
    """Utility of DP-SGD models at each ε (∞ = non-private)."""
    rows = []
    for eps in EPSILONS:
        privacy = None if math.isinf(eps) else {"epsilon": eps}
        model = fit(X, epochs, seed, privacy)
        rows.append(
            {
                "mechanism": "dp-sgd",
                "epsilon": eps,
                "spent_epsilon": model.privacy_["epsilon"] if privacy else math.inf,
                "test_mse": model.reconstruction_mse(X_test),
                "probe_accuracy": probe_accuracy(
                    model.transform(X), y, model.transform(X_test), y_test
                ),
            }
        )
    return rows


def sweep_release(model: FDS, X, y, X_test, y_test, seed: int = 0) -> list[dict[str, Any]]:
    """Utility of DP-released latents (train and test rows released) at each ε, δ = 1e-5."""
    clip = math.sqrt(model.config_.latent_dim)
    Z, Z_test = model.transform(X), model.transform(X_test)
    rows = []
    for eps in EPSILONS:
        if math.isinf(eps):
            noisy, noisy_test = Z, Z_test
        else:
            noisy, _ = release_latents(Z, eps, 1e-5, clip, seed=seed)
            noisy_test, _ = release_latents(Z_test, eps, 1e-5, clip, seed=seed + 1)
        recon = model.inverse_transform(noisy_test)
        rows.append(
            {
                "mechanism": "release",
                "epsilon": eps,
                "test_mse": float(np.mean((recon - X_test) ** 2)),
                "probe_accuracy": probe_accuracy(noisy, y, noisy_test, y_test),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n", type=int, default=6400, help="training images")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per fit (+1 warm-up)")
    parser.add_argument("--curve", action="store_true", help="also sweep ε (privacy-utility)")
    parser.add_argument(
        "--hooks", action="store_true", help="also time grad_sample_mode=hooks (much slower)"
    )
    parser.add_argument("--curve-epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke run of a few seconds")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.n, args.epochs, args.curve_epochs = 1, 1280, 1, 1

    loaded = load_fashion("train", n=args.n)
    X = loaded[0] if loaded else random_images(args.n)
    data = "fashion-mnist" if loaded else "random"
    runs = []
    for r in range(args.repeats):
        pressure = CpuPressure().__enter__()
        plain = epoch_seconds(fit(X, 1 + args.epochs, r, None))
        ghost = epoch_seconds(fit(X, 1 + args.epochs, r, {"epsilon": 8.0}))
        hooks = (
            epoch_seconds(fit(X, 1 + args.epochs, r, {"epsilon": 8.0, "grad_sample_mode": "hooks"}))
            if args.hooks
            else float("nan")
        )
        pressure.__exit__()
        runs.append(
            {
                "cpu_pressure": pressure.value,
                "plain_s": plain,
                "ghost_s": ghost,
                "hooks_s": hooks,
                "ghost_ratio": ghost / plain,
                "hooks_ratio": hooks / plain,
            }
        )
        line = f"repeat {r + 1}/{args.repeats}: non-private {plain:.2f} s/epoch, DP ghost "
        line += f"{ghost:.2f} ({ghost / plain:.2f}×)"
        line += f", DP hooks {hooks:.2f} ({hooks / plain:.2f}×)" if args.hooks else ""
        if pressure.value is not None:
            line += f"  cpu pressure {pressure.value:.0%} (above a few % = disturbed)"
        print(line, flush=True)

    def med(key: str) -> float:
        return median([run[key] for run in runs])

    print(f"\ndata: {data}, {len(X)} images, batch {BATCH}; {args.repeats} interleaved repeats")
    print_table(
        ["", "s/epoch (median)", "÷ non-private", "goal"],
        [
            ["non-private", med("plain_s"), 1.0, ""],
            ["DP-SGD, ghost clipping", med("ghost_s"), med("ghost_ratio"), "≤ 3"],
        ]
        + (
            [["DP-SGD, per-example hooks", med("hooks_s"), med("hooks_ratio"), ""]]
            if args.hooks
            else []
        ),
    )
    result: dict[str, Any] = {
        "benchmark": "dp_cost",
        "data": data,
        "images": len(X),
        "batch_size": BATCH,
        "repeats": args.repeats,
        "nonprivate_epoch_s": med("plain_s"),
        "dp_ghost_epoch_s": med("ghost_s"),
        "dp_hooks_epoch_s": med("hooks_s") if args.hooks else None,
        "dp_ghost_over_nonprivate": med("ghost_ratio"),
        "dp_hooks_over_nonprivate": med("hooks_ratio") if args.hooks else None,
        "goal_ratio": 3.0,
        "per_repeat": [
            {k: v for k, v in run.items() if v is not None and v == v} for run in runs
        ],  # no NaN
        **environment(),
    }
    result["meets_goal"] = result["dp_ghost_over_nonprivate"] <= 3.0  # ghost: the default mode
    if args.curve:
        test = load_fashion("test", n=max(500, args.n // 5)) if loaded else None
        y = loaded[1] if loaded else np.random.default_rng(0).integers(0, 10, len(X))
        X_test, y_test = (
            test
            if test
            else (random_images(500, seed=1), np.random.default_rng(1).integers(0, 10, 500))
        )
        curve = sweep_training(X, y, X_test, y_test, args.curve_epochs)
        base = fit(X, args.curve_epochs, 0, None)
        curve += sweep_release(base, X, y, X_test, y_test)
        print()
        print_table(
            ["mechanism", "ε", "test MSE", "probe accuracy"],
            [[c["mechanism"], c["epsilon"], c["test_mse"], c["probe_accuracy"]] for c in curve],
        )
        result["privacy_utility"] = [
            {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in c.items()}
            for c in curve
        ]
    emit_json(result)


if __name__ == "__main__":
    main()
