"""Built-in data sets: determinism, factor coverage, census leakage, and helpful errors."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from fds.data.datasets import (
    available_datasets,
    is_builtin,
    load_builtin,
    make_census,
    render_shapes,
)
from fds.data.datasets.fashion_mnist import FASHION_MNIST_DEFAULT_ROOT
from fds.data.datasets.shapes import SHAPES_FACTORS
from fds.errors import DataError

# ------------------------------------------------------------------ registry


def test_registry_lists_every_dataset() -> None:
    rows = {row["name"]: row for row in available_datasets()}
    assert set(rows) == {
        "shapes",
        "shapes-mm",
        "balls",
        "digits",
        "fashion-mnist",
        "fashion-mm",
        "census",
    }
    assert rows["census"]["kind"] == "table" and rows["shapes"]["kind"] == "images"
    assert rows["shapes-mm"]["kind"] == "multimodal"
    assert all(
        set(row) == {"name", "kind", "description", "available", "hint"} for row in rows.values()
    )
    assert is_builtin("Fashion_MNIST") and not is_builtin("data.csv")


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(
        DataError, match="unknown built-in data set 'shpaes'; did you mean 'shapes'"
    ):
        load_builtin("shpaes")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"split": "valid"}, "unknown split 'valid'"),
        ({"n": 0}, "n=0 must be a positive integer"),
        ({"seed": -1}, "seed=-1 must be a non-negative integer"),
        ({"missing": 0.1}, "unknown option.*missing; valid options: none"),
    ],
)
def test_bad_arguments_are_data_errors(kwargs: dict, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        load_builtin("shapes", **kwargs)


# ------------------------------------------------------------------ shapes


@pytest.fixture(scope="module")
def shapes():
    return load_builtin("shapes", n=4000, seed=0)


def test_shapes_layout(shapes) -> None:
    assert shapes.X.shape == (4000, 32, 32) and shapes.X.dtype == np.uint8
    assert set(np.unique(shapes.X)) == {0, 255}
    assert list(shapes.factors.columns) == ["shape", "scale", "rotation", "x", "y"]
    assert all(dtype == np.int64 for dtype in shapes.factors.dtypes)
    np.testing.assert_array_equal(shapes.labels, shapes.factors["shape"])
    assert shapes.sensitive == ("shape",)


def test_shapes_deterministic_per_seed_and_split() -> None:
    a = load_builtin("shapes", n=50, seed=3)
    b = load_builtin("shapes", n=50, seed=3)
    np.testing.assert_array_equal(a.X, b.X)
    pd.testing.assert_frame_equal(a.factors, b.factors)
    assert not np.array_equal(a.X, load_builtin("shapes", n=50, seed=4).X)
    assert not np.array_equal(a.X, load_builtin("shapes", n=50, seed=3, split="test").X)


def test_shapes_factors_cover_ranges_independently(shapes) -> None:
    for name, levels in SHAPES_FACTORS.items():
        counts = shapes.factors[name].value_counts()
        assert sorted(counts.index) == list(range(levels))
        assert counts.min() > 0.5 * len(shapes.factors) / levels  # roughly uniform
    corr = shapes.factors.corr().to_numpy()
    assert np.abs(corr[np.triu_indices_from(corr, k=1)]).max() < 0.1


def test_shapes_sprites_stay_inside_frame(shapes) -> None:
    border = np.concatenate(
        [shapes.X[:, 0, :], shapes.X[:, -1, :], shapes.X[:, :, 0], shapes.X[:, :, -1]], axis=1
    )
    assert border.max() == 0
    assert (shapes.X > 0).sum(axis=(1, 2)).min() > 0  # every image shows a sprite


def test_shapes_largest_sprites_at_the_corners_stay_inside() -> None:
    corners = pd.DataFrame(
        [(s, 5, r, x, y) for s in range(3) for r in range(8) for x in (0, 15) for y in (0, 15)],
        columns=list(SHAPES_FACTORS),
    )
    images = render_shapes(corners)
    assert images[:, [0, -1], :].max() == 0 and images[:, :, [0, -1]].max() == 0


def test_shapes_differ_by_shape_with_other_factors_fixed() -> None:
    codes = pd.DataFrame({"shape": [0, 1, 2], "scale": 5, "rotation": 1, "x": 7, "y": 7})
    images = render_shapes(codes)
    masses = (images > 0).sum(axis=(1, 2))
    assert len(set(masses.tolist())) == 3  # square > ellipse > triangle in area
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[1], images[2])


@pytest.mark.parametrize(
    ("codes", "pattern"),
    [
        (
            {"shape": [3], "scale": 0, "rotation": 0, "x": 0, "y": 0},
            r"'shape' has codes in \[3, 3\]",
        ),
        ({"shape": [0], "scale": 0, "rotation": 0, "x": 0}, "lack column 'y'"),
    ],
)
def test_render_shapes_rejects_bad_codes(codes: dict, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        render_shapes(pd.DataFrame(codes))


def test_shapes_move_with_x_and_y() -> None:
    codes = pd.DataFrame({"shape": 0, "scale": 2, "rotation": 0, "x": [2, 12], "y": [3, 3]})
    images = render_shapes(codes) > 0
    columns = [np.nonzero(img.any(axis=0))[0].mean() for img in images]
    assert columns[1] - columns[0] == pytest.approx(10.0, abs=0.6)


# ------------------------------------------------------------------ digits


def test_digits_splits_and_scaling() -> None:
    train = load_builtin("digits", seed=0)
    test = load_builtin("digits", seed=0, split="test")
    everything = load_builtin("digits", split="all")
    assert train.X.shape == (1437, 8, 8) and test.X.shape == (360, 8, 8)
    assert everything.X.shape == (1797, 8, 8) and train.X.dtype == np.uint8
    assert train.X.max() == 255 and set(np.unique(train.labels)) == set(range(10))
    assert not np.array_equal(train.X[:360], test.X)
    assert not np.array_equal(train.X, load_builtin("digits", seed=1).X)
    assert load_builtin("digits", n=10).X.shape == (10, 8, 8)
    with pytest.raises(DataError, match="n=5000 exceeds the 1437 rows"):
        load_builtin("digits", n=5000)


# ------------------------------------------------------------------ fashion-mnist


def test_fashion_mnist_missing_root_gives_install_hint(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"fashion-mnist not found in .*apt-get install dataset-fashion-mnist"
    ):
        load_builtin("fashion-mnist", root=tmp_path)


def test_fashion_mnist_unavailable_is_reported(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FDS_FASHION_MNIST", str(tmp_path))
    row = next(r for r in available_datasets() if r["name"] == "fashion-mnist")
    assert row["available"] is False and "apt-get install dataset-fashion-mnist" in row["hint"]


def test_fashion_mnist_reads_a_local_root(tmp_path: Path) -> None:
    images = np.arange(3 * 28 * 28, dtype=np.uint64).reshape(3, 28, 28).astype(np.uint8)
    labels = np.array([4, 0, 9], dtype=np.uint8)
    for stem, array in [("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)]:
        header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(header + array.tobytes()))
    data = load_builtin("fashion-mnist", split="test", root=tmp_path, n=2)
    np.testing.assert_array_equal(data.X, images[:2])
    np.testing.assert_array_equal(data.labels, [4, 0])


@pytest.mark.skipif(
    not (FASHION_MNIST_DEFAULT_ROOT / "train-images-idx3-ubyte.gz").exists(),
    reason="fashion-mnist not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_installed(monkeypatch) -> None:
    monkeypatch.delenv("FDS_FASHION_MNIST", raising=False)
    data = load_builtin("fashion-mnist", n=1000)
    assert data.X.shape == (1000, 28, 28) and data.X.dtype == np.uint8
    assert data.labels.dtype == np.int64 and set(np.unique(data.labels)) == set(range(10))


# ------------------------------------------------------------------ census


@pytest.fixture(scope="module")
def census() -> pd.DataFrame:
    return load_builtin("census", seed=0).X


def test_census_columns_and_dtypes(census: pd.DataFrame) -> None:
    assert len(census) == 5000
    assert census.dtypes.to_dict() == {
        "age": np.int64,
        "sex": pd.CategoricalDtype(["female", "male"]),
        "group": pd.CategoricalDtype(["A", "B", "C", "D"]),
        "education": object,
        "occupation": object,
        "hours_per_week": np.int64,
        "capital_gain": np.float64,
        "income": np.float64,
        "married": bool,
        "n_children": np.int64,
        "high_income": np.int64,
    }
    assert census["age"].between(18, 90).all() and census["n_children"].between(0, 6).all()
    assert census["education"].nunique() == 6 and census["occupation"].nunique() == 8
    assert set(census["high_income"]) == {0, 1}


def test_census_is_skewed_and_imbalanced(census: pd.DataFrame) -> None:
    assert census["age"].skew() > 0.5 and census["income"].skew() > 1.0
    assert 0.8 < (census["capital_gain"] == 0).mean() < 0.97  # zero-inflated
    assert census["capital_gain"].skew() > 5  # heavy tail
    shares = census["group"].value_counts(normalize=True)
    assert shares.max() > 0.5 and shares.min() < 0.1
    assert 0.15 < census["high_income"].mean() < 0.45


def test_census_sex_is_predictable_from_other_columns(census: pd.DataFrame) -> None:
    features = pd.get_dummies(
        census.drop(columns=["sex"]), columns=["group", "education", "occupation"], dtype=float
    ).astype(float)
    features = (features - features.mean()) / features.std()
    target = census["sex"] == "male"
    accuracy = cross_val_score(LogisticRegression(max_iter=500), features, target, cv=3).mean()
    baseline = target.value_counts(normalize=True).max()
    assert baseline < 0.56 and 0.65 <= accuracy <= 0.85


def test_census_deterministic_and_split_dependent() -> None:
    a = load_builtin("census", n=200, seed=1)
    pd.testing.assert_frame_equal(a.X, load_builtin("census", n=200, seed=1).X)
    assert not a.X.equals(load_builtin("census", n=200, seed=2).X)
    assert not a.X.equals(load_builtin("census", n=200, seed=1, split="test").X)
    np.testing.assert_array_equal(a.labels, a.X["high_income"])
    assert a.sensitive == ("sex",) and a.factors is None


def test_census_missing_blanks_values() -> None:
    table = load_builtin("census", n=1000, missing=0.1).X
    missing = table.isna().mean()
    for column in ("age", "education", "occupation", "hours_per_week", "income"):
        assert missing[column] == pytest.approx(0.1)
    assert missing[["sex", "high_income"]].sum() == 0
    assert table["age"].dtype == np.float64  # like read_csv on an int column with gaps
    with pytest.raises(DataError, match=r"missing=1\.5 must be in \[0, 1\)"):
        make_census(10, missing=1.5)
