"""Metadata files: what `detect` writes reads back unchanged and declares what FDS would infer;
a bad file is one line naming the file and the culprit."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fds.data.metadata import detect_metadata, fds_kind, read_metadata, with_metadata
from fds.data.tabular import TabularCodec
from fds.errors import ConfigError, DataError
from fds.rundir import write_json


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": [1.25, 3.5, np.nan, 10.0, 2.75],
            "age": [21, 35, 64, 40, 33],
            "delta": [-3, 0, 2, 5, -1],
            "flag": [True, False, True, True, False],
            "dummy": [0, 1, 1, 0, 1],
            "city": ["bern", "basel", None, "chur", "bern"],
            "ratio": [0.5, -0.25, 0.125, 0.0, -1.0],
        }
    )


def test_detect_round_trips_and_describes_each_kind(mixed: pd.DataFrame, tmp_path: Path) -> None:
    detected = detect_metadata(mixed)
    path = write_json(tmp_path / "meta.json", detected.to_json())
    assert read_metadata(path) == detected
    columns = detected.columns
    assert columns["price"]["kind"] == "continuous"
    assert columns["price"]["support"] == {
        "min": 1.25,
        "max": 10.0,
        "sign": "positive",
        "integer": False,
        "decimals": 2,
    }
    assert columns["price"]["missing_rate"] == pytest.approx(0.2)
    assert columns["age"]["kind"] == "integer" and columns["age"]["support"]["min"] == 21
    assert columns["delta"]["support"]["sign"] == "any"
    assert columns["ratio"]["support"]["decimals"] == 3
    big = detect_metadata(pd.DataFrame({"x": [123456.789, 0.1 + 0.2, 7.0]}))
    assert big.columns["x"]["support"]["decimals"] == 3  # not fooled by size or float error
    assert columns["flag"] == {"kind": "boolean", "categories": [False, True], "missing_rate": 0.0}
    assert columns["dummy"]["kind"] == "boolean" and columns["dummy"]["categories"] == [0, 1]
    assert columns["city"]["categories"] == ["basel", "bern", "chur"]


def test_detected_kinds_are_the_ones_fds_infers(census: pd.DataFrame) -> None:
    """Training with the detected file models every column as the zero-metadata path does."""
    metadata = detect_metadata(census)
    inferred = {c.name: c.kind for c in TabularCodec.fit(census).columns}
    assert {name: fds_kind(c) for name, c in metadata.columns.items()} == inferred
    declared = TabularCodec.fit(census, **_codec_args(metadata.params()))
    assert {c.name: c.kind for c in declared.columns} == inferred
    assert {c.name: c.categories for c in declared.columns} == {
        c.name: c.categories for c in TabularCodec.fit(census).columns
    }


def _codec_args(params: dict) -> dict:
    return {
        "kinds": params["columns"],
        "bounds": params.get("bounds"),
        "categories": params.get("categories"),
    }


def test_support_min_and_max_are_declared_bounds(census: pd.DataFrame) -> None:
    params = detect_metadata(census).params()
    assert params["bounds"]["age"] == [census["age"].min(), census["age"].max()]
    codec = TabularCodec.fit(census, **_codec_args(params))
    assert next(c for c in codec.columns if c.name == "age").bounds == params["bounds"]["age"]


def test_metadata_is_laid_over_the_config_per_column() -> None:
    from fds.data.metadata import Metadata

    metadata = Metadata(
        {"a": {"kind": "continuous"}, "b": {"kind": "categorical", "categories": ["x", "y", "z"]}},
        [{"type": "positive", "column": "a"}],
    )
    params = {
        "columns": {"a": "count", "c": "binary"},
        "epochs": 3,
        "constraints": [{"type": "positive", "column": "c"}],
    }
    merged = with_metadata(params, metadata)
    assert merged["columns"] == {"a": "continuous", "c": "binary", "b": "categorical"}
    assert merged["categories"] == {"b": ["x", "y", "z"]} and merged["epochs"] == 3
    assert [r["column"] for r in merged["constraints"]] == ["c", "a"]


def test_detect_refuses_dates_and_empty_columns() -> None:
    with pytest.raises(DataError, match=r"'when'.*dates"):
        detect_metadata(pd.DataFrame({"when": pd.to_datetime(["2020-01-01", "2021-01-01"])}))
    with pytest.raises(DataError, match=r"'void'.*no values"):
        detect_metadata(pd.DataFrame({"void": [np.nan, np.nan], "x": [1.0, 2.0]}))


GOOD = {"columns": {"a": {"kind": "continuous"}, "b": {"kind": "categorical"}}}


def _with(**changes: object) -> dict:
    document = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key in ("a", "b"):
            document["columns"][key] |= value
        else:
            document[key] = value
    return document


BAD = [
    ("list", [1, 2], "JSON object"),
    ("top-key", _with(colums={}), "'colums'"),
    ("format", _with(format="sdv"), "format"),
    ("version", _with(version=2), "version 2"),
    ("no-columns", {"columns": {}}, '"columns"'),
    ("column-not-object", {"columns": {"a": "continuous"}}, "column 'a'"),
    ("kind", _with(a={"kind": "float"}), "column 'a': unknown kind 'float'"),
    ("column-key", _with(a={"min": 0}), "column 'a': unknown key 'min'"),
    ("missing-rate", _with(a={"missing_rate": 1.5}), "column 'a': missing_rate"),
    ("support-on-categorical", _with(b={"support": {"min": 0}}), "column 'b': support"),
    ("categories-on-numeric", _with(a={"categories": [1]}), "column 'a': categories"),
    ("min-above-max", _with(a={"support": {"min": 3, "max": 1}}), "column 'a': support min 3"),
    ("min-text", _with(a={"support": {"min": "0"}}), "column 'a': support min"),
    ("sign", _with(a={"support": {"min": -1, "sign": "positive"}}), "column 'a': sign positive"),
    ("sign-unknown", _with(a={"support": {"sign": "plus"}}), "column 'a': unknown sign 'plus'"),
    ("integer", _with(a={"support": {"integer": True}}), "column 'a': support integer"),
    ("decimals", _with(a={"support": {"decimals": -1}}), "column 'a': decimals"),
    ("categories-repeat", _with(b={"categories": ["x", "x"]}), "column 'b': categories repeat"),
    ("category-object", _with(b={"categories": [{"x": 1}]}), "column 'b': category"),
    ("boolean-three", {"columns": {"f": {"kind": "boolean", "categories": [0, 1, 2]}}}, "'f'"),
    ("constraints-object", _with(constraints={}), '"constraints"'),
    ("rule-type", _with(constraints=[{"type": "sum"}]), "constraints.0"),
    ("rule-field", _with(constraints=[{"type": "inequality", "low": "a"}]), "high"),
    ("rule-column", _with(constraints=[{"type": "positive", "column": "z"}]), "'z'"),
    ("rule-kind", _with(constraints=[{"type": "positive", "column": "b"}]), "'b' is categorical"),
    (
        "combo-kind",
        _with(constraints=[{"type": "fixed_combinations", "columns": ["a", "b"]}]),
        "'a' is continuous",
    ),
]


@pytest.mark.parametrize(("document", "needle"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_metadata_file_is_one_line_naming_file_and_culprit(
    document: object, needle: str, tmp_path: Path
) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as caught:
        read_metadata(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and needle in message, message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"columns": {"a": {"kind": "continuous", "kind": "integer"}}}', "twice"),
        (b'{"columns": {"a": {"kind": "continuous"}}', r"not valid JSON \(line 1"),
        (b'{"columns": {"a": {"kind": "continuous", "missing_rate": NaN}}}', "NaN"),
        (b"\xff\xfe{}", "UTF-8"),
    ],
    ids=["repeated-key", "truncated", "nan", "not-utf8"],
)
def test_a_file_that_is_not_strict_json_is_one_line(
    content: bytes, needle: str, tmp_path: Path
) -> None:
    path = tmp_path / "meta.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle) as caught:
        read_metadata(path)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not found.*nope\.json"):
        read_metadata(tmp_path / "nope.json")


COLUMNS = st.one_of(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3)), min_size=6, max_size=6
    ),
    st.lists(st.integers(-50, 50), min_size=6, max_size=6),
    st.lists(st.booleans(), min_size=6, max_size=6),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=6, max_size=6),
)


@given(columns=st.lists(COLUMNS, min_size=1, max_size=5), holes=st.lists(st.integers(0, 5)))
def test_any_detected_file_reads_back_unchanged(columns: list[list], holes: list[int]) -> None:
    """Whatever the table, what detect writes passes validation and reads back as written."""
    frame = pd.DataFrame({f"c{i}": values for i, values in enumerate(columns)})
    hole = frame.index.isin(sorted(set(holes))[:4])  # some missing values, never all
    frame["c0"] = frame["c0"].where(~hole)
    detected = detect_metadata(frame)
    with tempfile.TemporaryDirectory() as folder:
        path = write_json(Path(folder) / "meta.json", detected.to_json())
        assert read_metadata(path) == detected
    for name, column in detected.columns.items():
        assert column["missing_rate"] == pytest.approx(frame[name].isna().mean(), abs=1e-6)
