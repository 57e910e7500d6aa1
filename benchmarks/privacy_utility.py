"""Privacy-utility of the key (issue 6): does the `fds` preset's public block hide the sensitive
attribute while staying as useful as a plain `vae`, and does its private block hold it?

For each data set, a plain `vae` and the `fds` preset are trained with the same latent_dim,
network and epochs on the training split; the one leakage estimator
(`fds.privacy.leakage`: logistic regression, gradient boosting and an MLP ensemble, with a
learning curve) fits its attackers on the latents of every training row (at most `--n-attack` if given)
and scores them on the held-out test split, by accuracy beside the majority and by AUC. Utility
is in the target's own terms (`target_utility`: accuracy for these categorical targets), and the
necessary leakage is what the target alone reveals of the sensitive attribute.

- census: sensitive `sex`; target `education` (generated from age and group, not from sex;
  `--census-target high_income` for the registry's target, which sex influences through
  occupation, hours and income).
- shapes: sensitive factor `shape`; target the x position in 4 buckets (x // 4).

Goals (PASS/FAIL per data set):
  hidden   public block's best-attacker accuracy ≤ majority baseline + 2 points
  utility  the public block's utility for the target ≥ the vae latents' − 3 points
  key      private block's best-attacker accuracy on the sensitive attribute ≥ 95 % of the same
           attackers' accuracy on the raw features (the model's input)

Diagnostics beside the goals: "seen" is the share of test rows whose exact input is among the
attacker's rows, "best unseen" the best attacker's accuracy on the other test rows (against their
own majority); `--release sample` shows attackers and probes one posterior draw per row instead
of the means.

`run_row(data, preset, extra)` trains one model and returns one row, so a DP ε loop can call it
with extra FDS parameters (e.g. the DP settings) and add rows.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/privacy_utility.py \\
        [--datasets census,shapes] [--epochs 30] [--n-train 10000] [--n-test 3000] [--seed 0]
        [--n-attack N (default: every training row)]
        [--fds-params '{"private_dim": 1}'] [--release mean|sample]

`--curve` instead runs `fds.workflows.privacy_curve.run_curve` on an `fds` model per data set: for
ε ∈ `--epsilons`, DP training (DP-SGD re-trainings, `--curve-epochs` epochs) and DP release of the
public block; utility = best attacker-classifier accuracy on the target, attacker = the same on
the sensitive attribute, membership AUC (ELBO attack) for DP training. Census declares bounds and
categories (CENSUS_DECLARED, from make_census's generative ranges) so DP needs no data statistics.
Writes benchmarks/results/privacy_curve_{census,shapes}.png.

`--tables` instead measures hiding by construction on census and SLID (benchmarks/table_hiding.py:
a `vae`, a `vae` without the sensitive column, and the `--models` among `fds`, `fds` with mmd 0,
`fds_given` (`mmd_given` = the target) and `fds_given_open` (the same, `private_only` off);
medians over `--seeds`), prints the goals and a `defect` line when the fds public block leaks
more than the vae fitted without the column. `--quick` shrinks any mode to a smoke run (tiny data, 2 epochs).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/privacy_utility.py --tables \
        [--datasets census,slid] [--seeds 0,1,2] [--epochs 30] [--models fds,fds_given]

`--front` sweeps the hiding weight of the key and of its anchors on one split per data set and
plots (utility, leakage) per method (benchmarks/privacy_front.py: `fds` over `mmd` (tables also
`fds_given`, told the target's column), the raw columns without the sensitive one, a `vae` without it, LEACE on `vae` latents, gradient
reversal, the VFAE as a configuration); census (sex; education), shapes (shape; x // 4) and SLID
(sex; log wages); medians over `--seeds`; one process per point with `--jobs`; writes
benchmarks/results/front_<data>.png and says, at each anchor's utility, whether the FDS front
leaks no more. `--quick`: census only, 300 rows, 1 epoch, one weight per method, the FAST
attackers (a smoke run: its figures do not count).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/privacy_utility.py --front \
        [--datasets census,shapes,slid] [--seeds 0] [--n-train 3000] [--n-test 1500]
        [--epochs 15] [--jobs 8]

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/privacy_utility.py --curve \\
        [--epochs 10] [--curve-epochs 3] [--n-train 3000] [--n-test 1000] [--n-attack 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from _common import emit_json, environment, print_table

from fds import FDS
from fds.data.datasets import load_builtin
from fds.data.datasets.census import EDUCATION_LEVELS, OCCUPATIONS
from fds.data.sensitive import is_categorical
from fds.privacy.leakage import attribute_leakage, necessary_leakage, target_utility

LATENT_DIM = 10
HIDDEN = {"census": [256, 256], "shapes": [512, 256]}
GOAL_HIDDEN = 0.02  # public best accuracy ≤ majority + 2 points
GOAL_UTILITY = 0.03  # public utility ≥ vae utility − 3 points
GOAL_KEY = 0.95  # private accuracy ≥ 95 % of raw-feature accuracy


@dataclass
class Split:
    """One data set's train/test rows, the sensitive attribute, the target, and how to fit."""

    name: str
    X_train: Any
    X_test: Any
    s_train: np.ndarray
    s_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    fit_params: dict[str, Any]  # FDS params the fds preset needs (sensitive=…)
    fit_values: Any  # fit(…, sensitive=values) (images) or None (table column)
    target: str


def census(n_train: int, n_test: int, seed: int, target: str) -> Split:
    train = load_builtin("census", n=n_train, seed=seed).X
    test = load_builtin("census", n=n_test, seed=seed, split="test").X
    return Split(
        "census",
        train,
        test,
        train["sex"].to_numpy(),
        test["sex"].to_numpy(),
        train[target].to_numpy(),
        test[target].to_numpy(),
        {"sensitive": ("sex",)},
        None,
        target,
    )


def shapes(n_train: int, n_test: int, seed: int) -> Split:
    train = load_builtin("shapes", n=n_train, seed=seed)
    test = load_builtin("shapes", n=n_test, seed=seed, split="test")
    return Split(
        "shapes",
        train.X,
        test.X,
        train.factors["shape"].to_numpy(),
        test.factors["shape"].to_numpy(),
        train.factors["x"].to_numpy() // 4,
        test.factors["x"].to_numpy() // 4,
        {"sensitive": ("factor:shape",)},
        train.factors[["shape"]].set_axis(["factor:shape"], axis=1),
        "x // 4",
    )


def run_row(
    data: Split,
    preset: str,
    extra: dict[str, Any],
    *,
    epochs: int,
    seed: int,
    n_attack: int | None,
    release: str = "mean",
) -> dict[str, Any]:
    """Train one model and measure it: one row of the table (extra = more FDS parameters).

    `release`: what the attackers and the probe see, the posterior means (what `transform`
    shares by default) or one posterior draw per row."""
    params = {
        "preset": preset,
        "latent_dim": LATENT_DIM,
        "hidden_dims": HIDDEN[data.name],
        "epochs": epochs,
        "seed": seed,
        "verbose": False,
    } | extra
    fit_kw: dict[str, Any] = {}
    if preset == "fds":
        params |= data.fit_params
        if data.fit_values is not None:
            fit_kw["sensitive"] = data.fit_values
    started = time.perf_counter()
    model = FDS(**params).fit(data.X_train, **fit_kw)
    seconds = time.perf_counter() - started
    rows = np.arange(len(data.s_train) if n_attack is None else min(n_attack, len(data.s_train)))
    X_attack = (
        data.X_train.iloc[rows] if isinstance(data.X_train, pd.DataFrame) else data.X_train[rows]
    )
    split = bool(model.model_.private_dim)
    public = "public" if split else "all"
    draw = release == "sample"
    z_tr = model.transform(X_attack, part=public, sample=draw)
    z_te = model.transform(data.X_test, part=public, sample=draw)
    s_tr = data.s_train[rows]
    hidden = attribute_leakage(z_tr, s_tr, z_te, data.s_test, seed=seed)
    unseen = ~_seen_by_attacker(X_attack, data.X_test)
    hidden_unseen = attribute_leakage(z_tr, s_tr, z_te[unseen], data.s_test[unseen], seed=seed)
    continuous = not is_categorical(pd.Series(data.y_train))
    y_tr = data.y_train[rows]
    utility = target_utility(z_tr, y_tr, z_te, data.y_test, continuous=continuous, seed=seed)
    necessary = necessary_leakage(
        y_tr, s_tr, data.y_test, data.s_test, continuous=continuous, seed=seed
    )
    row = {
        "data": data.name,
        "preset": preset,
        "extra": {k: v for k, v in extra.items()},
        "block": public,
        "sensitive_best": hidden["best_accuracy"],
        "sensitive_attacker": hidden["best_attacker"],
        "sensitive_majority": hidden["majority"],
        "sensitive_advantage": hidden["advantage"],
        "sensitive_auc": hidden["best_auc"],
        "sensitive_lower_bound": hidden["lower_bound"],
        "necessary_best": necessary["best_accuracy"],
        "test_share_seen": round(1 - float(unseen.mean()), 4),
        "sensitive_best_unseen": hidden_unseen["best_accuracy"],
        "sensitive_majority_unseen": hidden_unseen["majority"],
        "target": data.target,
        "utility_metric": utility["utility_metric"],
        "utility": utility["utility"],
        "target_majority": utility.get("majority"),
        "n_attack": len(rows),
        "private_best": None,
        "train_seconds": round(seconds, 1),
    }
    if split:
        p_tr = model.transform(X_attack, part="private")
        p_te = model.transform(data.X_test, part="private")
        row["private_best"] = attribute_leakage(p_tr, s_tr, p_te, data.s_test, seed=seed)[
            "best_accuracy"
        ]
    row["raw_sensitive_best"] = _raw_accuracy(model, data, X_attack, rows, seed)
    return row


def _seen_by_attacker(X_attack: Any, X_test: Any) -> np.ndarray:
    """Test rows whose exact input (image or table row) is among the attacker's rows: for those,
    any encoder that maps equal inputs to equal codes lets a lookup attacker read the attribute
    off its own rows, however well the groups' distributions match (shapes' factor grid repeats
    images; real tables rarely repeat rows)."""

    def keys(X: Any) -> list[Any]:
        if isinstance(X, pd.DataFrame):
            return list(pd.util.hash_pandas_object(X, index=False))
        return [row.tobytes() for row in np.ascontiguousarray(X)]

    known = set(keys(X_attack))
    return np.array([key in known for key in keys(X_test)], dtype=bool)


def _raw_accuracy(model: FDS, data: Split, X_attack: Any, rows: np.ndarray, seed: int) -> float:
    """The attackers on the model's input features (standardized/one-hot columns, or pixels)."""
    if isinstance(data.X_train, pd.DataFrame):
        r_tr, r_te = model.codec_.encode(X_attack), model.codec_.encode(data.X_test)
    else:
        r_tr = np.asarray(X_attack, dtype=np.float32).reshape(len(rows), -1) / 255.0
        r_te = np.asarray(data.X_test, dtype=np.float32).reshape(len(data.X_test), -1) / 255.0
    return attribute_leakage(r_tr, data.s_train[rows], r_te, data.s_test, seed=seed)[
        "best_accuracy"
    ]


def goals(vae: dict[str, Any], fds: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """PASS/FAIL of the three goals for one data set."""
    hidden_gap = fds["sensitive_best"] - fds["sensitive_majority"]
    utility_gap = vae["utility"] - fds["utility"]
    key_ratio = fds["private_best"] / fds["raw_sensitive_best"]
    return {
        "hidden": {
            "value": hidden_gap,
            "goal": f"≤ {GOAL_HIDDEN}",
            "pass": hidden_gap <= GOAL_HIDDEN,
        },
        "utility": {
            "value": utility_gap,
            "goal": f"≤ {GOAL_UTILITY}",
            "pass": utility_gap <= GOAL_UTILITY,
        },
        "key": {"value": key_ratio, "goal": f"≥ {GOAL_KEY}", "pass": key_ratio >= GOAL_KEY},
    }


# make_census's generative ranges (src/fds/data/datasets/census.py): declared, not read from the data.
CENSUS_DECLARED: dict[str, Any] = {
    "bounds": {
        "age": [18, 90],
        "hours_per_week": [5, 80],
        "n_children": [0, 6],
        "capital_gain": [0, 100_000],
        "income": [0, 300_000],
    },
    "categories": {
        "sex": ["female", "male"],
        "group": ["A", "B", "C", "D"],
        "education": list(EDUCATION_LEVELS),
        "occupation": list(OCCUPATIONS),
        "married": [False, True],
        "high_income": [0, 1],
    },
}


def curve(data: Split, args: argparse.Namespace, epsilons: tuple[float, ...]) -> dict[str, Any]:
    """The privacy-utility curve of one data set (train + test rows pooled; the model holds out
    the test share as its validation split, on which the curve is scored)."""
    from fds.data.files import LoadedData
    from fds.workflows.privacy_curve import run_curve

    if isinstance(data.X_train, pd.DataFrame):
        X = pd.concat([data.X_train, data.X_test], ignore_index=True)
        loaded = LoadedData(X, data.name)
        sensitive_fit, target, sensitive = None, data.target, "sex"
        extra = CENSUS_DECLARED
    else:
        X = np.concatenate([data.X_train, data.X_test])
        factors = pd.DataFrame(
            {"shape": np.concatenate([data.s_train, data.s_test]),
             "x_bucket": np.concatenate([data.y_train, data.y_test])}
        )  # fmt: skip
        loaded = LoadedData(X, data.name, factors=factors)
        sensitive_fit = factors[["shape"]].set_axis(["factor:shape"], axis=1)
        target, sensitive, extra = "factor:x_bucket", "factor:shape", {}
    params = (
        {
            "preset": "fds",
            "latent_dim": LATENT_DIM,
            "hidden_dims": HIDDEN[data.name],
            "epochs": args.epochs,
            "seed": args.seed,
            "verbose": False,
            "val_fraction": len(data.s_test) / len(X),
        }
        | data.fit_params
        | extra
    )
    model = FDS(**params).fit(X, sensitive=sensitive_fit)
    return run_curve(
        model, loaded, target, sensitive=sensitive, epsilons=epsilons, n_rows=args.n_attack,
        epochs=args.curve_epochs, seed=args.seed, show_progress=True,
    )  # fmt: skip


def main_curve(args: argparse.Namespace) -> None:
    from fds.report.plots import privacy_curve_png
    from fds.workflows.privacy_curve import HEADERS, NOTE, parse_epsilons, summary_rows

    epsilons = parse_epsilons(args.epsilons)
    started = time.perf_counter()
    curves = {}
    for name in args.datasets.split(","):
        data = (
            census(args.n_train, args.n_test, args.seed, args.census_target)
            if name == "census"
            else shapes(args.n_train, args.n_test, args.seed)
        )
        curves[name] = curve(data, args, epsilons)
    seconds = time.perf_counter() - started
    print(f"fds preset, {args.epochs} epochs (run), {args.curve_epochs} epochs per DP re-training, "
          f"n_train {args.n_train}, n_test {args.n_test}, {args.n_attack} attacker rows; {seconds:.0f} s")  # fmt: skip
    print_table(
        ["data", *HEADERS],
        [[name, *row] for name, result in curves.items() for row in summary_rows(result)],
    )
    print(f"note: {NOTE}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    for name, result in curves.items():
        (out / f"privacy_curve_{name}.png").write_bytes(privacy_curve_png(result["points"]))
    emit_json(
        {
            "benchmark": "privacy_curve",
            "args": vars(args),
            "seconds": round(seconds, 1),
            "curves": curves,
            "environment": environment(),
        }
    )


def main_tables(args: argparse.Namespace) -> None:
    """Hiding by construction on census and SLID: each model's medians, the goals, defects."""
    from table_hiding import census_table, goals, models, slid_table

    seeds = [int(s) for s in args.seeds.split(",")]
    names = "census,slid" if args.datasets == "census,shapes" else args.datasets
    out: dict[str, Any] = {}
    for name in names.split(","):
        per_seed = []
        for seed in seeds:
            if name == "census":
                table = census_table(args.n_train or 10000, args.n_test or 3000, seed)
            else:
                table = slid_table(seed)
            if args.quick:
                table.train, table.test = table.train.iloc[:600], table.test.iloc[:300]
            per_seed.append(models(table, seed, args.epochs or 30, tuple(args.models.split(","))))
        verdicts = {m: goals(per_seed, m) for m in per_seed[0] if m.startswith("fds")}
        out[name] = {"seeds": seeds, "per_seed": per_seed, "goals": verdicts}
        print_table(
            ["data", "model", "seed", "leakage", "majority", "AUC", "R²", "recon MSE"],
            [
                [
                    name,
                    model,
                    seed,
                    r["leakage"],
                    r.get("majority"),
                    r["leakage_auc"],
                    r.get("utility_r2"),
                    r.get("recon_mse"),
                ]
                for seed, rows in zip(seeds, per_seed, strict=True)
                for model, r in rows.items()
            ],
        )
        for model, verdict in verdicts.items():
            for goal, v in verdict["checks"].items():
                print(
                    f"{name} {model} {goal}: {v['value']:.4f} (goal {v['goal']}) "
                    f"{'PASS' if v['pass'] else 'FAIL'}"
                )
            if verdict["defect"]:
                print(
                    f"defect: {name} {model}: the public block leaks more than a vae fitted "
                    "without the sensitive column"
                )
    emit_json(
        {
            "benchmark": "privacy_utility_tables",
            "args": vars(args),
            "tables": out,
            "defect": any(
                v["defect"] for t in out.values() for m, v in t["goals"].items() if m == "fds"
            ),
            "environment": environment(),
        }
    )


def main_front(args: argparse.Namespace) -> None:
    """The Pareto front against the anchors (benchmarks/privacy_front.py), one data set per
    process (`--jobs`), one JSON line, a table and benchmarks/results/front_<data>.png."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from privacy_front import TARGETS, assemble, plot, point, tasks

    every = "census" if args.quick else "census,shapes,slid"
    names = (every if args.datasets == "census,shapes" else args.datasets).split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    todo = tasks(names, seeds, args.quick)
    sizes = (args.n_train, args.n_test)
    if args.merge:  # earlier runs' points (other seeds of the same sizes): medians over all
        todo, raw = [], []
        for path in args.merge.split(","):
            runs = json.loads(Path(path).read_text().splitlines()[-1])["fronts"]
            for r in (r for r in runs if r["data"] in names):
                raw += r["per_seed"]
                if len(r["seeds"]) == 1 and all(p["method"] != "necessary" for p in r["per_seed"]):
                    # runs before per_seed held it: one seed's median is that seed's figure
                    nec = {"method": "necessary", "seed": r["seeds"][0], "data": r["data"]}
                    raw.append(nec | {"weight": None, "leakage": r["necessary_leakage"]})
        seeds = sorted({p["seed"] for p in raw})
    elif args.jobs == 1:  # in this process: no start-up cost of workers (--quick)
        raw = [point(n, m, w, sizes, s, args.epochs, args.quick) for n, m, w, s in todo]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [pool.submit(point, n, m, w, sizes, s, args.epochs, args.quick)
                       for n, m, w, s in todo]  # fmt: skip
            raw = [f.result() for f in futures]
    meta = {"seeds": seeds, "epochs": args.epochs}
    results = [
        assemble(n, [p for p in raw if p["data"] == n], meta | {"target": TARGETS[n]})
        for n in names
    ]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    for r in results:
        plot(r, out / f"front_{r['data']}{'_quick' if args.quick else ''}.png")
        print(f"\n{r['data']}: {r['utility_metric']} of {r['target']}, n_train {r['n_train']}, "
              f"n_test {r['n_test']}, {r['epochs']} epochs, seeds {r['seeds']} (medians), "
              f"necessary leakage {r['necessary_leakage']:.4f}")  # fmt: skip
        print_table(
            ["method", "weight", "utility", "leakage", "majority", "AUC", "lower bd"],
            [[p["method"], "" if p["weight"] is None else p["weight"], p["utility"],
              p["leakage"], p["majority"], p["leakage_auc"], "yes" if p["lower_bound"] else "no"]
             for p in r["points"]],
        )  # fmt: skip
        for v in r["verdicts"]:
            weight = "" if v["weight"] is None else f" {v['weight']:g}"
            if v["fds_at_or_below"]:
                print(f"front {r['data']} {v['anchor']}{weight}: FDS at or below "
                      f"({v['fds_leakage']:.4f} ≤ {v['anchor_leakage']:.4f} at utility "
                      f"≥ {v['utility']:.4f})")  # fmt: skip
            elif v["fds_leakage"] is None:
                print(f"front {r['data']} {v['anchor']}{weight}: NOT: no FDS point reaches "
                      f"utility {v['utility']:.4f} (anchor leakage {v['anchor_leakage']:.4f})")  # fmt: skip
            else:
                print(f"front {r['data']} {v['anchor']}{weight}: NOT: FDS leaks "
                      f"{v['fds_leakage']:.4f} > {v['anchor_leakage']:.4f} at utility "
                      f"≥ {v['utility']:.4f}")  # fmt: skip
    emit_json(
        {
            "benchmark": "privacy_front",
            "args": vars(args),
            "seconds": round(time.perf_counter() - started, 1),
            "fronts": results,
            "front_holds": {
                r["data"]: all(v["fds_at_or_below"] for v in r["verdicts"]) for r in results
            },
            "environment": environment(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="census,shapes")
    parser.add_argument("--epochs", type=int, default=None, help="30 (--curve: 10)")
    parser.add_argument("--n-train", type=int, default=None, help="10000 (--curve: 3000)")
    parser.add_argument("--n-test", type=int, default=None, help="3000 (--curve: 1000)")
    parser.add_argument(
        "--n-attack",
        type=int,
        default=None,
        help="training rows the attackers see: every one (--curve: 1000)",
    )
    parser.add_argument("--census-target", default="education")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fds-params", default="{}", help="extra FDS parameters of the fds model, as JSON"
    )
    parser.add_argument(
        "--release",
        choices=("mean", "sample"),
        default="mean",
        help="what attackers and probes see: posterior means (default) or one posterior draw",
    )
    parser.add_argument("--curve", action="store_true", help="the privacy-utility curve over ε")
    parser.add_argument("--curve-epochs", type=int, default=3)
    parser.add_argument("--epsilons", default="0.5,1,2,4,8,inf")
    parser.add_argument("--tables", action="store_true", help="hiding by construction on tables")
    parser.add_argument(
        "--seeds", default="0,1,2", help="--tables, --front: seeds whose medians count"
    )
    parser.add_argument(
        "--models",
        default="fds,fds_mmd0,fds_given,fds_given_open",
        help="--tables: the fds variants beside the two vae anchors",
    )
    parser.add_argument("--front", action="store_true", help="the Pareto front against anchors")
    parser.add_argument("--jobs", type=int, default=1, help="--front: points in parallel")
    parser.add_argument(
        "--merge",
        default="",
        help="--front: comma-separated stdout files of earlier --front runs (other seeds); "
        "trains nothing, plots the medians over all their seeds",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny data, 2 epochs")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.n_train, args.n_test = 2, 600, 300
    if args.tables:
        main_tables(args)
        return
    if args.front:
        if args.quick:  # a smoke run: one weight per method, the FAST attackers
            args.epochs, args.n_train, args.n_test, args.seeds = 1, 300, 150, "0"
        args.epochs, args.n_train = args.epochs or 15, args.n_train or 3000
        args.n_test = args.n_test or 1500
        main_front(args)
        return
    # --curve trains 1 + 2·len(ε) models: smaller defaults keep it within ~10 min on 2 cores
    defaults = (10, 3000, 1000, 1000) if args.curve else (30, 10000, 3000, None)
    for name, value in zip(("epochs", "n_train", "n_test", "n_attack"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.curve:
        main_curve(args)
        return
    fds_extra = json.loads(args.fds_params)
    torch.manual_seed(args.seed)
    results: list[dict[str, Any]] = []
    verdicts: dict[str, Any] = {}
    for name in args.datasets.split(","):
        data = (
            census(args.n_train, args.n_test, args.seed, args.census_target)
            if name == "census"
            else shapes(args.n_train, args.n_test, args.seed)
        )
        kw = {
            "epochs": args.epochs,
            "seed": args.seed,
            "n_attack": args.n_attack,
            "release": args.release,
        }
        vae, fds = run_row(data, "vae", {}, **kw), run_row(data, "fds", fds_extra, **kw)
        results += [vae, fds]
        verdicts[name] = goals(vae, fds)
    headers = ["data", "preset", "block", "sens. best", "majority", "sens. AUC", "lower bd"]
    headers += ["necessary", "utility", "private", "raw sens.", "seen", "best unseen"]
    headers += ["maj. unseen", "train s"]
    print_table(
        headers,
        [
            [
                r["data"],
                r["preset"],
                r["block"],
                r["sensitive_best"],
                r["sensitive_majority"],
                r["sensitive_auc"],
                "yes" if r["sensitive_lower_bound"] else "no",
                r["necessary_best"],
                r["utility"],
                float("nan") if r["private_best"] is None else r["private_best"],
                r["raw_sensitive_best"],
                r["test_share_seen"],
                r["sensitive_best_unseen"],
                r["sensitive_majority_unseen"],
                r["train_seconds"],
            ]
            for r in results
        ],
    )
    print()
    print_table(
        ["data", "goal", "value", "target", "result"],
        [
            [name, goal, v["value"], v["goal"], "PASS" if v["pass"] else "FAIL"]
            for name, checks in verdicts.items()
            for goal, v in checks.items()
        ],
    )
    emit_json(
        {
            "benchmark": "privacy_utility",
            "args": vars(args),
            "rows": results,
            "goals": verdicts,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
