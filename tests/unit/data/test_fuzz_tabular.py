"""Property-based: any table — random dtypes, NaN/inf/extreme values, markup and unicode column
names, duplicate columns, one row, no rows — either fits a codec that round-trips with finite
numbers, or is refused with one typed FDSError line. Never another exception."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
from hypothesis import event, given
from hypothesis import strategies as st

from fds.data.codecs import codec_from_json
from fds.data.schema import KINDS
from fds.data.tabular import TabularCodec
from fds.errors import FDSError

NAMES = st.one_of(
    st.sampled_from(["x", "[/red]", "x[/b]", "[bold]a", "âge", "名前", "", " ", "0", "x"]),
    st.text(max_size=8),
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
PLAIN = st.floats(-1e6, 1e6)
EXTREME = st.sampled_from([1e300, -1e308, 1e38, 3.5e38, -1e200, 5e-324, 0.0, -0.0, np.nan])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), FLOATS, st.text(max_size=6), st.sampled_from(["a"])
)


# dtype a column arrives in → the values it is drawn from
COLUMN_KINDS = {
    "float64": st.one_of(PLAIN, FLOATS, EXTREME),
    "float32": st.one_of(PLAIN, FLOATS, EXTREME),
    "float16": st.one_of(PLAIN, FLOATS, EXTREME),  # 1e300 as float16 is inf: also a case
    "int64": st.integers(-(2**63), 2**63 - 1),
    "uint8": st.integers(0, 255),
    "Int64": st.one_of(st.none(), st.integers(-1000, 1000)),
    "bool": st.booleans(),
    "category": st.one_of(st.none(), st.text(max_size=5)),
    "datetime64[ns]": st.datetimes(datetime(1700, 1, 1), datetime(2200, 1, 1)),
    "object": st.one_of(SCALARS, st.integers(2**64, 2**80)),
}


@st.composite
def columns(draw, n: int) -> pd.Series:
    """One column of `n` values in one of the dtypes users' tables arrive in."""
    dtype = draw(st.sampled_from(sorted(COLUMN_KINDS)))
    values = draw(st.lists(COLUMN_KINDS[dtype], min_size=n, max_size=n))
    with np.errstate(over="ignore"):
        return pd.Series(values, dtype=dtype)


@st.composite
def tables(draw) -> pd.DataFrame | np.ndarray:
    n = draw(st.integers(0, 6))
    unique = draw(st.integers(0, 3)) > 0  # duplicate names in a quarter of the tables
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=unique))
    frame = (
        pd.concat([draw(columns(n)) for _ in names], axis=1)
        if n
        else pd.DataFrame({i: [] for i in range(len(names))})
    )
    frame.columns = names
    if draw(st.booleans()) and n:
        return frame.to_numpy()  # arrays too: numeric, object or mixed
    return frame


OPTIONS = st.fixed_dictionaries(
    {
        "missing": st.sampled_from(["error", "impute", "model", "drop"]),
        "transform": st.sampled_from(["standard", "quantile", "bounded"]),
    }
)


@given(data=tables(), options=OPTIONS, kind=st.sampled_from([None, *KINDS, "weird"]))
def test_any_table_fits_and_round_trips_or_is_one_typed_error(data, options, kind) -> None:
    if kind is not None and isinstance(data, pd.DataFrame) and len(data.columns):
        options = options | {"kinds": {str(data.columns[0]): kind}}
    try:
        codec = TabularCodec.fit(data, **options)
    except FDSError as exc:
        assert "\n" not in str(exc)
        event(f"refused: {type(exc).__name__}")
        return
    event("fitted")
    state = json.loads(json.dumps(codec.to_json(), allow_nan=False))  # only finite numbers
    encoded = codec.encode(data)  # a codec always encodes the table it was fitted on
    assert encoded.dtype == np.float32 and encoded.shape == (len(data), codec.n_encoded)
    assert np.isfinite(encoded).all()
    assert np.array_equal(codec_from_json(state).encode(data), encoded)
    decoded = codec.decode(encoded)
    assert len(decoded) == len(data)


@given(data=tables(), options=OPTIONS, raw=st.data())
def test_decoding_any_finite_rows_gives_finite_numbers(data, options, raw) -> None:
    try:
        codec = TabularCodec.fit(data, **options)
    except FDSError:
        return
    values = raw.draw(
        st.lists(
            st.one_of(
                st.floats(width=32, allow_nan=False, allow_infinity=False),
                st.sampled_from([1e30, -1e30, 0.5]),
            ),
            min_size=codec.n_encoded * 2,
            max_size=codec.n_encoded * 2,
        )
    )
    rows = np.asarray(values, dtype=np.float32).reshape(2, codec.n_encoded)
    decoded = codec.decode(rows)
    frame = decoded if isinstance(decoded, pd.DataFrame) else pd.DataFrame(decoded)
    for spec in codec.columns:
        if spec.kind in ("continuous", "count"):
            column = (
                frame[spec.name]
                if isinstance(decoded, pd.DataFrame)
                else frame.iloc[:, codec.feature_names.index(spec.name)]
            )
            numbers = column.to_numpy(dtype=np.float64)
            if spec.indicator:  # NaN where the missingness indicator fires, finite elsewhere
                numbers = numbers[~np.isnan(numbers)]
            assert np.isfinite(numbers).all(), spec.name
