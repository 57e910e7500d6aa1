"""`fds tune` against scikit-learn's GridSearchCV, and the privacy–utility front on census.

Search: the latent size of a census `vae` over the grid 1..G (G = 16 by default). GridSearchCV
tries every size with K-fold CV (scored by `FDS.score`, the mean held-out ELBO) and refits the
best; `fds tune` runs at most G/2 trials (TPE over the same integer range, median pruning at
epoch boundaries) and keeps its best run. Both pick on the same search rows; both chosen models
are then scored on the same test rows nobody searched on (`FDS.score`). Goal: tune's test ELBO ≥ the grid's, with ≤ half the candidates.

    OMP_NUM_THREADS=1 python benchmarks/tune.py [--rows 3000] [--grid 16] [--epochs 4]
                                                [--val-fraction 0.25] [--seed 0] [--quick]
    OMP_NUM_THREADS=1 python benchmarks/tune.py --front [--trials 24] [--front-epochs 5]

`--front` runs `fds tune --preset fds --sensitive sex --objective utility:education --objective
leakage` on census (the truthful leakage estimator) and counts the non-dominated points (goal ≥ 5);
its table and PNG go to benchmarks/results/tune_front.{csv,png}.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import emit_json, environment, print_table
from sklearn.model_selection import GridSearchCV

import fds
from fds import FDS
from fds.data.files import read_data

RESULTS = Path(__file__).parent / "results"


def fixed(epochs: int, seed: int, val_fraction: float) -> dict[str, Any]:
    """What every candidate shares: only the latent size is searched. The validation share is
    what `fds tune` judges a trial on (its held-out ELBO); GridSearchCV's candidates train with
    the same split and are judged on its CV folds instead."""
    return {
        "preset": "vae",
        "hidden_dims": [128, 128],
        "epochs": epochs,
        "seed": seed,
        "val_fraction": val_fraction,
    }


def compare(
    rows: int, grid: int, epochs: int, folds: int, seed: int, val_fraction: float
) -> dict[str, Any]:
    X = read_data("census", n=rows, seed=seed).X
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = len(X) // 5
    search, test = X.iloc[np.sort(order[n_test:])], X.iloc[np.sort(order[:n_test])]
    sizes = list(range(1, grid + 1))

    started = time.perf_counter()
    gs = GridSearchCV(
        FDS(**fixed(epochs, seed, val_fraction), verbose=False),
        {"latent_dim": sizes},
        cv=folds,
        n_jobs=1,
    )
    gs.fit(search)
    grid_seconds = time.perf_counter() - started

    work = Path(tempfile.mkdtemp(prefix="fds-tune-bench-"))
    try:
        csv = work / "search.csv"
        search.to_csv(csv, index=False)
        started = time.perf_counter()
        study = fds.tune(
            str(csv),
            out=work / "tune",
            space={"latent_dim": {"type": "int", "low": 1, "high": grid}},
            params={"hidden_dims": [128, 128], "val_fraction": val_fraction},
            trials=grid // 2,
            epochs=epochs,
            seed=seed,
            verbose=False,
        )
        tune_seconds = time.perf_counter() - started
        tuned = FDS.load(work / "tune" / "best" / "model")
        states = [t.state.name for t in study.trials]
        result = {
            "grid": sizes,
            "grid_candidates": len(sizes),
            "grid_fits": len(sizes) * folds + 1,
            "grid_best_latent_dim": int(gs.best_params_["latent_dim"]),
            "grid_test_elbo": gs.best_estimator_.score(test),
            "grid_cv_elbo": [round(float(v), 3) for v in gs.cv_results_["mean_test_score"]],
            "grid_seconds": round(grid_seconds, 1),
            "tune_trials": len(study.trials),
            "tune_pruned": states.count("PRUNED"),
            "tune_best_latent_dim": int(study.best_params["latent_dim"]),
            "tune_test_elbo": tuned.score(test),
            "tune_tried": [
                {"latent_dim": t.params["latent_dim"], "state": t.state.name, "value": t.value}
                for t in study.trials
            ],
            "tune_seconds": round(tune_seconds, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["tune_minus_grid_elbo"] = result["tune_test_elbo"] - result["grid_test_elbo"]
    result["meets_goal"] = bool(
        result["tune_minus_grid_elbo"] >= 0 and result["tune_trials"] * 2 <= len(sizes)
    )
    return result


def front(trials: int, epochs: int, seed: int, out: Path) -> dict[str, Any]:
    study = fds.tune(
        "census",
        out=out,
        preset="fds",
        sensitive=["sex"],
        objectives=["utility:education", "leakage"],
        trials=trials,
        epochs=epochs,
        seed=seed,
        overwrite=True,
        verbose=True,
    )
    table = pd.read_csv(out / "front.csv")
    RESULTS.mkdir(exist_ok=True)
    shutil.copy(out / "front.csv", RESULTS / "tune_front.csv")
    shutil.copy(out / "front.png", RESULTS / "tune_front.png")
    return {
        "trials": len(study.trials),
        "front_size": len(study.best_trials),
        "front": table[["number", "utility:education", "leakage:sex"]].to_dict("records"),
        "meets_goal": len(study.best_trials) >= 5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--grid", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--val-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--front", action="store_true", help="the privacy–utility front instead")
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--front-epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/tune-front"))
    parser.add_argument("--quick", action="store_true", help="smoke run; numbers do not count")
    args = parser.parse_args()
    if args.front:
        trials = 3 if args.quick else args.trials
        result = front(trials, 1 if args.quick else args.front_epochs, args.seed, args.out)
        print_table(
            ["trial", "utility:education (accuracy)", "leakage:sex (best attacker accuracy)"],
            [[r["number"], r["utility:education"], r["leakage:sex"]] for r in result["front"]],
        )
        print(f"non-dominated points: {result['front_size']} of {result['trials']} trials")
    else:
        rows, grid, epochs = (600, 4, 1) if args.quick else (args.rows, args.grid, args.epochs)
        result = compare(rows, grid, epochs, args.folds, args.seed, args.val_fraction)
        print_table(
            ["search", "candidates", "fits", "best latent_dim", "test ELBO", "seconds"],
            [
                [
                    "GridSearchCV",
                    result["grid_candidates"],
                    result["grid_fits"],
                    result["grid_best_latent_dim"],
                    result["grid_test_elbo"],
                    result["grid_seconds"],
                ],
                [
                    "fds tune",
                    result["tune_trials"],
                    result["tune_trials"],
                    result["tune_best_latent_dim"],
                    result["tune_test_elbo"],
                    result["tune_seconds"],
                ],
            ],
        )
    emit_json({"benchmark": "tune", "front" if args.front else "search": result} | environment())


if __name__ == "__main__":
    main()
