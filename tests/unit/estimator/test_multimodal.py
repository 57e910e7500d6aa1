"""`FDS.fit` on a dict of modalities: codes from any subset, each modality decoded, samples,
and a model directory without pickle that loads back to the same codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fds import FDS
from fds.data.datasets.shapes_mm import make_shapes_mm
from fds.errors import DataError

TINY = {"hidden_dims": (16,), "latent_dim": 3, "epochs": 1, "batch_size": 16, "verbose": False}


@pytest.fixture(scope="module")
def records() -> dict:
    X, _ = make_shapes_mm(20, seed=0)
    X["text"] = list(X["text"])
    X["text"][0] = None  # the first record has no caption
    X["table"] = X["table"].copy()
    X["table"].iloc[1] = np.nan  # the second no measurements
    return {"image": X["image"], "text": X["text"], "table": X["table"]}


@pytest.fixture(scope="module")
def fitted(records: dict) -> FDS:
    return FDS(fusion="mmvae_plus", seed=0, **TINY).fit(records)


def test_codes_from_any_subset(fitted: FDS, records: dict) -> None:
    full = fitted.transform(records)
    from_text = fitted.transform(records, modalities=["text"])
    assert full.shape == from_text.shape == (20, 3)
    np.testing.assert_array_equal(from_text[0], 0.0)  # no caption: the prior mean
    assert not np.allclose(from_text[1:], full[1:])
    only_images = fitted.transform({"image": records["image"]})
    np.testing.assert_allclose(only_images, fitted.transform(records, modalities=["image"]))
    with pytest.raises(DataError, match="names 'text', which the data lacks"):
        fitted.transform({"image": records["image"]}, modalities=["text"])


def test_each_modality_decodes_to_its_own_type(fitted: FDS, records: dict) -> None:
    Z = fitted.transform(records, modalities=["image"])
    captions = fitted.inverse_transform(Z, modality="text")
    assert isinstance(captions, list) and all(isinstance(c, str) for c in captions)
    images = fitted.inverse_transform(Z[:4], modality="image")
    assert images.shape == (4, 32, 32) and images.dtype == np.uint8
    table = fitted.inverse_transform(Z[:4], modality="table")
    assert isinstance(table, pd.DataFrame) and list(table.columns) == list(records["table"].columns)
    with pytest.raises(DataError, match="name the modality to decode: one of image, text, table"):
        fitted.inverse_transform(Z)
    with pytest.raises(DataError, match="unknown modality 'audio'"):
        fitted.inverse_transform(Z, modality="audio")


def test_samples_of_chosen_modalities_repeat_with_a_seed(fitted: FDS) -> None:
    drawn = fitted.sample(5, seed=3, modalities=["image", "text"])
    assert set(drawn) == {"image", "text"} and drawn["image"].shape == (5, 32, 32)
    again = fitted.sample(5, seed=3, modalities=["image", "text"])
    assert drawn["text"] == again["text"] and np.array_equal(drawn["image"], again["image"])


def test_model_directory_round_trip_without_pickle(fitted: FDS, records: dict, tmp_path) -> None:
    path = fitted.save(tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == [
        "codec.json",
        "config.json",
        "manifest.json",
        "weights.safetensors",
    ]
    codec = json.loads((path / "codec.json").read_text())
    assert codec["input_kind"] == "multimodal" and "<unk>" in codec["modalities"]["text"]["words"]
    loaded = FDS.load(path)
    np.testing.assert_allclose(loaded.transform(records), fitted.transform(records), atol=1e-6)
    z = fitted.transform(records)[:3]
    assert loaded.inverse_transform(z, modality="text") == fitted.inverse_transform(
        z, modality="text"
    )


def test_evaluation_reports_coherence_per_subset_and_label(fitted: FDS, records: dict) -> None:
    from fds.workflows.multimodal import evaluate_multimodal, multimodal_headline

    _, factors = make_shapes_mm(20, seed=0)
    group = evaluate_multimodal(fitted, records, None, factors, fast=True, seed=0)
    assert group["n_records"] == 18  # two records lack a modality
    assert group["labels"] == ["shape", "scale", "rotation"]  # x and y have 16 levels
    pairs = {(r["from"], r["to"]) for r in group["cross_coherence"]}
    assert ("image+text", "table") in pairs and ("table", "image") in pairs and len(pairs) == 9
    assert {p["from"] for p in group["probes"]} >= {"image", "image+text+table"}
    rows = multimodal_headline(group)
    assert 0.0 <= rows["coherence_from_one_shape"] <= 1.0 and "joint_coherence_scale" in rows


def test_grids_show_real_and_generated_modalities(fitted: FDS, records: dict, tmp_path) -> None:
    from PIL import Image

    from fds.workflows.multimodal import write_grids

    cross, samples = write_grids(fitted, records, tmp_path)
    assert cross.name == "cross_modal.png" and samples.name == "samples.png"
    wide, _ = Image.open(cross).size
    assert wide > Image.open(samples).size[0]  # real + generated columns vs. one per modality


def test_probes_read_the_fused_code(fitted: FDS, records: dict) -> None:
    _, factors = make_shapes_mm(20, seed=0)
    result = fitted.probe(records, factors["shape"].to_numpy(), heads=["logistic"], seed=0)
    assert {row["features"] for row in result["rows"]} == {"latent"}


def test_bad_multimodal_input_is_named() -> None:
    with pytest.raises(DataError, match="unknown modality 'photo'"):
        FDS(**TINY).fit({"photo": np.zeros((4, 8, 8), np.uint8)})
    with pytest.raises(DataError, match="aligned rows"):
        FDS(**TINY).fit({"image": np.zeros((4, 8, 8), np.uint8), "text": ["a", "b"]})
