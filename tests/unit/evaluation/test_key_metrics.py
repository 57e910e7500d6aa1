"""The key's figures (`fds.evaluation.key`): pure functions of decodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds.evaluation.key import (
    ImageDecodings,
    TableDecodings,
    fit_image_classifier,
    image_key_figures,
    position_r2,
    sprite_positions,
    sprite_sizes,
    swap_donors,
    table_key_figures,
)

CHW = (1, 16, 16)


def _sprites(rows: np.ndarray, cols: np.ndarray, wide: np.ndarray) -> np.ndarray:
    """Flat 16×16 images: a 4×4 square (wide=0) or a 2×8 bar (wide=1) at (row, col)."""
    images = np.zeros((len(rows), 16, 16), dtype=np.float32)
    for i, (r, c, w) in enumerate(zip(rows, cols, wide, strict=True)):
        if w:
            images[i, r : r + 2, c : c + 8] = 1.0
        else:
            images[i, r : r + 4, c + 2 : c + 6] = 1.0
    return images.reshape(len(rows), -1)


def _is_bar(images: np.ndarray) -> np.ndarray:
    """A perfect classifier for `_sprites`: 1 when the drawing is 8 pixels wide."""
    return (images.reshape(-1, 16, 16).max(axis=1).sum(axis=1) > 5).astype(int)


def test_swap_donors_differ_in_the_attribute_whenever_possible() -> None:
    s = np.array([0, 0, 1, 2, 2, 1])
    donors = swap_donors(s, np.random.default_rng(0))
    assert (s[donors] != s).all()
    same = swap_donors(np.zeros(4), np.random.default_rng(0))
    assert (same != np.arange(4)).all()


def test_positions_and_sizes_follow_the_drawing() -> None:
    images = _sprites(np.array([0, 8]), np.array([0, 8]), np.array([0, 0]))
    positions = sprite_positions(images, CHW)
    np.testing.assert_allclose(positions[0], [2 / 16, 4 / 16])
    np.testing.assert_allclose(positions[1] - positions[0], [0.5, 0.5])
    assert sprite_sizes(images, CHW)[0] == pytest.approx(sprite_sizes(images, CHW)[1])
    np.testing.assert_allclose(sprite_positions(np.zeros((1, 256)), CHW), [[0.5, 0.5]])
    assert position_r2(positions, positions) == 1.0
    assert position_r2(positions, positions[::-1]) < 0
    assert position_r2(positions[:1], positions[:1]) is None


def test_image_figures_read_keyed_public_only_and_swapped_decodings() -> None:
    rng = np.random.default_rng(0)
    n = 60
    rows, cols, s = rng.integers(0, 12, n), rng.integers(0, 8, n), rng.integers(0, 2, n)
    donors = swap_donors(s, rng)
    originals = _sprites(rows, cols, s)
    decodings = ImageDecodings(
        originals=originals,
        keyed=originals,
        public_neutral=_sprites(rows, cols, np.zeros(n, dtype=int)),  # one shape for everyone
        public_drawn=_sprites(rows, cols, rng.integers(0, 2, n)),
        swapped=_sprites(rows, cols, s[donors]),  # the donor's shape where the record was
    )
    figures = image_key_figures(decodings, s, donors, _is_bar, CHW)
    fidelity = figures["keyed_fidelity"]
    assert fidelity["attribute_accuracy"] == 1.0 and fidelity["attribute_ratio"] == 1.0
    assert fidelity["reconstruction_mse"] == 0.0 and fidelity["position_r2"] == 1.0
    assert figures["public_only_attribute_accuracy"] == pytest.approx(np.mean(s == 0))
    assert figures["majority"] == pytest.approx(max(np.mean(s), 1 - np.mean(s)))
    assert figures["swap_success"] == 1.0 and figures["swap_kept_own_attribute"] == 0.0
    assert figures["swap_keeps"]["position_r2"] > 0.9


def test_the_image_classifier_learns_the_attribute_from_real_images() -> None:
    rng = np.random.default_rng(1)
    n = 400
    s = rng.integers(0, 2, n)
    images = _sprites(rng.integers(0, 12, n), rng.integers(0, 8, n), s)
    classify = fit_image_classifier(images[:300], s[:300], CHW, seed=0, epochs=3)
    assert np.mean(classify(images[300:]) == s[300:]) > 0.9
    labels = np.where(s == 1, "bar", "square")
    assert set(fit_image_classifier(images[:300], labels[:300], CHW, epochs=1)(images[:5])) <= {
        "bar",
        "square",
    }


def test_table_figures_measure_the_column_and_what_a_swap_keeps() -> None:
    originals = pd.DataFrame(
        {
            "sex": ["f", "m", "m", "f", "m", "f", "m", "m"],
            "age": np.arange(8.0),
            "job": list("abcdabcd"),
        }
    )
    donors = swap_donors(originals["sex"].to_numpy(), np.random.default_rng(0))
    swapped = originals.assign(sex=originals["sex"].to_numpy()[donors], job=list("abcdabcz"))
    drawn = originals.assign(sex=["f", "m", "f", "m", "f", "m", "m", "m"])
    decodings = TableDecodings(originals, originals, originals.assign(sex="m"), drawn, swapped)
    figures = table_key_figures(decodings, "sex", donors, reconstruction_mse=0.1)
    assert figures["keyed_fidelity"] == {"reconstruction_mse": 0.1, "attribute_accuracy": 1.0}
    assert figures["public_only_attribute_accuracy"] == figures["majority"] == 5 / 8
    assert figures["marginal"] == {"f": 3 / 8, "m": 5 / 8}
    assert figures["public_only_drawn_marginal_gap"] == pytest.approx(0.0)
    assert figures["swap_success"] == 1.0
    assert figures["swap_keeps"]["columns"] == {"age": 1.0, "job": 7 / 8}
