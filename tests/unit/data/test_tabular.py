"""Tabular codec (`fds.data.tabular`) and kind inference (`fds.data.schema`): what a user relies
on when a DataFrame goes into the model and comes back out."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from fds.data.datasets import make_census
from fds.data.schema import infer_kind
from fds.data.tabular import TabularCodec
from fds.errors import ConfigError, DataError

N = 120


def _frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    """One column of every kind and of the dtypes users actually have, in a deliberately mixed
    order (categorical first, continuous last) so block order ≠ table order."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "colour": pd.Series(rng.choice(["red", "green", "blue"], n), dtype="str"),
            "height": rng.normal(170, 10, n),
            "visits": rng.poisson(4, n).astype(np.int64),
            "smoker": rng.random(n) < 0.3,
            "member": pd.Series(rng.choice(["no", "yes"], n), dtype="str"),
            "size": pd.Categorical(rng.choice(["S", "M", "L", "XL"], n)),
            "label": rng.integers(0, 2, n).astype(np.int64),
            "weight": rng.lognormal(4, 0.5, n).astype(np.float32),
            "city": pd.Series(rng.choice(["bern", "basel", "chur"], n), dtype=object),
        }
    )


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


# ------------------------------------------------------------------------------ kind inference
@pytest.mark.parametrize(
    ("values", "dtype", "kind"),
    [
        ([0.5, 1.25, -3.0, 2.0], "float64", "continuous"),
        ([1.5, np.nan, 2.25, 0.0], "float64", "continuous"),
        ([-2, 0, 3, 5], "int64", "continuous"),  # negative integers are not counts
        ([0, 3, 1, 7, 2], "int64", "count"),
        ([0, 3, 1, 7, 2], "uint8", "count"),
        ([0, 1, 1, 0], "int64", "binary"),
        ([0.0, 1.0, np.nan, 1.0], "float64", "binary"),
        ([True, False, True], "bool", "binary"),
        (["yes", "no", "yes"], "str", "binary"),
        (["yes", "no", None, "no"], "str", "binary"),
        (["a", "b", "c", "a"], "str", "categorical"),
        (["a", "b", "c", "a"], "object", "categorical"),
        (["a", "b", "a"], "category", "binary"),
        (["lo", "mid", "hi"], "category", "categorical"),
    ],
)
def test_infer_kind(values, dtype, kind) -> None:
    assert infer_kind(pd.Series(values, dtype=dtype)) == kind


def test_fit_infers_each_columns_kind_and_lays_out_blocks() -> None:
    df = _frame()
    codec = TabularCodec.fit(df)
    kinds = {c.name: c.kind for c in codec.columns}
    assert kinds == {
        "colour": "categorical",
        "height": "continuous",
        "visits": "count",
        "smoker": "binary",
        "member": "binary",
        "size": "categorical",
        "label": "binary",
        "weight": "continuous",
        "city": "categorical",
    }
    # real block first (continuous + counts), then binaries, then one block per categorical
    assert [(b.kind, b.width) for b in codec.blocks] == [
        ("real", 3),
        ("binary", 3),
        ("categorical", 3),
        ("categorical", 4),
        ("categorical", 3),
    ]
    assert [b.name for b in codec.blocks[2:]] == ["colour", "size", "city"]
    assert codec.n_encoded == 3 + 3 + 3 + 4 + 3


def test_kinds_override_inference() -> None:
    df = pd.DataFrame({"grade": [1, 2, 3, 2, 1, 3], "n": [0, 1, 5, 2, 2, 9], "yn": list("ynynny")})
    codec = TabularCodec.fit(df, kinds={"grade": "categorical", "n": "continuous"})
    kinds = {c.name: c.kind for c in codec.columns}
    assert kinds == {"grade": "categorical", "n": "continuous", "yn": "binary"}
    encoded = codec.encode(df)
    assert encoded.shape == (6, 1 + 1 + 3)  # n, yn, one-hot grade
    assert np.array_equal(encoded[:, 2:].argmax(1), df["grade"].to_numpy() - 1)
    back = codec.decode(encoded)
    assert back["grade"].tolist() == df["grade"].tolist()


def test_kinds_binary_override_on_a_column_with_more_levels_is_refused() -> None:
    df = pd.DataFrame({"c": ["a", "b", "c"]})
    msg = _error(TabularCodec.fit, df, kinds={"c": "binary"})
    assert "'c'" in msg and "binary" in msg


# -------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("transform", ["standard", "quantile"])
def test_round_trip_recovers_the_table(transform: str) -> None:
    df = _frame()
    codec = TabularCodec.fit(df, transform=transform)
    encoded = codec.encode(df)
    assert encoded.dtype == np.float32
    assert encoded.shape == (N, codec.n_encoded)
    assert np.isfinite(encoded).all()

    back = codec.decode(encoded)
    assert isinstance(back, pd.DataFrame)
    assert list(back.columns) == list(df.columns)
    assert back.dtypes.to_dict() == df.dtypes.to_dict()
    for name in ["colour", "visits", "smoker", "member", "size", "label", "city"]:
        assert back[name].tolist() == df[name].tolist(), name
    assert isinstance(back["size"].dtype, pd.CategoricalDtype)
    assert list(back["size"].cat.categories) == list(df["size"].cat.categories)
    np.testing.assert_allclose(back["height"], df["height"], rtol=1e-5)
    np.testing.assert_allclose(back["weight"], df["weight"], rtol=1e-4)


def test_round_trip_keeps_nullable_and_integer_dtypes() -> None:
    df = pd.DataFrame(
        {
            "n": pd.array([1, 4, 2, 8, 0], dtype="Int64"),
            "x": pd.array([0.5, -1.0, 2.5, 3.0, 1.0], dtype="Float64"),
            "ok": pd.array([True, False, True, True, False], dtype="boolean"),
            "delta": np.array([-3, 4, 0, -1, 2], dtype=np.int64),  # continuous (negative ints)
        }
    )
    codec = TabularCodec.fit(df)
    back = codec.decode(codec.encode(df))
    assert back.dtypes.to_dict() == df.dtypes.to_dict()
    pd.testing.assert_frame_equal(back, df)


def test_encoding_is_standardized_one_hot_and_zero_one() -> None:
    df = _frame(n=400)
    codec = TabularCodec.fit(df)
    encoded = codec.encode(df)
    real, binary = codec.blocks[0], codec.blocks[1]
    block = encoded[:, real.start : real.stop]
    np.testing.assert_allclose(block.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(block.std(0), 1, atol=1e-3)
    assert set(np.unique(encoded[:, binary.start : binary.stop])) <= {0.0, 1.0}
    for cat in codec.blocks[2:]:
        one_hot = encoded[:, cat.start : cat.stop]
        assert set(np.unique(one_hot)) <= {0.0, 1.0}
        assert (one_hot.sum(1) == 1).all()


def test_quantile_transform_maps_a_skewed_column_to_a_standard_normal() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"income": rng.lognormal(10, 1.0, 2000)})
    standard = TabularCodec.fit(df).encode(df)[:, 0]
    quantile = TabularCodec.fit(df, transform="quantile").encode(df)[:, 0]

    def skew(v):
        return float(np.mean(((v - v.mean()) / v.std()) ** 3))

    assert skew(standard) > 2  # standardizing keeps the long tail
    assert abs(skew(quantile)) < 0.1
    assert abs(quantile.mean()) < 0.05 and abs(quantile.std() - 1) < 0.05


def test_decode_reads_probabilities_and_scores() -> None:
    """Model outputs are probabilities (binary) and soft scores (categorical), not exact codes."""
    df = pd.DataFrame({"yn": ["no", "yes", "no"], "c": ["a", "b", "c"]})
    codec = TabularCodec.fit(df)
    soft = np.array(
        [
            [0.9, 0.7, 0.1, 0.2],  # yes, a
            [0.2, 0.3, 0.4, 0.35],  # no, b
            [0.51, 0.0, 0.1, 0.8],  # yes, c
        ],
        dtype=np.float32,
    )
    back = codec.decode(soft)
    assert back["yn"].tolist() == ["yes", "no", "yes"]
    assert back["c"].tolist() == ["a", "b", "c"]


def test_numpy_arrays_round_trip_as_arrays() -> None:
    rng = np.random.default_rng(2)
    x = np.column_stack([rng.normal(size=50), rng.integers(0, 2, 50), rng.poisson(3, 50)])
    codec = TabularCodec.fit(x)
    encoded = codec.encode(x)
    assert encoded.dtype == np.float32 and encoded.shape == (50, 3)
    back = codec.decode(encoded)
    assert isinstance(back, np.ndarray)
    assert back.shape == x.shape
    np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-6)
    msg = _error(codec.encode, x[:, :2])
    assert "3" in msg and "2" in msg


def test_encode_accepts_columns_in_another_order() -> None:
    df = _frame()
    codec = TabularCodec.fit(df)
    shuffled = df[list(reversed(df.columns))]
    assert np.array_equal(codec.encode(shuffled), codec.encode(df))


def test_decode_refuses_the_wrong_width() -> None:
    codec = TabularCodec.fit(_frame())
    msg = _error(codec.decode, np.zeros((2, codec.n_encoded + 1), dtype=np.float32))
    assert str(codec.n_encoded) in msg


# --------------------------------------------------------------------------------- missing
def test_missing_error_names_column_and_row_label() -> None:
    df = pd.DataFrame(
        {"age": [30.0, 41.5, np.nan, 22.0], "city": ["a", "b", "a", "b"]},
        index=["r0", "r1", "r2", "r3"],
    )
    msg = _error(TabularCodec.fit, df)
    assert "'age'" in msg and "'r2'" in msg

    codec = TabularCodec.fit(df.dropna())
    msg = _error(codec.encode, df)
    assert "'age'" in msg and "'r2'" in msg


def test_missing_error_names_an_integer_row_label_plainly() -> None:
    df = pd.DataFrame({"x": [1.5, 2.5, 3.5, np.nan]}, index=[10, 11, 12, 13])
    msg = _error(TabularCodec.fit, df)
    assert re.search(r"\brow 13\b", msg), msg


def test_impute_fills_continuous_with_median_and_categories_with_mode() -> None:
    df = pd.DataFrame(
        {
            "x": [1.0, 2.0, 10.0, np.nan, 4.0],
            "c": pd.Series(["a", "b", "b", "c", None], dtype="str"),
            "n": pd.array([3, pd.NA, 3, 1, 0], dtype="Int64"),
        }
    )
    codec = TabularCodec.fit(df, missing="impute")
    encoded = codec.encode(df)
    assert np.isfinite(encoded).all()
    back = codec.decode(encoded)
    assert back.loc[3, "x"] == pytest.approx(3.0)  # median of 1, 2, 4, 10
    assert back.loc[4, "c"] == "b"  # mode
    assert back.loc[1, "n"] == 2  # median of 0, 1, 3, 3 (rounded for a count)
    assert not back.isna().any().any()
    # the filled row encodes exactly as if the value had been typed in
    typed = df.fillna({"x": 3.0, "c": "b"})
    assert np.array_equal(encoded[3, :1], codec.encode(typed)[3, :1])


def test_per_column_missing_policy() -> None:
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0], "y": [1.0, 2.0, np.nan]})
    codec = TabularCodec.fit(df.iloc[:2], missing={"x": "impute"})
    msg = _error(codec.encode, df)
    assert "'y'" in msg and "row 2" in msg
    assert np.isfinite(codec.encode(df.iloc[:2])).all()

    msg = _error(TabularCodec.fit, df, missing={"x": "impute"})
    assert "'y'" in msg
    codec = TabularCodec.fit(df, missing={"x": "impute", "y": "impute"})
    assert np.isfinite(codec.encode(df)).all()


def test_all_missing_column_is_refused() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "empty": [np.nan, np.nan]})
    assert "'empty'" in _error(TabularCodec.fit, df, missing="impute")


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"missing": "imput"}, "imput"),
        ({"missing": {"x": "dropna"}}, "dropna"),
        ({"transform": "quantil"}, "quantil"),
        ({"kinds": {"x": "ordinal"}}, "ordinal"),
    ],
)
def test_unknown_option_values_are_refused(kwargs, culprit) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.5]})
    msg = _error(TabularCodec.fit, df, **kwargs)
    assert culprit in msg


# --------------------------------------------------------------------- bad columns and values
def test_unseen_category_names_column_and_value() -> None:
    df = pd.DataFrame({"city": ["bern", "basel", "bern"], "x": [1.0, 2.0, 3.0]})
    codec = TabularCodec.fit(df)
    new = pd.DataFrame({"city": ["bern", "zurich"], "x": [1.0, 2.0]})
    msg = _error(codec.encode, new)
    assert "'city'" in msg and "'zurich'" in msg and "row 1" in msg


def test_unseen_binary_level_is_refused() -> None:
    codec = TabularCodec.fit(pd.DataFrame({"yn": ["yes", "no", "yes"]}))
    msg = _error(codec.encode, pd.DataFrame({"yn": ["yes", "maybe"]}))
    assert "'yn'" in msg and "'maybe'" in msg


def test_unknown_and_missing_columns_at_encode() -> None:
    df = pd.DataFrame({"height": [1.0, 2.0, 3.0], "weight": [3.0, 2.0, 1.5]})
    codec = TabularCodec.fit(df)
    msg = _error(codec.encode, df.rename(columns={"height": "hieght"}))
    assert "'hieght'" in msg and "did you mean 'height'" in msg
    msg = _error(codec.encode, df[["weight"]])
    assert "'height'" in msg
    msg = _error(codec.encode, df.assign(extra=1.0))
    assert "'extra'" in msg


@pytest.mark.parametrize("option", ["kinds", "missing"])
def test_options_naming_an_absent_column_suggest_the_right_one(option: str) -> None:
    df = pd.DataFrame({"income": [1.0, 2.0, 3.0], "age": [20, 30, 40]})
    value = {"incme": "continuous"} if option == "kinds" else {"incme": "impute"}
    msg = _error(TabularCodec.fit, df, **{option: value})
    assert "'incme'" in msg and "did you mean 'income'" in msg


def test_empty_table_is_refused() -> None:
    assert "empty" in _error(TabularCodec.fit, pd.DataFrame({"x": []}, dtype=float))
    assert "empty" in _error(TabularCodec.fit, pd.DataFrame(index=range(3)))


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_is_refused_naming_column_and_row(bad: float) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, bad, 4.0], "y": [1.0, 2.0, 3.0, 4.0]})
    msg = _error(TabularCodec.fit, df)
    assert "'x'" in msg and "row 2" in msg and "inf" in msg

    codec = TabularCodec.fit(df.drop(index=2))
    msg = _error(codec.encode, df)
    assert "'x'" in msg and "row 2" in msg and "inf" in msg


@pytest.mark.parametrize("huge", [1e300, 1e308, -1e200, 1e39])
@pytest.mark.parametrize("transform", ["standard", "quantile"])
def test_values_beyond_float32_are_refused_naming_column_and_row(huge, transform) -> None:
    """One huge cell used to give `scale: inf` and only ±inf/NaN samples; now it is refused."""
    df = pd.DataFrame({"x": [1.0, 2.0, huge, 4.0], "n": [0, 1, 2, 3]})
    msg = _error(TabularCodec.fit, df, transform=transform)
    assert "'x'" in msg and "row 2" in msg and "float32" in msg

    codec = TabularCodec.fit(df.drop(index=2), transform=transform)
    msg = _error(codec.encode, df)
    assert "'x'" in msg and "row 2" in msg


def test_a_count_column_with_a_huge_negative_cell_is_refused() -> None:
    df = pd.DataFrame({"visits": [0, 3, 1, 7, -1e200]})
    msg = _error(TabularCodec.fit, df)
    assert "'visits'" in msg and "row 4" in msg


def test_mixed_huge_inf_and_nan_name_the_first_bad_row() -> None:
    df = pd.DataFrame({"x": [1.0, np.nan, 1e300, np.inf, -1e308]})
    msg = _error(TabularCodec.fit, df, missing="impute")
    assert "'x'" in msg and "row 2" in msg


def test_the_largest_float32_values_fit_finite_and_decode_finite() -> None:
    big = float(np.finfo(np.float32).max)
    df = pd.DataFrame(
        {
            "x": [-big, big, 0.0, 1.0, -1.0],
            "n": np.array([0, 5, 2, 1e38, 7], dtype=np.float64),
            "h": np.array([1, 2, 3, 60000, 5], dtype=np.float16),
        }
    )
    codec = TabularCodec.fit(df, kinds={"n": "count"})
    state = json.loads(json.dumps(codec.to_json(), allow_nan=False))  # only finite numbers
    assert all(np.isfinite([c["center"], c["scale"]]).all() for c in state["columns"])
    encoded = codec.encode(df)
    assert np.isfinite(encoded).all()
    extreme = np.array([[1e30] * 3, [-1e30] * 3, [np.inf] * 3], dtype=np.float32)
    decoded = codec.decode(extreme)
    assert np.isfinite(decoded.to_numpy(dtype=np.float64)).all()


def test_a_value_far_outside_a_narrow_fitted_column_is_refused_at_encode() -> None:
    codec = TabularCodec.fit(pd.DataFrame({"x": [1e-30, 2e-30, 3e-30]}))
    msg = _error(codec.encode, pd.DataFrame({"x": [1e30]}))
    assert "'x'" in msg and "row 0" in msg and "standard deviations" in msg


@pytest.mark.parametrize("bounds", [[-1e300, 1e300], [-np.inf, 0.0], [0.0, 1e39]])
def test_declared_bounds_beyond_float32_are_refused(bounds) -> None:
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(ConfigError, match="'x'"):
        TabularCodec.fit(df, bounds={"x": bounds})


def test_string_column_declared_continuous_is_refused() -> None:
    df = pd.DataFrame({"city": ["bern", "basel", "chur"], "x": [1.0, 2.0, 3.0]})
    msg = _error(TabularCodec.fit, df, kinds={"city": "continuous"})
    assert "'city'" in msg and "continuous" in msg


def test_negative_values_declared_count_are_refused() -> None:
    df = pd.DataFrame({"n": [1, -2, 3]})
    msg = _error(TabularCodec.fit, df, kinds={"n": "count"})
    assert "'n'" in msg and "count" in msg


def test_non_numeric_where_a_number_was_fitted() -> None:
    codec = TabularCodec.fit(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    msg = _error(codec.encode, pd.DataFrame({"x": ["a", "b"]}))
    assert "'x'" in msg


# ------------------------------------------------------------------------------------- JSON
@pytest.mark.parametrize("transform", ["standard", "quantile"])
def test_json_round_trip_gives_identical_encodings(transform: str) -> None:
    df = _frame()
    codec = TabularCodec.fit(df, transform=transform, missing="impute")
    state = json.loads(json.dumps(codec.to_json()))
    assert state["input_kind"] == "table"
    restored = TabularCodec.from_json(state)
    assert restored.blocks == codec.blocks
    encoded = codec.encode(df)
    assert np.array_equal(restored.encode(df), encoded)
    pd.testing.assert_frame_equal(restored.decode(encoded), codec.decode(encoded))


def test_json_round_trip_for_a_numpy_codec() -> None:
    x = np.random.default_rng(3).normal(size=(20, 2))
    codec = TabularCodec.fit(x)
    restored = TabularCodec.from_json(json.loads(json.dumps(codec.to_json())))
    assert np.array_equal(restored.encode(x), codec.encode(x))
    assert isinstance(restored.decode(codec.encode(x)), np.ndarray)


def test_from_json_refuses_inconsistent_blocks() -> None:
    state = json.loads(json.dumps(TabularCodec.fit(_frame()).to_json()))
    state["blocks"][0]["stop"] += 1
    assert "blocks" in _error(TabularCodec.from_json, state)


# ----------------------------------------------------------------------------------- census
def test_census_encodes_to_finite_float32_and_round_trips() -> None:
    df = make_census(n=500, seed=0)
    codec = TabularCodec.fit(df)
    encoded = codec.encode(df)
    assert encoded.dtype == np.float32 and encoded.shape == (500, codec.n_encoded)
    assert np.isfinite(encoded).all()
    back = codec.decode(encoded)
    assert list(back.columns) == list(df.columns)
    assert back.dtypes.to_dict() == df.dtypes.to_dict()
    for name in ["sex", "group", "education", "occupation", "married", "age", "n_children"]:
        assert back[name].tolist() == df[name].tolist(), name


@pytest.mark.parametrize("transform", ["standard", "quantile"])
def test_census_with_missing_cells_encodes_after_impute(transform: str) -> None:
    df = make_census(n=500, seed=0, missing=0.1)
    assert df.isna().any().any()
    _error(TabularCodec.fit, df)  # the default policy refuses the gaps
    codec = TabularCodec.fit(df, missing="impute", transform=transform)
    encoded = codec.encode(df)
    assert encoded.dtype == np.float32 and encoded.shape == (500, codec.n_encoded)
    assert np.isfinite(encoded).all()
    assert not codec.decode(encoded).isna().any().any()
