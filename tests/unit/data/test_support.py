"""Decoded and sampled numbers stay inside their column's support: the range seen at fit (or the
declared bounds), integers for integer columns, the data's decimals; missing values modelled by an
indicator come back as NaN where it fires. Property-based: any column, any decoder output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fds.data.support import detect_decimals
from fds.data.tabular import TabularCodec
from fds.errors import DataError

TRANSFORMS = ("bounded", "standard", "quantile")


@st.composite
def numeric_columns(draw) -> pd.Series:
    """A float column with a fixed number of decimals, possibly skewed, or an int64 column."""
    n = draw(st.integers(3, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = draw(st.sampled_from(["normal", "lognormal", "uniform", "spike"]))
    scale = 10.0 ** draw(st.integers(-2, 5))
    values = {
        "normal": rng.normal(0, scale, n),
        "lognormal": rng.lognormal(0, 1.5, n) * scale,
        "uniform": rng.uniform(-scale, scale, n),
        "spike": np.where(rng.random(n) < 0.7, 0.0, rng.exponential(scale, n)),
    }[shape]
    if draw(st.booleans()):
        return pd.Series(np.rint(values).astype(np.int64))
    return pd.Series(np.round(values, draw(st.integers(0, 4))))


def _decoder_outputs(codec: TabularCodec, n: int, data) -> np.ndarray:
    """Anything a decoder head might emit: wide, extreme, but finite float32."""
    return data.draw(
        arrays(
            np.float32,
            (n, codec.n_encoded),
            elements=st.floats(-1e6, 1e6, allow_nan=False, width=32),
        )
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(column=numeric_columns(), transform=st.sampled_from(TRANSFORMS), data=st.data())
def test_any_decoded_value_keeps_the_columns_support(column, transform, data) -> None:
    frame = pd.DataFrame({"x": column})
    codec = TabularCodec.fit(frame, transform=transform)
    decoded = codec.decode(_decoder_outputs(codec, 8, data))["x"]
    values = decoded.to_numpy(dtype=np.float64)
    assert values.min() >= column.min() and values.max() <= column.max()
    assert decoded.dtype == column.dtype  # integers stay integers
    decimals = detect_decimals(column.to_numpy(dtype=np.float64))
    assert decimals is not None
    assert np.allclose(
        np.round(values, decimals), values, rtol=0, atol=1e-9 * max(1, abs(values).max())
    )


@settings(max_examples=40, deadline=None)
@given(column=numeric_columns(), transform=st.sampled_from(TRANSFORMS))
def test_encoding_then_decoding_gives_the_values_back(column, transform) -> None:
    frame = pd.DataFrame({"x": column})
    codec = TabularCodec.fit(frame, transform=transform)
    back = codec.decode(codec.encode(frame))["x"].to_numpy(dtype=np.float64)
    original = column.to_numpy(dtype=np.float64)
    # float32 holds ~7 significant digits: beyond that, the nearest value at the data's precision
    tolerance = 1e-5 * (original.max() - original.min()) + 10.0 ** -(detect_decimals(original) or 0)
    assert np.abs(back - original).max() <= tolerance


def test_two_decimal_money_decodes_with_two_decimals_and_never_negative() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"wage": np.round(rng.lognormal(2.5, 0.6, 500), 2)})
    codec = TabularCodec.fit(frame, transform="bounded")
    noise = rng.normal(0, 5, (2000, codec.n_encoded)).astype(np.float32)
    wage = codec.decode(noise)["wage"]
    assert (wage >= frame.wage.min()).all() and (wage <= frame.wage.max()).all()
    assert (wage.round(2) == wage).all()
    assert codec.columns[0].log_scale is not None  # skewed: log-spread before the logit


def test_declared_bounds_hold_under_dp_without_reading_the_data() -> None:
    frame = pd.DataFrame({"age": np.arange(20, 70, dtype=np.int64)})
    codec = TabularCodec.fit(
        frame, bounds={"age": [18, 90]}, declared_only=True, transform="bounded"
    )
    spec = codec.columns[0]
    assert spec.support is None and spec.bounds == [18.0, 90.0]
    decoded = codec.decode(np.array([[-50.0], [0.0], [50.0]], dtype=np.float32))["age"]
    assert decoded.tolist() == [18, 54, 90] and decoded.dtype == np.int64


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_the_missingness_indicator_round_trips_nan(transform: str) -> None:
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame(
        {
            "income": np.where(rng.random(n) < 0.3, np.nan, np.round(rng.lognormal(10, 1, n), 2)),
            "age": rng.integers(18, 80, n),
            "city": pd.Series(rng.choice(["bern", "basel", None], n, p=[0.5, 0.4, 0.1])),
        }
    )
    codec = TabularCodec.fit(frame, missing="model", transform=transform)
    assert [c.name for c in codec.columns if c.indicator] == ["income", "city"]
    back = codec.decode(codec.encode(frame))
    pd.testing.assert_frame_equal(back.isna(), frame.isna())
    assert back["age"].dtype == np.int64  # no gaps: still int64


def test_an_integer_column_with_gaps_decodes_to_whole_floats_like_pandas() -> None:
    frame = pd.DataFrame({"n": [1.0, 2.0, np.nan, 4.0, 7.0, np.nan]})
    codec = TabularCodec.fit(frame, missing="model")
    back = codec.decode(codec.encode(frame))["n"]
    assert back.isna().tolist() == frame["n"].isna().tolist()
    assert (back.dropna() == back.dropna().round()).all()


def test_drop_is_refused_by_the_codec_once_rows_were_dropped() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    codec = TabularCodec.fit(frame, missing="drop")
    with pytest.raises(DataError, match="missing: drop"):
        codec.encode(pd.DataFrame({"x": [1.0, np.nan]}))
