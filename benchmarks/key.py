"""The key on images and tables (issue 13): does decoding with, without and with another record's
key do what it should, on `shapes` (sensitive: the shape) and `census` (sensitive: sex)?

Each seed trains the `fds` preset and reads evaluation.json's `key` group
(`fds.workflows.key_quality`) on the held-out rows, and the public block's leakage with the
truthful estimator (`fds.workflows.leakage.measure_leakage`); census also trains a `vae` of the
same size for the reconstruction beside it.

- shapes: the quickstart's model (what/where networks, a private block of 4 of 8 latents) trained
  for `--shapes-epochs` (150; the quickstart's own 25 leave the key still learning) on 10 000
  sprites, its public step's coarser-first warm-up over the first half. The shape on each decoding is read by a small
  convolutional classifier fitted on real training sprites.
- census: `fds` with `sensitive=("sex",)`, latent_dim 10, `--census-epochs` (30), 5 000 rows.

Goals (medians over the seeds):
  shapes  keyed shape accuracy ≥ 0.95 × the classifier's accuracy on the originals;
          public-only (one neutral key) shape accuracy ≤ majority + 0.05;
          swap success ≥ 0.90 with the position kept (R² ≥ 0.9);
          public leakage (best attacker) ≤ majority + 0.15
  census  swap success ≥ 0.95; public-only decodings (keys drawn from the key prior): the share
          of each sex within 0.05 of its marginal; keyed reconstruction MSE ≤ 1.1 × the vae's

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/key.py [--repeats 3 | --seeds 0,2]
        [--datasets shapes,census]
        [--shapes-epochs 150] [--census-epochs 30] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import pandas as pd
from _common import emit_json, environment, print_table, swap_and_leakage

from fds import FDS
from fds.data.files import read_data
from fds.data.stream import split_indices
from fds.privacy.leakage import FAST, TRUTHFUL
from fds.workflows.key_quality import key_quality
from fds.workflows.leakage import measure_leakage
from fds.workflows.quickstart import quickstart_params
from fds.workflows.train import split_run_params

CENSUS = {"preset": "fds", "sensitive": ("sex",), "latent_dim": 10}
GOALS = {
    "shapes_keyed_ratio": 0.95,
    "shapes_public_only_over_majority": 0.05,
    "shapes_swap_success": 0.90,
    "shapes_swap_position_r2": 0.9,
    "shapes_leakage_over_majority": 0.15,
    "census_swap_success": 0.95,
    "census_marginal_gap": 0.05,
    "census_mse_over_vae": 1.1,
}


def run_shapes(
    seed: int, epochs: int, quick: bool, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    data = read_data("shapes", n=1500 if quick else None, seed=seed)
    sensitive = pd.DataFrame({"factor:shape": data.factors["shape"].to_numpy()})
    shapes, _ = split_run_params(quickstart_params(epochs))
    params = shapes | (overrides or {}) | {"seed": seed, "verbose": False}
    started, cpu = time.perf_counter(), time.process_time()
    model = FDS(**params).fit(data.X, sensitive=sensitive)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    key = key_quality(model, data, seed=seed, fast=quick)["attributes"]["factor:shape"]
    leak = measure_leakage(model, data, seed=seed, budget=FAST if quick else TRUTHFUL)
    public = leak["attributes"]["factor:shape"]["public"]
    fidelity = key["keyed_fidelity"]
    return {
        "data": "shapes",
        "seed": seed,
        "keyed_accuracy": fidelity["attribute_accuracy"],
        "originals_accuracy": fidelity["attribute_accuracy_originals"],
        "keyed_ratio": fidelity["attribute_ratio"],
        "keyed_mse": fidelity["reconstruction_mse"],
        "public_only_drawn_accuracy": key["public_only_drawn_attribute_accuracy"],
        "majority": key["majority"],
        "public_only_position_r2": key["public_only_position_r2"],
        "public_only_size_r2": key["public_only_size_r2"],
        **swap_and_leakage(key, public),
        "leakage_lower_bound": public["lower_bound"],
        "private_leakage": leak["attributes"]["factor:shape"]["private"]["best_accuracy"],
        "train_s": seconds,
        "train_cpu_s": cpu,  # process time: comparable across loads, unlike the wall seconds
    }


def run_census(seed: int, epochs: int, quick: bool) -> dict[str, Any]:
    data = read_data("census", n=1500 if quick else None, seed=seed)
    common = {"latent_dim": CENSUS["latent_dim"], "epochs": epochs, "seed": seed}
    started = time.perf_counter()
    model = FDS(**(CENSUS | common), verbose=False).fit(data.X)
    seconds = time.perf_counter() - started
    vae = FDS(preset="vae", **common, verbose=False).fit(data.X)
    _, held = split_indices(len(data.X), model.config_.val_fraction, seed)
    vae_mse = vae.reconstruction_mse(data.X.iloc[held])
    key = key_quality(model, data, seed=seed, fast=quick)["attributes"]["sex"]
    leak = measure_leakage(model, data, seed=seed, budget=FAST if quick else TRUTHFUL)
    public = leak["attributes"]["sex"]["public"]
    keyed_mse = key["keyed_fidelity"]["reconstruction_mse"]
    return {
        "data": "census",
        "seed": seed,
        "keyed_accuracy": key["keyed_fidelity"]["attribute_accuracy"],
        "keyed_mse": keyed_mse,
        "vae_mse": vae_mse,
        "mse_over_vae": keyed_mse / vae_mse,
        "public_only_accuracy": key["public_only_attribute_accuracy"],
        "public_only_drawn_accuracy": key["public_only_drawn_attribute_accuracy"],
        "majority": key["majority"],
        "marginal_gap": key["public_only_drawn_marginal_gap"],
        "swap_success": key["swap_success"],
        "swap_keeps": key["swap_keeps"]["mean_agreement"],
        "leakage": public["best_accuracy"],
        "leakage_auc": public["best_auc"],
        "leakage_majority": public["majority"],
        "leakage_lower_bound": public["lower_bound"],
        "train_s": seconds,
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric figure over the runs (booleans: whether any run had it)."""
    out: dict[str, Any] = {}
    for name, value in runs[0].items():
        values = [run[name] for run in runs]
        if isinstance(value, bool):
            out[name] = any(values)
        elif isinstance(value, int | float) and name != "seed":
            present = [v for v in values if v is not None]
            out[name] = statistics.median(present) if present else None
    return out


def goals(shapes: dict[str, Any] | None, census: dict[str, Any] | None) -> dict[str, bool]:
    met: dict[str, bool] = {}
    if shapes:
        met["shapes_keyed_ratio"] = shapes["keyed_ratio"] >= GOALS["shapes_keyed_ratio"]
        met["shapes_public_only"] = (
            shapes["public_only_accuracy"]
            <= shapes["majority"] + GOALS["shapes_public_only_over_majority"]
        )
        met["shapes_swap"] = (
            shapes["swap_success"] >= GOALS["shapes_swap_success"]
            and shapes["swap_position_r2"] >= GOALS["shapes_swap_position_r2"]
        )
        met["shapes_leakage"] = (
            shapes["leakage"] <= shapes["leakage_majority"] + GOALS["shapes_leakage_over_majority"]
        )
    if census:
        met["census_swap"] = census["swap_success"] >= GOALS["census_swap_success"]
        met["census_marginal"] = census["marginal_gap"] <= GOALS["census_marginal_gap"]
        met["census_reconstruction"] = census["mse_over_vae"] <= GOALS["census_mse_over_vae"]
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="seeds 0..K-1")
    parser.add_argument(
        "--seeds", help="comma-separated seeds instead of 0..K-1 (one seed per job: --seeds 2)"
    )
    parser.add_argument("--datasets", default="shapes,census")
    parser.add_argument("--shapes-epochs", type=int, default=150)
    parser.add_argument("--census-epochs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs, 1 500 rows")
    parser.add_argument(
        "--shapes-params",
        type=json.loads,
        default={},
        help="JSON of FDS parameters over the quickstart's for shapes, e.g. '{\"public_step\": 0.5}'",
    )
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    seeds = [int(v) for v in args.seeds.split(",")] if args.seeds else list(range(repeats))
    repeats = len(seeds)
    if args.quick:
        args.shapes_epochs = args.census_epochs = 2
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    runs: dict[str, list[dict[str, Any]]] = {d: [] for d in datasets}
    for seed in seeds:
        if "shapes" in runs:
            runs["shapes"].append(
                run_shapes(seed, args.shapes_epochs, args.quick, args.shapes_params)
            )
        if "census" in runs:
            runs["census"].append(run_census(seed, args.census_epochs, args.quick))
    summary = {name: medians(rows) for name, rows in runs.items() if rows}
    shapes, census = summary.get("shapes"), summary.get("census")
    if shapes:
        print(f"shapes: medians of {repeats} seeds, {args.shapes_epochs} epochs")
        print_table(
            ["figure", "value", "beside"],
            [
                ["keyed shape accuracy", shapes["keyed_accuracy"], f"originals {shapes['originals_accuracy']:.3f}"],
                ["keyed ÷ originals", shapes["keyed_ratio"], "goal ≥ 0.95"],
                ["public only (neutral key)", shapes["public_only_accuracy"], f"majority {shapes['majority']:.3f}"],
                ["public only (drawn keys)", shapes["public_only_drawn_accuracy"], ""],
                ["public only position R²", shapes["public_only_position_r2"], ""],
                ["public only size R²", shapes["public_only_size_r2"], ""],
                ["swap success", shapes["swap_success"], "goal ≥ 0.90"],
                ["swap position R²", shapes["swap_position_r2"], "goal ≥ 0.9"],
                ["swap size R²", shapes["swap_size_r2"], ""],
                ["public leakage (best attacker)", shapes["leakage"], f"majority {shapes['leakage_majority']:.3f}"],
                ["public leakage AUC", shapes["leakage_auc"], ""],
                ["private block (best attacker)", shapes["private_leakage"], ""],
                ["training seconds", shapes["train_s"], f"CPU {shapes['train_cpu_s']:.1f}"],
            ],
        )  # fmt: skip
    if census:
        print(f"census: medians of {repeats} seeds, {args.census_epochs} epochs")
        print_table(
            ["figure", "value", "beside"],
            [
                ["keyed sex accuracy", census["keyed_accuracy"], ""],
                ["keyed reconstruction MSE", census["keyed_mse"], f"vae {census['vae_mse']:.4f}"],
                ["keyed MSE ÷ vae's", census["mse_over_vae"], "goal ≤ 1.1"],
                ["public only (neutral key)", census["public_only_accuracy"], f"majority {census['majority']:.3f}"],
                ["public only (drawn keys) marginal gap", census["marginal_gap"], "goal ≤ 0.05"],
                ["swap success", census["swap_success"], "goal ≥ 0.95"],
                ["swap keeps (other columns)", census["swap_keeps"], ""],
                ["public leakage (best attacker)", census["leakage"], f"majority {census['leakage_majority']:.3f}"],
                ["public leakage AUC", census["leakage_auc"], ""],
                ["training seconds", census["train_s"], ""],
            ],
        )  # fmt: skip
    met = goals(shapes, census)
    print("goals: " + ", ".join(f"{k} {'PASS' if v else 'FAIL'}" for k, v in met.items()))
    emit_json(
        {
            "shapes": shapes,
            "census": census,
            "goals": met,
            "meets_goals": all(met.values()),
            "goal_thresholds": GOALS,
            "repeats": repeats,
            "seeds": seeds,
            "shapes_epochs": args.shapes_epochs,
            "census_epochs": args.census_epochs,
            "quick": args.quick,
            "shapes_params": args.shapes_params,
            "per_run": [row for rows in runs.values() for row in rows],
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
