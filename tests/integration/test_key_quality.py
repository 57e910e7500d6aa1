"""The `key` group of evaluation.json on a trained model: images and tables, and its summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds import FDS
from fds.data.files import LoadedData, read_data
from fds.workflows.evaluate import evaluate_run, headline
from fds.workflows.key_quality import key_quality

SMALL = {"hidden_dims": [32], "batch_size": 64, "verbose": False, "seed": 0}


@pytest.fixture(scope="module")
def shapes() -> LoadedData:
    return read_data("shapes", n=400, seed=0)


def test_image_key_group_has_every_figure(shapes: LoadedData) -> None:
    shape = shapes.factors["shape"].to_numpy()
    model = FDS(preset="fds", latent_dim=6, private_dim=2, epochs=1, **SMALL)
    model.fit(shapes.X, sensitive=pd.DataFrame({"factor:shape": shape}))
    key = key_quality(model, shapes, fast=True)
    figures = key["attributes"]["factor:shape"]
    assert key["n_rows"] == figures["n_rows"] == 40  # the validation split
    fidelity = figures["keyed_fidelity"]
    assert 0 <= fidelity["attribute_accuracy"] <= 1 and fidelity["reconstruction_mse"] > 0
    assert fidelity["attribute_ratio"] == pytest.approx(
        fidelity["attribute_accuracy"] / fidelity["attribute_accuracy_originals"]
    )
    held_out_shapes = shape[np.sort(np.random.default_rng(0).permutation(400)[:40])]
    assert figures["majority"] == pytest.approx(np.bincount(held_out_shapes).max() / 40)
    for name in ("public_only_attribute_accuracy", "swap_success", "public_only_position_r2"):
        assert figures[name] is not None, name
    assert set(figures["swap_keeps"]) == {"position_r2", "size_r2"}
    assert (
        key_quality(FDS(preset="vae", latent_dim=3, epochs=1, **SMALL).fit(shapes.X), shapes)
        is None
    )


@pytest.mark.slow
def test_table_key_group_reads_the_decoded_column_and_lands_in_evaluation() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, size=800)
    table = pd.DataFrame(
        {
            "x1": 2.0 * s + rng.normal(0, 0.5, 800),
            "x2": rng.normal(size=800),
            "s": np.where(s == 1, "yes", "no"),
        }
    )
    data = LoadedData(table, "table")
    model = FDS(preset="fds", sensitive=("s",), latent_dim=4, epochs=30, lr=3e-3, **SMALL)
    model.fit(table)
    report = evaluate_run(model, data, fast=True, iwae_k=2)
    figures = report["key"]["attributes"]["s"]
    assert figures["keyed_fidelity"]["attribute_accuracy"] > 0.9
    assert figures["swap_success"] > 0.8
    assert set(figures["marginal"]) == {"no", "yes"}
    assert figures["public_only_drawn_marginal_gap"] < 0.2
    assert set(figures["swap_keeps"]["columns"]) == {"x1", "x2"}
    assert report["seconds"]["key"] > 0
    summary = headline(report)
    assert summary["key_s_swap_success"] == figures["swap_success"]
    assert summary["key_s_majority"] == figures["majority"]


def _two_shapes(n: int, side: int = 16, size: int = 6) -> LoadedData:
    """Filled and hollow squares at random places: the shape is the key's, the place public."""
    rng = np.random.default_rng(0)
    shape = rng.integers(0, 2, n)
    top, left = rng.integers(0, side - size + 1, (2, n))
    hollow = np.ones((size, size), np.uint8)
    hollow[1:-1, 1:-1] = 0
    images = np.zeros((n, side, side), np.uint8)
    for i in range(n):
        images[i, top[i] : top[i] + size, left[i] : left[i] + size] = 255 * (
            hollow if shape[i] else 1
        )
    factors = pd.DataFrame({"shape": shape, "x": left, "y": top})
    return LoadedData(images, "two-shapes", factors=factors)


@pytest.mark.slow
def test_the_quickstart_settings_decode_the_shape_from_the_key_alone() -> None:
    """The quickstart's training settings (what/where networks, censor warm-up, best epoch
    restored) on small two-shape images: keyed decodings draw each record's shape in its place,
    public-only ones keep the place but no shape beyond the majority, and a donor's key moves
    the shape, not the place. It fails if the weights a run ends with do not decode the key
    (docs/privacy-key.md, the quickstart's key)."""
    from fds.workflows.quickstart import QUICKSTART
    from fds.workflows.train import split_run_params

    data = _two_shapes(1200)
    params, _ = split_run_params(QUICKSTART)
    params |= {"latent_dim": 6, "private_dim": 2, "epochs": 25}
    sensitive = pd.DataFrame({"factor:shape": data.factors["shape"].to_numpy()})
    model = FDS(**params, verbose=False).fit(data.X, sensitive=sensitive)
    figures = key_quality(model, data, fast=True)["attributes"]["factor:shape"]
    keyed = figures["keyed_fidelity"]
    assert keyed["attribute_accuracy"] >= 0.8 and keyed["position_r2"] >= 0.9
    assert figures["public_only_attribute_accuracy"] <= figures["majority"] + 0.1
    assert figures["public_only_position_r2"] >= 0.9
    assert figures["swap_success"] >= 0.8 and figures["swap_keeps"]["position_r2"] >= 0.9
