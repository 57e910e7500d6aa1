"""`FDS.sample(n, conditions=...)` on a model with constraints: every row meets every condition
and obeys every constraint, a condition no row meets is an error naming it, and a model without
either samples exactly as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fds import FDS, DataError
from fds.data.constraints import holds
from fds.errors import ConditionNotMetError
from tests.conftest import FAST

CONSTRAINTS = [
    {"type": "range", "column": "age", "low": 18, "high": 90},
    {"type": "inequality", "low": "n_children", "high": "age"},
    {"type": "fixed_combinations", "columns": ["occupation", "education"]},
    {"type": "positive", "column": "income", "strict": True},
]


@pytest.fixture(scope="module")
def constrained() -> FDS:
    from fds.data.datasets import make_census

    return FDS(**FAST, constraints=CONSTRAINTS).fit(make_census(n=400, seed=0))


def _obeys_all(model: FDS, rows: pd.DataFrame) -> bool:
    return all(holds(rule, rows).all() for rule in model.config_.constraints)


def test_conditions_are_met_by_every_row(constrained: FDS) -> None:
    rows = constrained.sample(300, seed=1, conditions=["sex=female", "age>=30", "education!=none"])
    assert len(rows) == 300
    assert (rows["sex"] == "female").all() and (rows["age"] >= 30).all()
    assert (rows["education"] != "none").all() and _obeys_all(constrained, rows)
    by_mapping = constrained.sample(50, seed=2, conditions={"occupation": "care"})
    assert (by_mapping["occupation"] == "care").all()


def test_constraints_hold_on_every_unconditional_row(constrained: FDS) -> None:
    rows = constrained.sample(2000, seed=3)
    assert len(rows) == 2000 and _obeys_all(constrained, rows)
    combos = constrained.config_.constraints[2].combinations
    assert {tuple(r) for r in rows[["occupation", "education"]].itertuples(index=False)} <= set(
        combos
    )


@given(
    column=st.sampled_from(["age", "hours_per_week", "income", "n_children"]),
    op=st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
    quantile=st.floats(0, 1),
)
def test_any_numeric_condition_is_met_or_refused(
    constrained: FDS, column: str, op: str, quantile: float
) -> None:
    from fds.data.datasets import make_census

    value = float(np.quantile(make_census(n=400, seed=0)[column], quantile).round())
    condition = f"{column}{op}{value:g}"
    try:
        rows = constrained.sample(
            20, seed=4, conditions=[condition], max_draws=4000, allow_fewer=True
        )
    except ConditionNotMetError as error:
        assert condition in str(error)
        return
    values = rows[column].to_numpy(dtype=float)
    expected = {"==": values == value, "!=": values != value, "<": values < value}
    expected |= {"<=": values <= value, ">": values > value, ">=": values >= value}
    assert 1 <= len(rows) <= 20 and expected[op].all() and _obeys_all(constrained, rows)


def test_an_impossible_condition_is_an_error_naming_it(constrained: FDS) -> None:
    with pytest.raises(ConditionNotMetError, match=r"age>=95 cannot be met.*age in \[18, 90\]"):
        constrained.sample(10, conditions=["age>=95"])
    with pytest.raises(
        ConditionNotMetError, match="'nurse' is not a category of column 'occupation'"
    ):
        constrained.sample(10, conditions={"occupation": "nurse"})
    with pytest.raises(ConditionNotMetError, match=r"no sampled row met condition income>1e12"):
        constrained.sample(10, conditions=["income>1e12"], max_draws=3000)


def test_too_few_rows_is_an_error_unless_fewer_are_allowed(constrained: FDS) -> None:
    rare = ["sex=female", "occupation=craft", "age>=60"]
    with pytest.raises(ConditionNotMetError, match=r"only \d+ of 500 rows met"):
        constrained.sample(500, seed=5, conditions=rare, max_draws=2000)
    rows = constrained.sample(500, seed=5, conditions=rare, max_draws=2000, allow_fewer=True)
    assert 0 < len(rows) < 500 and (rows["occupation"] == "craft").all()


def test_conditional_samples_are_reproducible_per_seed(constrained: FDS) -> None:
    first = constrained.sample(40, seed=6, conditions=["sex=male"])
    pd.testing.assert_frame_equal(first, constrained.sample(40, seed=6, conditions=["sex=male"]))
    assert not first.equals(constrained.sample(40, seed=7, conditions=["sex=male"]))


def test_constraints_and_learned_combinations_survive_save_and_load(
    constrained: FDS, tmp_path: Path
) -> None:
    loaded = FDS.load(constrained.save(tmp_path / "model"))
    assert loaded.config_.constraints == constrained.config_.constraints
    assert loaded.config_.constraints[2].combinations  # read from the training rows at fit
    pd.testing.assert_frame_equal(loaded.sample(30, seed=8), constrained.sample(30, seed=8))


def test_without_conditions_or_constraints_sampling_is_unchanged(census: pd.DataFrame) -> None:
    model = FDS(**FAST).fit(census)
    pd.testing.assert_frame_equal(model.sample(25, seed=9), model._draw(25, 9))


def test_training_rows_that_break_a_constraint_are_refused(census: pd.DataFrame) -> None:
    rule = {"type": "inequality", "low": "hours_per_week", "high": "age"}
    with pytest.raises(DataError, match="hours_per_week <= age fails on"):
        FDS(**FAST, constraints=[rule]).fit(census)


def test_conditions_need_a_table(digits: np.ndarray) -> None:
    model = FDS(**FAST).fit(digits)
    with pytest.raises(DataError, match="table columns"):
        model.sample(3, conditions={"x": 1})
