"""Does `fds evaluate`'s leakage agree with independent attackers that have all the rows (issue 12,
"Agreement")?

For each data set and seed: train a run (census: the `fds` preset with `sex` sensitive; shapes:
the quickstart's settings), run `fds evaluate`'s path on it (`evaluate_path`, with the data set's
utility target), and read the public block's best attacker from evaluation.json. Then fit three
attackers that share no code with the estimator — scikit-learn's `MLPClassifier` (2×256, early
stopping), a random forest (500 trees) and k-nearest neighbours (k = 25, standardized codes) — on
the public posterior means of the same attacker rows (every training row of the model) and score
them on the same held-out rows. Agreement: the estimator's figure is within 2 points of the best
independent attacker's, or above it; beside it the estimator's lower-bound flag.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/leakage_agreement.py \\
        [--datasets census,shapes] [--seeds 0,1,2] [--epochs N] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import emit_json, environment, print_table
from sklearn.ensemble import RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fds.workflows.evaluate import evaluate_path, load_run
from fds.workflows.leakage import attacker_rows
from fds.workflows.quickstart import UTILITY_TARGET, quickstart_params
from fds.workflows.train import train_run

TOLERANCE = 0.02  # "agrees within 2 points"
CENSUS = {"data": "census", "preset": "fds", "sensitive": ["sex"], "latent_dim": 10, "epochs": 20}
ATTRIBUTES = {"census": "sex", "shapes": "factor:shape"}
TARGETS = {"census": "education", "shapes": UTILITY_TARGET}


def independent_attackers(seed: int) -> dict[str, Any]:
    return {
        "sklearn_mlp": make_pipeline(
            StandardScaler(),
            MLPClassifier(
                (256, 256),
                early_stopping=True,
                max_iter=500,
                n_iter_no_change=20,
                random_state=seed,
            ),
        ),
        "random_forest": RandomForestClassifier(500, min_samples_leaf=2, random_state=seed),
        "knn": make_pipeline(StandardScaler(), KNeighborsClassifier(25)),
    }


def _accuracy(model: Any, codes: np.ndarray, values: np.ndarray) -> float:
    return float(np.mean(model.predict(codes) == values))


def run(name: str, seed: int, epochs: int | None) -> dict[str, Any]:
    attribute = ATTRIBUTES[name]
    if name == "shapes":
        params = quickstart_params(epochs)
    else:
        params = CENSUS | ({"epochs": epochs} if epochs else {})
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_run(params | {"seed": seed}, Path(tmp) / "run", verbose=False)
        started = time.perf_counter()
        evaluation, _ = evaluate_path(summary["model_dir"], utility_target=TARGETS[name])
        seconds = time.perf_counter() - started
        model, _, loaded = load_run(summary["model_dir"], None, None)
    figure = evaluation["leakage"]["attributes"][attribute]["public"]
    values = (loaded.factors[attribute.removeprefix("factor:")] if attribute.startswith("factor:")
              else loaded.X[attribute]).to_numpy()  # fmt: skip
    train, test, _ = attacker_rows(model, len(values), seed)
    codes = model.transform(loaded.X, part="public")
    scores = {
        attacker: _accuracy(fitted.fit(codes[train], values[train]), codes[test], values[test])
        for attacker, fitted in independent_attackers(seed).items()
    }
    best = max(scores.values())
    return {
        "data": name,
        "seed": seed,
        "estimator": figure["best_accuracy"],
        "estimator_attacker": figure["best_attacker"],
        "estimator_auc": figure["best_auc"],
        "lower_bound": bool(figure["lower_bound"]),
        "majority": figure["majority"],
        "independent": scores,
        "independent_best": best,
        "difference": figure["best_accuracy"] - best,
        "agrees": figure["best_accuracy"] >= best - TOLERANCE,
        "n_train": len(train),
        "n_test": len(test),
        "evaluate_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="census,shapes")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, help="census 20, shapes the quickstart's 25")
    parser.add_argument("--quick", action="store_true", help="one seed, 1 epoch (a smoke run)")
    args = parser.parse_args()
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    epochs = 1 if args.quick else args.epochs
    rows = [run(name, seed, epochs) for name in args.datasets.split(",") for seed in seeds]
    print_table(
        ["data", "seed", "fds evaluate (attacker)", "independent best", "difference", "lower bound",
         "majority", "agrees"],
        [[r["data"], r["seed"], f"{r['estimator']:.3f} ({r['estimator_attacker']})",
          f"{r['independent_best']:.3f}", f"{r['difference']:+.3f}", r["lower_bound"],
          f"{r['majority']:.3f}", r["agrees"]] for r in rows],
    )  # fmt: skip
    emit_json({"runs": rows, "agrees": all(r["agrees"] for r in rows), "epochs": epochs,
               "quick": args.quick} | environment())  # fmt: skip


if __name__ == "__main__":
    main()
