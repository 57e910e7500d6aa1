"""The `balls` data set: RGB images of two balls from 5 independent, visible factors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from fds.data.datasets import load_builtin, render_balls
from fds.data.datasets.balls import BALLS_FACTORS
from fds.errors import DataError


@pytest.fixture(scope="module")
def balls():
    return load_builtin("balls", n=3000, seed=0)


def test_layout_and_labels(balls) -> None:
    assert balls.X.shape == (3000, 32, 32, 3) and balls.X.dtype == np.uint8
    assert list(balls.factors.columns) == list(BALLS_FACTORS)
    np.testing.assert_array_equal(balls.labels, balls.factors["red_size"])


def test_deterministic_per_seed_and_split() -> None:
    a = load_builtin("balls", n=40, seed=2)
    np.testing.assert_array_equal(a.X, load_builtin("balls", n=40, seed=2).X)
    assert not np.array_equal(a.X, load_builtin("balls", n=40, seed=3).X)
    assert not np.array_equal(a.X, load_builtin("balls", n=40, seed=2, split="test").X)


def test_factors_uniform_and_independent(balls) -> None:
    for name, levels in BALLS_FACTORS.items():
        counts = balls.factors[name].value_counts()
        assert sorted(counts.index) == list(range(levels))
        assert counts.min() > 0.5 * len(balls.factors) / levels
    corr = balls.factors.corr().to_numpy()
    assert np.abs(corr[np.triu_indices_from(corr, k=1)]).max() < 0.1


def test_every_factor_is_read_back_from_the_image() -> None:
    """Identifiability: each ball's centre is its channel's centroid and the red size its ink, so
    the image alone fixes all 5 codes (no two code tuples draw the same image)."""
    balls = load_builtin("balls", n=2000, seed=1)
    images, factors = balls.X.astype(float) / 255, balls.factors
    grid = np.linspace(7.0, 25.0, BALLS_FACTORS["red_x"])
    pixel = np.arange(32) + 0.5

    def centre_codes(channel: np.ndarray) -> list[np.ndarray]:
        ink = channel.sum((1, 2))
        centres = [(channel.sum(axis) * pixel).sum(1) / ink for axis in (1, 2)]  # x, y
        return [np.abs(c[:, None] - grid).argmin(1) for c in centres]

    read = dict(
        zip(
            ["red_x", "red_y", "cyan_x", "cyan_y"],
            centre_codes(images[..., 0]) + centre_codes(images[..., 1]),
            strict=True,
        )
    )
    for name, codes in read.items():
        np.testing.assert_array_equal(codes, factors[name], err_msg=name)
    red_ink = images[..., 0].sum((1, 2))
    ranges = [red_ink[factors["red_size"] == s] for s in range(BALLS_FACTORS["red_size"])]
    assert all(lo.max() < 0.9 * hi.min() for lo, hi in itertools.pairwise(ranges))


def test_every_factor_moves_only_its_ball() -> None:
    base = {"red_x": 3, "red_y": 3, "red_size": 1, "cyan_x": 4, "cyan_y": 4}
    images = render_balls(pd.DataFrame([base] + [base | {k: 0} for k in BALLS_FACTORS]))
    red, cyan = images[..., 0].astype(int), images[..., 2].astype(int)
    for i, name in enumerate(BALLS_FACTORS, start=1):
        changed_red = not np.array_equal(red[0], red[i])
        changed_cyan = not np.array_equal(cyan[0], cyan[i])
        assert (changed_red, changed_cyan) == (name.startswith("red"), name.startswith("cyan"))
    np.testing.assert_array_equal(images[..., 1], images[..., 2])  # cyan = green + blue


def test_largest_red_ball_grows_and_stays_inside() -> None:
    corners = pd.DataFrame(
        [(x, y, s, 7 - x, 7 - y) for x in (0, 7) for y in (0, 7) for s in range(4)],
        columns=list(BALLS_FACTORS),
    )
    images = render_balls(corners)
    assert images[:, [0, -1], :].max() == 0 and images[:, :, [0, -1]].max() == 0
    mass = images[..., 0].reshape(-1, 4, 32 * 32).sum(-1)
    assert (np.diff(mass, axis=1) > 0).all()  # a bigger size code draws a bigger ball


def test_bad_codes_are_data_errors() -> None:
    with pytest.raises(DataError, match=r"'red_size' has codes in \[4, 4\]"):
        render_balls(
            pd.DataFrame([{"red_x": 0, "red_y": 0, "red_size": 4, "cyan_x": 0, "cyan_y": 0}])
        )
    with pytest.raises(DataError, match="lack column 'cyan_y'"):
        render_balls(pd.DataFrame([{"red_x": 0, "red_y": 0, "red_size": 0, "cyan_x": 0}]))
