"""Coherence figures against two stand-in fusion models: one that regenerates each record's own
modalities (coherence = the classifiers' accuracy on real data) and one that regenerates another
record's (coherence at chance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fds.data.datasets.shapes_mm import make_shapes_mm
from fds.data.multimodal import MultimodalCodec
from fds.evaluation.coherence import (
    cross_coherence,
    fit_classifiers,
    joint_coherence,
    modality_features,
    reconstruction,
    self_coherence,
    subset_probes,
)


class Lookup:
    """A "fusion model" whose code is the record's index and whose decoder looks the record up
    (shifted by `offset` records: 0 is perfect, anything else decodes a stranger)."""

    def __init__(self, encoded: dict[str, np.ndarray], offset: int) -> None:
        self.kinds = ["text", "table"]
        self.latent_dim = 1
        self.rows = {k: torch.from_numpy(v) for k, v in encoded.items()}
        self.offset = offset

    def fuse(self, x: dict[str, torch.Tensor], mask: torch.Tensor, sample: bool = False):
        return x["index"].float()[:, None], torch.zeros(len(x["index"]), 1)

    def generate(self, z: torch.Tensor, kind: str) -> torch.Tensor:
        n = len(self.rows[kind])
        index = (z[:, 0].abs() * 1000).long() % n if z.abs().max() < 5 else z[:, 0].long()
        return self.rows[kind][(index + self.offset) % n]

    def reconstruct(self, x: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
        return self.generate(self.fuse(x, torch.ones(1, len(x["index"])))[0], kind)


@pytest.fixture(scope="module")
def setup():
    X, factors = make_shapes_mm(300, seed=0)
    data = {"text": X["text"], "table": X["table"]}
    codec = MultimodalCodec.fit(data)
    encoded, _ = codec.encode(data)
    encoded["index"] = np.arange(300)
    labels = {"shape": factors["shape"].to_numpy()}
    return codec, encoded, labels


def test_a_perfect_decoder_scores_the_classifiers_accuracy(setup) -> None:
    codec, encoded, labels = setup
    classifiers = fit_classifiers(codec, encoded, labels)
    rows = cross_coherence(Lookup(encoded, 0), codec, encoded, labels, classifiers)
    assert {(r["from"], r["to"]) for r in rows} == {("text", "table"), ("table", "text")}
    for row in rows:
        features = modality_features(codec, row["to"], encoded[row["to"]])
        real = (classifiers[row["to"], "shape"].predict(features) == labels["shape"]).mean()
        assert row["accuracy"] == pytest.approx(real) and real > 0.9


def test_self_coherence_classifies_each_modality_rebuilt_from_itself(setup) -> None:
    codec, encoded, labels = setup
    classifiers = fit_classifiers(codec, encoded, labels)
    own = self_coherence(Lookup(encoded, 0), codec, encoded, labels, classifiers)
    assert [(r["from"], r["to"]) for r in own] == [("text", "text"), ("table", "table")]
    for row in own:
        features = modality_features(codec, row["to"], encoded[row["to"]])
        real = (classifiers[row["to"], "shape"].predict(features) == labels["shape"]).mean()
        assert row["accuracy"] == pytest.approx(real)
    strangers = self_coherence(Lookup(encoded, 7), codec, encoded, labels, classifiers)
    assert all(r["accuracy"] < 0.5 for r in strangers)


def test_a_decoder_of_strangers_scores_chance(setup) -> None:
    codec, encoded, labels = setup
    classifiers = fit_classifiers(codec, encoded, labels)
    rows = cross_coherence(Lookup(encoded, 7), codec, encoded, labels, classifiers)
    assert all(r["accuracy"] < 0.5 for r in rows)
    joint = joint_coherence(Lookup(encoded, 0), codec, classifiers, ("shape",), 200, seed=0)
    assert joint["shape"] > 0.85  # both modalities of the same record: they agree


def test_probes_and_reconstruction_per_subset(setup) -> None:
    _, encoded, labels = setup
    train = {k: v[:200] for k, v in encoded.items()}
    test = {k: v[200:] for k, v in encoded.items()}
    probes = subset_probes(
        Lookup(encoded, 0), train, {"shape": labels["shape"][:200]}, test,
        {"shape": labels["shape"][200:]},
    )  # fmt: skip
    assert [p["from"] for p in probes] == ["text", "table", "text+table"]
    assert all(p["accuracy"] < 0.6 for p in probes)  # the index says nothing about the shape
    rebuilt = reconstruction(Lookup(encoded, 0), encoded)
    assert rebuilt["text"]["exact_match"] == 1.0 and rebuilt["table"]["mse"] == 0.0


def test_the_image_classifier_judges_the_sprite_not_its_sharpness() -> None:
    X, factors = make_shapes_mm(400, seed=0)
    codec = MultimodalCodec.fit({"image": X["image"]})
    encoded, _ = codec.encode({"image": X["image"]})
    shape = factors["shape"].to_numpy()
    classifier = fit_classifiers(codec, {"image": encoded["image"][:300]}, {"shape": shape[:300]})
    held_out = encoded["image"][300:]
    for blur in (0.0, 1.0):  # a decoder's soft output is scored like the sharp sprite
        features = modality_features(codec, "image", held_out, blur)
        accuracy = (classifier["image", "shape"].predict(features) == shape[300:]).mean()
        assert accuracy > 0.8, (blur, accuracy)
