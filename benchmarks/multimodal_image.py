"""Why coherence to images stays at chance on `shapes-mm` (issue 16): the budget or the fusion?

A plain single-modality `vae` (`FDS(preset="vae", architecture=A)`) trained on the SAME training
images as `benchmarks/multimodal.py` (its records, spec and epochs; no caption, sound or table)
and scored the same way: each test image rebuilt from its own code (posterior mean, decoder mean)
and read by the benchmark's blur-trained image classifier (`fds.evaluation.coherence.
fit_classifiers`, fitted on the same real training records). If the plain vae also draws discs
(image → image shape near chance, 0.33), the budget or the decoder is the limit; if it draws
shapes, the fusion objective is what blurs the image decoder. `--fusion` trains fusion models
the same way (one run, scored after each epoch count) and scores them with the benchmark's own
`evaluate`, so a fusion model's image → image can be set beside the plain vae's at equal epochs.
Figures: docs/multimodal.md, "Budget or fusion?".

    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multimodal_image.py
    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multimodal_image.py \\
        --epochs 10,20,40,80,160      # one run per architecture, scored after each count
    PYTHONPATH=src OMP_NUM_THREADS=1 .venv/bin/python benchmarks/multimodal_image.py \\
        --architectures "" --fusion mmvae_plus --epochs 10,20,40
    .venv/bin/python benchmarks/multimodal_image.py --quick      # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import emit_json, environment, print_table
from multimodal import LABELS, SPEC, evaluate

from fds import FDS
from fds.data.datasets.shapes_mm import make_shapes_mm
from fds.data.multimodal import MultimodalCodec
from fds.evaluation.coherence import fit_classifiers, modality_features

ARCHITECTURES = ("conv", "what_where")
_BATCH = 512


@torch.no_grad()
def rebuilt(model: FDS, images: np.ndarray) -> np.ndarray:
    """Each image's decoder mean at its posterior-mean code, as encoded rows (pixels in [0, 1],
    not rounded to bytes as `inverse_transform` would)."""
    net, parts = model.model_, []
    for start in range(0, len(images), _BATCH):
        x = torch.from_numpy(model.codec_.encode(images[start : start + _BATCH]))
        parts.append(net.likelihood.mean(net.decode(net.encode(x).mean)).numpy())
    return np.concatenate(parts).reshape(len(images), -1)


def image_to_image(
    model: FDS, codec: MultimodalCodec, classifiers, images: np.ndarray, labels: dict
) -> dict[str, float]:
    """The benchmark's image classifier on each image rebuilt from itself, and the MSE."""
    decoded = rebuilt(model, images)
    features = modality_features(codec, "image", decoded)
    out = {
        f"image_to_image_{name}": float((classifiers["image", name].predict(features) == y).mean())
        for name, y in labels.items()
    }
    truth = codec.encode({"image": images})[0]["image"]
    out["mse"] = float(((decoded - truth) ** 2).mean())
    return out


def curve(make: Callable[..., FDS], data: Any, counts: list[int]) -> Iterator[tuple]:
    """(epochs, CPU seconds so far, model) after each epoch count: one run, resumed from its
    checkpoint to the next count (a constant lr: the weights of a run of that many epochs)."""
    cpu = 0.0
    with tempfile.TemporaryDirectory() as run_dir:
        for epochs in counts:
            started = time.process_time()
            model = make(epochs=epochs).fit(data, run_dir=Path(run_dir), resume=True)
            cpu += time.process_time() - started
            yield epochs, cpu, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--n", type=int, default=6000, help="training records")
    parser.add_argument("--n-test", type=int, default=500, help="held-out records")
    parser.add_argument(
        "--epochs",
        default="10",
        help="epoch counts to score at, comma-separated: one run per architecture, resumed "
        "from its checkpoint to each next count (constant lr: the same weights as a run of "
        "that many epochs)",
    )
    parser.add_argument(
        "--fusion", default="", help="fusion models to train the same way (scored as the benchmark)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the models' seed (data: seed 0)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_test, args.epochs = 200, 100, "1,2"
    counts = sorted({int(e) for e in args.epochs.split(",")})
    X, factors = make_shapes_mm(args.n, seed=0)
    X_test, factors_test = make_shapes_mm(args.n_test, seed=0, split="test")
    train_y = {label: factors[label].to_numpy() for label in LABELS}
    test_y = {label: factors_test[label].to_numpy() for label in LABELS}
    codec = MultimodalCodec.fit({"image": X["image"]})  # the benchmark's image codec
    classifiers = fit_classifiers(codec, codec.encode({"image": X["image"]})[0], train_y)
    spec = {k: v for k, v in SPEC.items() if k not in ("modality_specific_dim", "architecture")}
    spec["seed"] = args.seed
    spec["val_fraction"] = 0.0  # every training record, as the fusion models train

    results: list[dict[str, Any]] = []
    for arch in [a.strip() for a in args.architectures.split(",") if a.strip()]:
        make = partial(FDS, preset="vae", architecture=arch, verbose=False, **spec)
        for epochs, cpu, model in curve(make, X["image"], counts):
            scores = image_to_image(model, codec, classifiers, X_test["image"], test_y)
            results.append({"model": f"vae {arch}", "epochs": epochs, "cpu_seconds": cpu} | scores)
            print(f"vae {arch} {epochs} epochs: {cpu:.0f} CPU s {scores}", flush=True)
    fitted: dict[str, Any] = {}
    for name in [f.strip() for f in args.fusion.split(",") if f.strip()]:
        make = partial(FDS, fusion=name, verbose=False, **(SPEC | {"seed": args.seed}))
        for epochs, cpu, model in curve(make, X, counts):
            full = model.fusion_.codec  # fitted on the same records every time
            train, _ = full.encode(X)
            test, _ = full.encode(X_test)
            if name not in fitted:  # the classifiers read real data only: fitted once
                fitted[name] = fit_classifiers(full, train, train_y)
            scores = evaluate(model, train, train_y, test, test_y, fitted[name])
            scores = {k: v for k, v in scores.items() if k != "cross"}
            results.append({"model": name, "epochs": epochs, "cpu_seconds": cpu} | scores)
            shown = {k: round(v, 3) for k, v in scores.items()}
            print(f"{name} {epochs} epochs: {cpu:.0f} CPU s {shown}", flush=True)

    print()
    print_table(
        ["model", "epochs", "img→img shape", "img→img scale", "txt→img shape", "probe img",
         "CPU s"],
        [[r["model"], r["epochs"], r["image_to_image_shape"], r["image_to_image_scale"],
          r.get("text_to_image_shape", ""), r.get("probe_image_shape", ""),
          round(r["cpu_seconds"])] for r in results],
    )  # fmt: skip
    emit_json(
        {
            "benchmark": "multimodal_image",
            "data": "shapes-mm",
            "n_train": args.n,
            "n_test": args.n_test,
            "epochs": counts,
            "spec": spec | {"preset": "vae"},
            "results": results,
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
