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
