"""`census`: a generated census-like mixed-type table whose sensitive column `sex` leaks through
other columns (the privacy features' test bed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fds.data.datasets.splits import Loaded, split_rng
from fds.errors import DataError

__all__ = [
    "CENSUS_MISSING_COLUMNS",
    "EDUCATION_LEVELS",
    "GROUPS",
    "OCCUPATIONS",
    "load_census",
    "make_census",
]

EDUCATION_LEVELS = ("none", "high_school", "some_college", "bachelor", "master", "doctorate")
OCCUPATIONS = ("admin", "care", "craft", "sales", "tech", "management", "service", "transport")
GROUPS = ("A", "B", "C", "D")
CENSUS_MISSING_COLUMNS = ("age", "education", "occupation", "hours_per_week", "income")

# Occupation logits: base, shift per male (vs. female), shift per education level.
_OCC_BASE = np.array([0.6, 0.3, -0.2, 0.4, -0.6, -1.3, 0.5, -0.4])
_OCC_MALE = np.array([-1.0, -1.6, 1.7, -0.1, 0.8, 0.4, -0.5, 1.6])
_OCC_EDU = np.array([0.0, 0.0, -0.3, 0.0, 0.45, 0.5, -0.3, -0.3])
# Log-income shift per occupation.
_OCC_PAY = np.array([0.0, -0.25, 0.1, 0.05, 0.45, 0.6, -0.3, 0.05])


def make_census(
    n: int = 5000, seed: int = 0, split: str = "train", missing: float = 0.0
) -> pd.DataFrame:
    """Generate a census-like table whose sensitive column `sex` leaks through other columns.

    Generative story (all draws from one generator seeded by (seed, split)):
      sex ~ Bernoulli(0.52 male); group ~ Cat(.62,.20,.12,.06); age = 18 + Gamma(2, 10)
      clipped at 90 (right skew); education ~ Cat over 6 levels, a bit higher for young
      and group A; married ~ logistic(age); n_children ~ Poisson(age, married) ≤ 6.
      occupation ~ softmax(base + sex effect + education effect) — the main leak;
      hours_per_week ~ N(38 + 6·male − 2·children·female, 7) clipped 5..80 — second leak;
      income = exp(9.9 + 0.15·edu + occupation pay + 0.012·(hours−40) + 0.12·male + N(0, .45));
      capital_gain = 0 for ~90 %, else a Pareto(1.6) tail scaled by income;
      high_income ~ Bernoulli(sigmoid(log income, education, age, capital gain)).
    Together occupation, hours and income predict `sex` at roughly 75 % vs. a 52 % baseline.
    `missing` blanks that fraction of cells (NaN / None) in CENSUS_MISSING_COLUMNS.
    """
    if not isinstance(missing, int | float) or not 0.0 <= missing < 1.0:
        raise DataError(f"census: missing={missing} must be in [0, 1)")
    rng = split_rng(seed, split)
    male = rng.random(n) < 0.52
    group = rng.choice(len(GROUPS), size=n, p=[0.62, 0.20, 0.12, 0.06])
    age = np.minimum(18 + rng.gamma(2.0, 10.0, size=n), 90).astype(np.int64)
    edu = _education(rng, age, group)
    married = rng.random(n) < _sigmoid((age - 30) / 6)
    children = np.minimum(rng.poisson(np.where(married, 1.6, 0.3) * (age < 60)), 6)
    sex_sign = np.where(male, 0.5, -0.5)
    occupation = _sample_softmax(
        rng, _OCC_BASE + np.outer(sex_sign, _OCC_MALE) + np.outer(edu, _OCC_EDU)
    )
    hours = 38 + 6 * male - 2 * children * ~male + rng.normal(0, 7, size=n)
    hours = np.clip(np.rint(hours), 5, 80).astype(np.int64)
    log_income = (
        9.9
        + 0.15 * edu
        + _OCC_PAY[occupation]
        + 0.012 * (hours - 40)
        + 0.12 * male
        + rng.normal(0, 0.45, size=n)
    )
    income = np.exp(log_income)
    has_gain = rng.random(n) < 0.05 + 0.1 * _sigmoid(log_income - 10.8)
    capital_gain = np.where(has_gain, (rng.pareto(1.6, size=n) + 1) * income * 0.02, 0.0)
    score = 2.2 * (log_income - 11.1) + 0.2 * edu + 0.02 * (age - 40) + 1.5 * has_gain
    high_income = (rng.random(n) < _sigmoid(score)).astype(np.int64)
    table = pd.DataFrame(
        {
            "age": age,
            "sex": pd.Categorical.from_codes(male.astype(np.int64), ["female", "male"]),
            "group": pd.Categorical.from_codes(group, GROUPS),
            "education": _strings(EDUCATION_LEVELS, edu),
            "occupation": _strings(OCCUPATIONS, occupation),
            "hours_per_week": hours,
            "capital_gain": np.round(capital_gain, 2),
            "income": np.round(income, 2),
            "married": married,
            "n_children": children.astype(np.int64),
            "high_income": high_income,
        }
    )
    return _blank(table, rng, missing)


def _strings(levels: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """Object-dtype strings (not pandas' `str` dtype), as many real tables arrive."""
    return pd.Series(np.array(levels, dtype=object)[codes], dtype=object)


def _education(rng: np.random.Generator, age: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Ordered levels 0..5 from a rounded latent; younger people and group A study longer."""
    latent = 1.6 + 0.6 * (group == 0) - 0.012 * (age - 40) + rng.normal(0, 1.2, size=len(age))
    return np.clip(np.rint(latent), 0, len(EDUCATION_LEVELS) - 1).astype(np.int64)


def _sample_softmax(rng: np.random.Generator, logits: np.ndarray) -> np.ndarray:
    """One categorical draw per row via the Gumbel-max trick (vectorised)."""
    return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _blank(table: pd.DataFrame, rng: np.random.Generator, missing: float) -> pd.DataFrame:
    """Blank round(missing·n) random cells per column; ints become float like read_csv does."""
    count = round(missing * len(table))
    if count == 0:
        return table
    for column in CENSUS_MISSING_COLUMNS:
        blank = np.zeros(len(table), dtype=bool)
        blank[rng.choice(len(table), size=count, replace=False)] = True
        values = table[column].astype(float) if table[column].dtype.kind == "i" else table[column]
        table[column] = values.mask(blank)
    return table


def load_census(
    n: int | None, seed: int, split: str, root: Path | None, missing: float = 0.0
) -> Loaded:
    """The registry's loader: `n` rows (default 5000), labelled by `high_income`."""
    table = make_census(5000 if n is None else n, seed, split, missing)
    return table, table["high_income"].to_numpy(), None
