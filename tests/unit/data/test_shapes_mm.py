"""`shapes-mm`: four modalities of one sprite, each carrying the factors it promises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fds.data.datasets import load_builtin
from fds.data.datasets.shapes import render_shapes
from fds.data.datasets.shapes_mm import _PITCH_HZ, SAMPLE_RATE, make_shapes_mm
from fds.data.multimodal.text import tokenize


def test_builtin_loads_aligned_modalities_and_factors() -> None:
    data = load_builtin("shapes_mm", n=40, seed=3)
    X = data.X
    assert set(X) == {"image", "text", "audio", "table"}
    assert X["image"].shape == (40, 32, 32) and len(X["text"]) == 40
    assert X["audio"].shape[0] == 40 and len(X["table"]) == 40
    assert list(data.factors.columns) == ["shape", "scale", "rotation", "x", "y"]
    np.testing.assert_array_equal(data.labels, data.factors["shape"])
    # the image is the `shapes` sprite of the same factors
    np.testing.assert_array_equal(X["image"], render_shapes(data.factors))


def test_same_seed_same_records_other_split_other_records() -> None:
    a, fa = make_shapes_mm(20, seed=1)
    b, _fb = make_shapes_mm(20, seed=1)
    _c, fc = make_shapes_mm(20, seed=1, split="test")
    assert a["text"] == b["text"] and np.array_equal(a["audio"], b["audio"])
    assert not fa.equals(fc)


def test_captions_name_shape_and_size_in_varied_words() -> None:
    X, factors = make_shapes_mm(300, seed=0)
    squares = [t for t, s in zip(X["text"], factors["shape"], strict=True) if s == 0]
    words = {w for t in squares for w in tokenize(t)}
    assert {"square", "box", "block"} <= words and "triangle" not in words
    assert len({t.split()[0] for t in X["text"]}) >= 4  # several templates
    huge = [t for t, s in zip(X["text"], factors["scale"], strict=True) if s == 5]
    assert all(("huge" in t) or ("giant" in t) for t in huge)


def test_sound_pitch_encodes_shape_and_loudness_the_scale() -> None:
    X, factors = make_shapes_mm(90, seed=0)
    spectrum = torch.fft.rfft(torch.from_numpy(X["audio"])).abs().numpy()
    freqs = np.fft.rfftfreq(X["audio"].shape[1], 1 / SAMPLE_RATE)
    peak = freqs[spectrum.argmax(1)]
    nearest = np.abs(peak[:, None] - np.asarray(_PITCH_HZ)[None, :]).argmin(1)
    np.testing.assert_array_equal(nearest, factors["shape"])
    energy = (X["audio"] ** 2).mean(1)
    small, large = energy[factors["scale"] == 0], energy[factors["scale"] == 5]
    assert small.max() < large.min()


def test_table_measures_position_and_size_with_noise() -> None:
    X, factors = make_shapes_mm(200, seed=0)
    table = X["table"]
    assert np.corrcoef(table["x_px"], factors["x"])[0, 1] > 0.95
    assert np.corrcoef(table["radius_px"], factors["scale"])[0, 1] > 0.95
    corners = table["corners"].astype(int).to_numpy()
    right = corners == np.array([4, 0, 3])[factors["shape"]]
    assert 0.85 < right.mean() < 1.0  # sometimes misread, mostly right


def test_fashion_mm_captions_name_the_class() -> None:
    from fds.data.datasets.fashion_mm import FASHION_WORDS
    from fds.data.datasets.fashion_mnist import fashion_mnist_status

    installed, hint = fashion_mnist_status()
    if not installed:
        pytest.skip(f"fashion-mnist is not installed: {hint}")
    data = load_builtin("fashion-mm", n=200)
    assert data.X["image"].shape == (200, 28, 28) and len(data.X["text"]) == 200
    for text, label in zip(data.X["text"], data.labels, strict=True):
        assert any(word in text for word in FASHION_WORDS[label])
    assert len(set(data.X["text"])) > 50  # wording varies
