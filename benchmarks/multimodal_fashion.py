"""Multimodal fusion on `fashion-mm` (issue 16): Fashion-MNIST images with generated captions.
poe, moe, mopoe and mmvae_plus on the same records and budget: caption → image and image →
caption class coherence (classifiers fitted on real training images / captions, as in
`benchmarks/multimodal.py`), joint coherence, probes on the fused code of the image alone and of
both, beside a unimodal `vae` of the same size and budget probed on its image codes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multimodal_fashion.py [--n 3000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import emit_json, environment, print_table
from multimodal import MODELS, SPEC
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fds import FDS
from fds.data.datasets import load_builtin
from fds.errors import DataError
from fds.evaluation.coherence import (
    cross_coherence,
    fit_classifiers,
    joint_coherence,
    subset_probes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--n", type=int, default=3000, help="training records")
    parser.add_argument("--n-test", type=int, default=1000, help="held-out records (test split)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_test, args.epochs = 200, 100, 1
    try:
        train_data = load_builtin("fashion-mm", n=args.n)
        test_data = load_builtin("fashion-mm", n=args.n_test, split="test")
    except DataError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        emit_json({"benchmark": "multimodal_fashion", "skipped": str(exc)})
        return
    X, X_test = train_data.X, test_data.X
    y, y_test = {"class": train_data.labels}, {"class": test_data.labels}

    results = []
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        started = time.perf_counter()
        model = FDS(fusion=name, epochs=args.epochs, verbose=False, **SPEC).fit(X)
        seconds = time.perf_counter() - started
        codec, fusion = model.fusion_.codec, model.model_
        train, _ = codec.encode(X)
        test, _ = codec.encode(X_test)
        if not results:
            classifiers = fit_classifiers(codec, train, y)
        cross = {(r["from"], r["to"]): r["accuracy"] for r in cross_coherence(
            fusion, codec, test, y_test, classifiers)}  # fmt: skip
        probes = {p["from"]: p["accuracy"] for p in subset_probes(fusion, train, y, test, y_test)}
        joint = joint_coherence(fusion, codec, classifiers, ("class",), 500, seed=0)["class"]
        results.append(
            {
                "model": name,
                "text_to_image": cross["text", "image"],
                "image_to_text": cross["image", "text"],
                "joint": joint,
                "probe_image": probes["image"],
                "probe_all": probes["image+text"],
                "seconds": seconds,
            }
        )
        print(f"{name}: {seconds:.0f} s {results[-1]}", flush=True)

    started = time.perf_counter()
    vae = FDS(epochs=args.epochs, verbose=False, val_fraction=0.0, **SPEC).fit(X["image"])
    head = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    head.fit(vae.transform(X["image"]), y["class"])
    vae_probe = float(head.score(vae.transform(X_test["image"]), y_test["class"]))
    vae_seconds = time.perf_counter() - started

    print()
    print_table(
        ["model", "caption→image", "image→caption", "joint", "probe image", "probe both", "s"],
        [[r["model"], r["text_to_image"], r["image_to_text"], r["joint"], r["probe_image"],
          r["probe_all"], round(r["seconds"])] for r in results]
        + [["vae (images only)", float("nan"), float("nan"), float("nan"), vae_probe,
            float("nan"), round(vae_seconds)]],
    )  # fmt: skip
    print("(class accuracy of classifiers fitted on real training images / captions)")
    emit_json(
        {
            "benchmark": "multimodal_fashion",
            "n_train": args.n,
            "n_test": args.n_test,
            "epochs": args.epochs,
            "spec": SPEC,
            "results": results,
            "vae_probe_image": vae_probe,
            "vae_seconds": vae_seconds,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
