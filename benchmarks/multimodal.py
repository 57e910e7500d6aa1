"""Multimodal fusion on `shapes-mm` (issue 16): poe, moe, mopoe and mmvae_plus side by side on the
same records and budget, trained on complete records and with `--missing` of the modalities
hidden at random.

Every model is `FDS(fusion=NAME, missing_rate=RATE, **SPEC).fit(X)` on `--n` generated records
(image, caption, sound, table) and scored on `--n-test` held-out records of the test split with
`fds.evaluation.coherence`. 6,000 records by default (940 steps of 10 epochs): at 2,000 the image
encoders had read shape at 0.76 at best (probe), at 6,000 they read it at 0.98 and image →
caption passes 0.90; the 8 runs fill about the 20-min CPU budget (docs/multimodal.md).

- cross-modal coherence: modality B generated from a subset A (posterior mean of A's fused code,
  decoder mean of B; greedy tokens for captions), classified by a logistic regression fitted on
  real training B (image: 2-D Fourier magnitudes; caption: bag of words; sound: spectrum and
  loudness profile; table: encoded row), accuracy against the true shape / scale;
- joint coherence: 500 prior draws decoded into all four modalities, share whose four
  classifiers agree;
- image → image: the image classifier on each test image reconstructed from itself
  (`FusionModel.reconstruct`, MMVAE+'s own latents at their posterior mean): whether the image
  networks keep shape and scale at all, apart from fusion;
- probes: logistic regression on the fused code of the image alone and of all modalities.

Images use the `auto` architecture (the conv networks on these 32 px sprites: fds.models.build.
choose_architecture). Training time is reported as CPU seconds of the process (one thread).

Ceilings (no training): the image classifier on the test sprites drawn at one fixed rotation, and
on their average over the 8 rotations. Rotation reaches only the image, so a code fused from a
caption, sound or table does not hold it, and the Bernoulli-optimal image a decoder can draw
from such a code is the rotation average (every shape tends to a disc); only a decoder told a
rotation (MMVAE+'s own image latent) can draw a definite shape.

Goals (issue 16): single-modality coherence ≥ 0.90 for shape and scale for the best model;
image-alone probe within 2 points of the all-modalities probe; 50 % missing within 3 points of
complete. MultiVae's PolyMNIST anchors (coherence from one modality): MVAE 0.21, MoPoE
0.61–0.67, MMVAE 0.80, MMVAE+ 0.87.

    .venv/bin/python benchmarks/multimodal.py                      # 4 models × {0, 0.5}
    .venv/bin/python benchmarks/multimodal.py --models mmvae_plus --epochs 30
    .venv/bin/python benchmarks/multimodal.py --quick              # a smoke run (< 1 min)
    .venv/bin/python benchmarks/multimodal.py --models moe --sensitive shape   # the key instead

`--sensitive NAME` (a factor such as `shape`, or a column of the table modality such as
`corners`) runs the key's leakage instead of the coherence runs (benchmarks/_multimodal_key.py).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from _common import emit_json, environment, print_table
from _multimodal_key import UTILITY, key_leakage

from fds import FDS
from fds.data.datasets.shapes import SHAPES_FACTORS, render_shapes
from fds.data.datasets.shapes_mm import make_shapes_mm
from fds.evaluation.coherence import (
    cross_coherence,
    fit_classifiers,
    joint_coherence,
    modality_features,
    self_coherence,
    subset_probes,
)

MODELS = ("poe", "moe", "mopoe", "mmvae_plus")
LABELS = ("shape", "scale")
PAIRS = (("text", "image"), ("image", "text"), ("audio", "image"), ("table", "image"))
ANCHORS = {"poe": 0.21, "mopoe": 0.64, "moe": 0.80, "mmvae_plus": 0.87}  # MultiVae, PolyMNIST
SPEC: dict[str, Any] = {
    "latent_dim": 10,
    "modality_specific_dim": 4,
    "hidden_dims": [256, 256],
    "architecture": "auto",  # images: conv (fds.models.build.choose_architecture)
    "batch_size": 64,
    "lr": 1e-3,
    "seed": 0,
}


def evaluate(model: FDS, train: dict, train_y: dict, test: dict, test_y: dict, classifiers):
    fusion, codec = model.model_, model.fusion_.codec
    rows = cross_coherence(fusion, codec, test, test_y, classifiers)
    single = [r for r in rows if "+" not in r["from"]]
    result: dict[str, Any] = {}
    for label in LABELS:
        scores = [r["accuracy"] for r in single if r["label"] == label]
        result[f"single_{label}"] = float(np.mean(scores))
        others = [
            r["accuracy"]
            for r in single
            if r["label"] == label and "image" not in (r["from"], r["to"])
        ]
        result[f"single_no_image_{label}"] = float(np.mean(others))
        for a, b in PAIRS:
            (row,) = [r for r in single if r["label"] == label and (r["from"], r["to"]) == (a, b)]
            result[f"{a}_to_{b}_{label}"] = row["accuracy"]
    for row in self_coherence(fusion, codec, test, test_y, classifiers):
        if row["from"] == "image":
            result[f"image_to_image_{row['label']}"] = row["accuracy"]
    joint = joint_coherence(fusion, codec, classifiers, LABELS, 500, seed=0)
    result |= {f"joint_{k}": v for k, v in joint.items()}
    probes = subset_probes(fusion, train, train_y, test, test_y)
    for label in LABELS:
        for given in ("image", "+".join(fusion.kinds)):
            (row,) = [p for p in probes if p["from"] == given and p["label"] == label]
            name = "image" if given == "image" else "all"
            result[f"probe_{name}_{label}"] = row["accuracy"]
    result["cross"] = rows
    return result


def ceilings(codec, classifiers, factors_test, test_y) -> dict[str, float]:
    """Image-classifier accuracy on the test sprites at rotation 0 and averaged over rotations."""
    factors = factors_test[list(SHAPES_FACTORS)]
    drawn = {
        "fixed_rotation": render_shapes(factors.assign(rotation=0)) / 255.0,
        "rotation_average": np.mean(
            [render_shapes(factors.assign(rotation=r)) / 255.0
             for r in range(SHAPES_FACTORS["rotation"])], 0),
    }  # fmt: skip
    out = {}
    for name, images in drawn.items():
        rows = images.reshape(len(images), -1).astype(np.float32)
        features = modality_features(codec, "image", rows)
        for label in LABELS:
            predicted = classifiers["image", label].predict(features)
            out[f"{name}_{label}"] = float((predicted == test_y[label]).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"of {', '.join(MODELS)}")
    parser.add_argument("--n", type=int, default=6000, help="training records")
    parser.add_argument("--n-test", type=int, default=500, help="held-out records")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--missing", type=float, default=0.5, help="missing_rate of the 2nd run")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument(
        "--sensitive", help="measure the key's leakage of this factor or table column instead"
    )
    parser.add_argument("--seed", type=int, default=0, help="the models' seed (data: seed 0)")
    parser.add_argument(
        "--key-only",
        action="store_true",
        help="with --sensitive: the keyed fusion models only, no references",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_test, args.epochs = 200, 100, 1
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    SPEC["seed"] = args.seed

    X, factors = make_shapes_mm(args.n, seed=0)
    X_test, factors_test = make_shapes_mm(args.n_test, seed=0, split="test")
    if args.sensitive:
        data = (X, factors, X_test, factors_test)
        rows = key_leakage(args.sensitive, models, SPEC, args.epochs, data, not args.key_only)
        return report_key(args, rows)
    train_y = {label: factors[label].to_numpy() for label in LABELS}
    test_y = {label: factors_test[label].to_numpy() for label in LABELS}

    results = []
    for name in models:
        for rate in (0.0, args.missing):
            started, cpu = time.perf_counter(), time.process_time()
            model = FDS(fusion=name, missing_rate=rate, epochs=args.epochs, verbose=False, **SPEC)
            model.fit(X)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            codec = model.fusion_.codec
            train, _ = codec.encode(X)
            test, _ = codec.encode(X_test)
            if not results:  # the classifiers read real data only: fitted once
                classifiers = fit_classifiers(codec, train, train_y)
            scores = evaluate(model, train, train_y, test, test_y, classifiers)
            results.append(
                {"model": name, "missing_rate": rate, "seconds": seconds, "cpu_seconds": cpu}
                | scores
            )
            shown = {k: round(v, 3) for k, v in results[-1].items() if isinstance(v, float)}
            print(f"{name} missing={rate}: {cpu:.0f} CPU s {shown}", flush=True)

    headers = ["model", "missing", "1→ shape", "1→ scale", "1→ shape w/o img", "txt→img",
               "img→txt", "aud→img", "tab→img", "img→img", "joint shape", "probe img",
               "probe all", "cpu s"]  # fmt: skip
    rows = [
        [r["model"], r["missing_rate"], r["single_shape"], r["single_scale"],
         r["single_no_image_shape"],
         r["text_to_image_shape"], r["image_to_text_shape"], r["audio_to_image_shape"],
         r["table_to_image_shape"], r["image_to_image_shape"], r["joint_shape"],
         r["probe_image_shape"], r["probe_all_shape"], round(r["cpu_seconds"])]
        for r in results
    ]  # fmt: skip
    bounds = ceilings(codec, classifiers, factors_test, test_y)
    print()
    print_table(headers, rows)
    print("image classifier on real test sprites, one rotation / averaged over rotations:",
          {k: round(v, 3) for k, v in bounds.items()})  # fmt: skip
    print(
        "(shape accuracy; scale in the JSON line. 1→: mean over single-modality sources; "
        "w/o img: text, audio and table among themselves.)"
    )
    emit_json(
        {
            "benchmark": "multimodal",
            "data": "shapes-mm",
            "n_train": args.n,
            "n_test": args.n_test,
            "epochs": args.epochs,
            "spec": SPEC,
            "multivae_polymnist_anchors": ANCHORS,
            "results": [{k: v for k, v in r.items() if k != "cross"} for r in results],
            "image_ceilings": bounds,
            "environment": environment(),
        }
    )


def report_key(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    """The key's table and JSON line."""
    headers = ["model", "encoded from", "block", f"leakage of {args.sensitive}", "AUC",
               "majority", "lower bound", f"probe {UTILITY}", "cpu s (training)"]  # fmt: skip
    shown = [
        [r["model"], r["from"], r["block"], r["leakage"], r["auc"], r["majority"],
         "yes" if r["lower_bound"] else "no", r[f"probe_{UTILITY}"], round(r["cpu_seconds"])]
        for r in rows
    ]  # fmt: skip
    print()
    print_table(headers, shown)
    emit_json(
        {
            "benchmark": "multimodal",
            "data": "shapes-mm",
            "sensitive": args.sensitive,
            "n_train": args.n,
            "n_test": args.n_test,
            "epochs": args.epochs,
            "spec": SPEC,
            "key_leakage": rows,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
