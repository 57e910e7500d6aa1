"""Conditions and constraints on rows, and the bounded rejection sampler, without a model: each
rule's test agrees with the rule written out by hand, and the sampler never draws past its
budget nor returns a row that breaks a rule."""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fds.config import make_config
from fds.data.conditions import parse_conditions
from fds.data.constraints import fit_constraints, holds
from fds.data.rejection import Rule, draw_accepted
from fds.data.tabular import TabularCodec
from fds.errors import ConditionNotMetError, ConfigError, DataError

FRAME = pd.DataFrame(
    {
        "age": [20, 35, 50, 64, 41, 28],
        "start": [1.25, 2.0, 3.0, 4.0, 5.0, 6.0],
        "end": [1.5, 2.0, 9.0, 4.5, 5.0, 7.0],
        "sex": ["f", "m", "f", "m", "f", "m"],
        "city": ["bern", "basel", "bern", "chur", "basel", "bern"],
        "country": ["ch", "ch", "ch", "ch", "ch", "ch"],
        "level": [1, 2, 3, 1, 2, 3],
    }
)
SPECS = {c.name: c for c in TabularCodec.fit(FRAME, kinds={"level": "categorical"}).columns}
OPS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def rules(*items: dict) -> tuple:
    return make_config(constraints=list(items)).constraints


@given(
    column=st.sampled_from(["age", "start", "end"]),
    op=st.sampled_from(sorted(OPS)),
    value=st.integers(0, 70),
)
def test_a_numeric_condition_keeps_exactly_the_rows_that_meet_it(
    column: str, op: str, value: int
) -> None:
    try:
        (condition,) = parse_conditions([f"{column}{op}{value}"], SPECS)
    except ConditionNotMetError:  # outside the column's range: no row meets it either
        assert not OPS[op](FRAME[column], value).any() or op == "!="
        return
    expected = OPS[op](FRAME[column].to_numpy(), value)
    np.testing.assert_array_equal(condition.meets(FRAME), expected)


def test_conditions_are_typed_by_the_column() -> None:
    text, mapping = parse_conditions(["sex = f", "level=2", "age>=30"], SPECS), {"sex": "m"}
    assert [c.value for c in text] == ["f", 2, 30.0]
    assert text[1].meets(FRAME).tolist() == (FRAME["level"] == 2).tolist()
    (equal,) = parse_conditions(mapping, SPECS)
    assert equal.meets(FRAME).tolist() == (FRAME["sex"] == "m").tolist()
    assert parse_conditions(["level>1"], SPECS)[0].numeric  # categories that are numbers
    assert parse_conditions("age>=30", SPECS) == text[2:]  # one text alone
    with pytest.raises(DataError, match="got int"):
        parse_conditions(5, SPECS)


def test_a_missing_value_meets_no_condition() -> None:
    frame = pd.DataFrame({"sex": ["f", None], "age": [np.nan, 30.0]})
    sex, age = parse_conditions(["sex!=m", "age!=20"], SPECS)
    assert sex.meets(frame).tolist() == [True, False]
    assert age.meets(frame).tolist() == [False, True]


@pytest.mark.parametrize(
    ("condition", "error", "needle"),
    [
        ("sex=x", ConditionNotMetError, "'x' is not a category of column 'sex'"),
        ("citty=bern", DataError, "no column 'citty' (did you mean 'city'?)"),
        ("age>=abc", DataError, "'abc' is not one"),
        ("sex<m", DataError, "< needs numbers"),
        ("age", DataError, "is not COLUMN OP VALUE"),
        ("age>=", DataError, "is not COLUMN OP VALUE"),
        ("age>=inf", DataError, "finite"),
    ],
)
def test_a_bad_condition_is_one_error_naming_it(condition: str, error: type, needle: str) -> None:
    with pytest.raises(error) as caught:
        parse_conditions([condition], SPECS)
    assert needle in str(caught.value) and condition.split(">")[0] in str(caught.value)


def test_conditions_outside_a_declared_range_or_combination_are_refused_before_drawing() -> None:
    bounded = {c.name: c for c in TabularCodec.fit(FRAME, bounds={"age": [18, 70]}).columns}
    with pytest.raises(ConditionNotMetError, match=r"age>=80 cannot be met.*at most 70"):
        parse_conditions(["age>=80"], bounded)
    limits = rules({"type": "range", "column": "start", "low": 0, "high": 10})
    with pytest.raises(ConditionNotMetError, match=r"start<0 cannot be met.*start in \[0, 10\]"):
        parse_conditions(["start<0"], SPECS, limits)
    combos = fit_constraints(
        rules({"type": "fixed_combinations", "columns": ["sex", "city"]}), FRAME, private=False
    )
    with pytest.raises(ConditionNotMetError, match="sex=f, city=chur cannot be met"):
        parse_conditions(["sex=f", "city=chur"], SPECS, combos)
    assert parse_conditions(["sex=m", "city=chur"], SPECS, combos)  # a seen combination


@given(
    frame=st.lists(
        st.tuples(st.integers(-5, 5), st.integers(-5, 5), st.sampled_from(["a", "b"])),
        min_size=1,
        max_size=30,
    ).map(lambda rows: pd.DataFrame(rows, columns=["x", "y", "k"]))
)
def test_each_constraint_keeps_exactly_the_rows_that_obey_it(frame: pd.DataFrame) -> None:
    x, y, k = frame["x"], frame["y"], frame["k"]
    checks = [
        ({"type": "range", "column": "x", "low": -2, "high": 3}, (x >= -2) & (x <= 3)),
        ({"type": "inequality", "low": "x", "high": "y"}, x <= y),
        ({"type": "inequality", "low": "x", "high": "y", "strict": True}, x < y),
        ({"type": "positive", "column": "y"}, y >= 0),
        ({"type": "positive", "column": "y", "strict": True}, y > 0),
        (
            {"type": "fixed_combinations", "columns": ["k", "x"], "combinations": [["a", 1]]},
            (k == "a") & (x == 1),
        ),
    ]
    for rule, expected in checks:
        (parsed,) = rules(rule)
        np.testing.assert_array_equal(holds(parsed, frame), expected.to_numpy(), str(rule))


def test_fitting_constraints_learns_combinations_and_refuses_broken_data() -> None:
    (combo,) = fit_constraints(
        rules({"type": "fixed_combinations", "columns": ["city", "country"]}), FRAME, private=False
    )
    assert set(combo.combinations) == {("basel", "ch"), ("bern", "ch"), ("chur", "ch")}
    with pytest.raises(
        DataError, match=r"end <= start fails on 4 training row\(s\), the first at row 0"
    ):
        fit_constraints(
            rules({"type": "inequality", "low": "end", "high": "start"}), FRAME, private=False
        )
    with pytest.raises(DataError, match="no column 'town'"):
        fit_constraints(rules({"type": "positive", "column": "town"}), FRAME, private=False)
    with pytest.raises(DataError, match="'sex' must hold numbers"):
        fit_constraints(rules({"type": "positive", "column": "sex"}), FRAME, private=False)
    with pytest.raises(ConfigError, match="declare them"):
        fit_constraints(
            rules({"type": "fixed_combinations", "columns": ["city", "sex"]}), FRAME, private=True
        )


def _uniform(seed: int = 0):
    rng = np.random.default_rng(seed)
    calls = []

    def draw(size: int, batch: int) -> pd.DataFrame:
        calls.append(size)
        return pd.DataFrame({"u": rng.random(size)})

    return draw, calls


def test_the_sampler_keeps_only_passing_rows_and_stops_at_n() -> None:
    draw, calls = _uniform()
    rare = Rule("u<0.01", lambda f: (f["u"] < 0.01).to_numpy())
    accepted = draw_accepted(draw, lambda f: f, [rare], 50)
    assert len(accepted.rows) == 50 and (accepted.rows["u"] < 0.01).all()
    assert accepted.draws == sum(calls) <= 100_000  # the default budget for 50 rows


@pytest.mark.parametrize("budget", [1000, 5000, 123_457])
def test_the_sampler_never_draws_past_its_budget(budget: int) -> None:
    draw, calls = _uniform()
    never = Rule("u>1", lambda f: (f["u"] > 1).to_numpy())
    with pytest.raises(ConditionNotMetError, match=rf"no sampled row met u>1 in {budget:,} draws"):
        draw_accepted(draw, lambda f: f, [never], 10, max_draws=budget)
    assert sum(calls) == budget


def test_too_few_rows_is_an_error_unless_fewer_are_allowed() -> None:
    rare = Rule("u<0.001", lambda f: (f["u"] < 0.001).to_numpy())
    draw, _ = _uniform()
    with pytest.raises(ConditionNotMetError, match=r"only \d+ of 1,000 rows met u<0.001"):
        draw_accepted(draw, lambda f: f, [rare], 1000, max_draws=20_000)
    draw, _ = _uniform()
    some = draw_accepted(draw, lambda f: f, [rare], 1000, max_draws=20_000, allow_fewer=True)
    assert 0 < len(some.rows) < 1000 and (some.rows["u"] < 0.001).all()


def test_a_combinations_rule_never_fitted_is_refused_not_silently_empty() -> None:
    """A model trained outside FDS.fit (a federated run) never read its combinations."""
    (unfitted,) = rules({"type": "fixed_combinations", "columns": ["city", "sex"]})
    with pytest.raises(ConfigError, match="fixed combinations of city, sex has no combinations"):
        holds(unfitted, FRAME)


def test_text_typed_for_booleans_and_numbers_finds_the_category() -> None:
    frame = pd.DataFrame({"married": [True, False, True], "level": [1, 2, 3]})
    specs = {c.name: c for c in TabularCodec.fit(frame, kinds={"level": "categorical"}).columns}
    married, level = parse_conditions(["married=true", "level=2.0"], specs)
    assert married.value is True and level.value == 2
    assert married.meets(frame).tolist() == [True, False, True]
    assert level.meets(frame).tolist() == [False, True, False]


def test_the_progress_bar_changes_nothing_but_stderr(monkeypatch, capsys) -> None:
    from fds.data import rejection

    monkeypatch.setattr(rejection, "_QUIET_SECONDS", 0.0)  # show it from the first batch
    rare = Rule("u<0.05", lambda f: (f["u"] < 0.05).to_numpy())
    shown = draw_accepted(_uniform()[0], lambda f: f, [rare], 300, progress=True)
    silent = draw_accepted(_uniform()[0], lambda f: f, [rare], 300)
    pd.testing.assert_frame_equal(shown.rows, silent.rows)
    assert capsys.readouterr().out == ""
