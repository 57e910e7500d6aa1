"""Built-in data sets by name, so `fds train --data shapes` works without any files.

A string registry (as in disent): each name maps to a loader plus the metadata that
`fds datasets` shows. Everything is generated or read locally; nothing is downloaded.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.data.images import read_idx
from fds.errors import DataError

__all__ = [
    "Dataset",
    "available_datasets",
    "is_builtin",
    "load_builtin",
    "make_census",
    "make_shapes",
    "render_shapes",
]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set; `eq=False` because arrays have no single truth value."""

    name: str
    X: np.ndarray | pd.DataFrame  # images (N,H,W)/(N,H,W,C) uint8, or a table
    labels: np.ndarray | None  # (N,) integer class labels when the data set has them
    factors: pd.DataFrame | None  # ground-truth generative factors, one int column per factor
    sensitive: tuple[str, ...]  # names of sensitive columns/factors (for the privacy features)
    description: str


# What a loader returns: X, labels, factors; load_builtin adds the registry metadata.
_Loaded = tuple[np.ndarray | pd.DataFrame, np.ndarray | None, pd.DataFrame | None]

_GENERATED_SPLITS = ("train", "test")

# --------------------------------------------------------------------------- shapes

SHAPES_SIZE = 32
SHAPES_FACTORS = {"shape": 3, "scale": 6, "rotation": 8, "x": 16, "y": 16}
_SHAPES_MAX_RADIUS = 7.5  # circumscribed radius of the largest sprite, in pixels
_SHAPES_CHUNK = 2048
_ELLIPSE_ASPECT = 0.5


def make_shapes(n: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, pd.DataFrame]:
    """Draw `n` sprites with uniform, independent factor codes; returns (images, factors)."""
    rng = _rng(seed, split)
    codes = {k: rng.integers(0, levels, size=n) for k, levels in SHAPES_FACTORS.items()}
    factors = pd.DataFrame(codes).astype(np.int64)
    return render_shapes(factors), factors


def render_shapes(factors: pd.DataFrame) -> np.ndarray:
    """Render chosen factor codes to (N, 32, 32) uint8 sprites (0/255), e.g. for metrics.

    Every shape fits in a circle of radius scale·7.5 px and centres run over 8.5..23.5 px,
    so no factor combination touches the border rows or columns.
    """
    _check_shape_codes(factors)
    images = np.empty((len(factors), SHAPES_SIZE, SHAPES_SIZE), dtype=np.uint8)
    for start in range(0, len(factors), _SHAPES_CHUNK):  # chunks bound the float temporaries
        chunk = factors.iloc[start : start + _SHAPES_CHUNK]
        images[start : start + len(chunk)] = _rasterize(chunk)
    return images


def _check_shape_codes(factors: pd.DataFrame) -> None:
    for name, levels in SHAPES_FACTORS.items():
        if name not in factors:
            raise DataError(
                f"shapes factors lack column {name!r}; need {', '.join(SHAPES_FACTORS)}"
            )
        codes = factors[name].to_numpy()
        if len(codes) and (codes.min() < 0 or codes.max() >= levels):
            raise DataError(
                f"shapes factor {name!r} has codes in [{codes.min()}, {codes.max()}]; "
                f"valid codes are 0..{levels - 1}"
            )


def _rasterize(codes: pd.DataFrame) -> np.ndarray:
    """Inside-tests at pixel centres, in each sprite's own (rotated, unit-radius) frame."""
    margin = _SHAPES_MAX_RADIUS + 1.0
    positions = np.linspace(margin, SHAPES_SIZE - margin, SHAPES_FACTORS["x"])
    radius = _SHAPES_MAX_RADIUS * np.linspace(0.5, 1.0, SHAPES_FACTORS["scale"])
    angles = np.arange(SHAPES_FACTORS["rotation"]) * (2 * np.pi / SHAPES_FACTORS["rotation"])
    r = radius[codes["scale"].to_numpy()][:, None, None]
    theta = angles[codes["rotation"].to_numpy()][:, None, None]
    centres = np.arange(SHAPES_SIZE) + 0.5
    dx = (centres[None, None, :] - positions[codes["x"].to_numpy()][:, None, None]) / r
    dy = (centres[None, :, None] - positions[codes["y"].to_numpy()][:, None, None]) / r
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    shape = codes["shape"].to_numpy()
    inside = np.zeros(u.shape, dtype=bool)
    for code, test in enumerate((_in_square, _in_ellipse, _in_triangle)):
        rows = shape == code
        inside[rows] = test(u[rows], v[rows])
    return inside.astype(np.uint8) * 255


def _in_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= np.sqrt(0.5)  # corners on the unit circle


def _in_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u**2 + (v / _ELLIPSE_ASPECT) ** 2 <= 1.0


def _in_triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Equilateral triangle inscribed in the unit circle: inradius 1/2 from each edge."""
    inside = np.ones(u.shape, dtype=bool)
    for phi in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6):  # outward edge normals
        inside &= np.cos(phi) * u + np.sin(phi) * v <= 0.5
    return inside


def _load_shapes(n: int | None, seed: int, split: str, root: Path | None) -> _Loaded:
    images, factors = make_shapes(10_000 if n is None else n, seed, split)
    return images, factors["shape"].to_numpy(), factors


# --------------------------------------------------------------------------- digits

_DIGITS_TRAIN_FRACTION = 0.8


def _load_digits(n: int | None, seed: int, split: str, root: Path | None) -> _Loaded:
    """scikit-learn's 8×8 digits, rescaled 0..16 → 0..255, split by a seeded permutation."""
    from sklearn.datasets import load_digits  # local: sklearn import is slow

    bunch = load_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    cut = int(_DIGITS_TRAIN_FRACTION * len(order))
    index = {"train": order[:cut], "test": order[cut:], "all": order}[split]
    index = _first_n(index, n, f"digits {split} split")
    images = np.rint(bunch.images[index] * (255 / 16)).astype(np.uint8)
    return images, bunch.target[index].astype(np.int64), None


# --------------------------------------------------------------------------- fashion-mnist

FASHION_MNIST_DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def fashion_mnist_root(root: str | Path | None = None) -> Path:
    """Where fashion-mnist is looked for: `root`, else $FDS_FASHION_MNIST, else the Debian path."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("FDS_FASHION_MNIST") or FASHION_MNIST_DEFAULT_ROOT)


def _find_idx(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"fashion-mnist not found in {root} (no {stem}[.gz]): install it with "
        "`apt-get install dataset-fashion-mnist` (Debian) or pass root=/--data-root "
        "pointing at the IDX files"
    )


def _load_fashion_mnist(n: int | None, seed: int, split: str, root: Path | None) -> _Loaded:
    directory = fashion_mnist_root(root)
    image_file, label_file = (_find_idx(directory, stem) for stem in _FASHION_FILES[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise DataError(
            f"{image_file} and {label_file} do not match: images {images.shape} {images.dtype}, "
            f"labels {labels.shape}; expected (N, 28, 28) uint8 images and N labels"
        )
    index = _first_n(np.arange(len(labels)), n, f"fashion-mnist {split} split")
    return images[index], labels[index].astype(np.int64), None


def _fashion_mnist_status() -> tuple[bool, str | None]:
    try:
        for stems in _FASHION_FILES.values():
            for stem in stems:
                _find_idx(fashion_mnist_root(), stem)
    except DataError as exc:
        return False, str(exc)
    return True, None


# --------------------------------------------------------------------------- census

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
    rng = _rng(seed, split)
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


def _load_census(
    n: int | None, seed: int, split: str, root: Path | None, missing: float = 0.0
) -> _Loaded:
    table = make_census(5000 if n is None else n, seed, split, missing)
    return table, table["high_income"].to_numpy(), None


# --------------------------------------------------------------------------- registry


def _always_available() -> tuple[bool, str | None]:
    return True, None


@dataclass(frozen=True)
class _Entry:
    """Registry metadata: how to load a data set and what `fds datasets` says about it."""

    loader: Callable[..., _Loaded]
    kind: str  # "images" or "table"
    description: str
    splits: tuple[str, ...] = ("train", "test")
    sensitive: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    status: Callable[[], tuple[bool, str | None]] = _always_available


_REGISTRY: dict[str, _Entry] = {
    "shapes": _Entry(
        _load_shapes,
        "images",
        "32×32 binary sprites with 5 known factors (shape, scale, rotation, x, y); generated",
        sensitive=("shape",),
    ),
    "digits": _Entry(
        _load_digits,
        "images",
        "scikit-learn's 1797 handwritten 8×8 digits, rescaled to 0..255; ships with sklearn",
        splits=("train", "test", "all"),
    ),
    "fashion-mnist": _Entry(
        _load_fashion_mnist,
        "images",
        "70000 28×28 grayscale clothing images in 10 classes; read from local IDX files",
        status=_fashion_mnist_status,
    ),
    "census": _Entry(
        _load_census,
        "table",
        "generated census-like mixed-type table; sensitive column sex, target high_income",
        sensitive=("sex",),
        options=("missing",),
    ),
}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def is_builtin(name: str) -> bool:
    """True when `name` (case and `_`/`-` insensitive) names a built-in data set."""
    return _normalize(name) in _REGISTRY


def available_datasets() -> list[dict[str, Any]]:
    """One dict per built-in data set, for `fds datasets`; `hint` says how to get a missing one."""
    rows = []
    for name, entry in _REGISTRY.items():
        available, hint = entry.status()
        rows.append(
            {
                "name": name,
                "kind": entry.kind,
                "description": entry.description,
                "available": available,
                "hint": hint,
            }
        )
    return rows


def load_builtin(
    name: str,
    *,
    n: int | None = None,
    seed: int = 0,
    split: str = "train",
    root: str | Path | None = None,
    **options: Any,
) -> Dataset:
    """Load a built-in data set; `n` keeps the first n rows, `root` only matters for files.

    Extra keyword options are data-set specific (census: `missing`).
    """
    entry = _lookup(name)
    key = _normalize(name)
    if split not in entry.splits:
        raise DataError(f"{key}: unknown split {split!r}; choose one of {', '.join(entry.splits)}")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise DataError(f"{key}: unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    if n is not None and (not isinstance(n, int | np.integer) or n < 1):
        raise DataError(f"{key}: n={n!r} must be a positive integer")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"{key}: seed={seed!r} must be a non-negative integer")
    X, labels, factors = entry.loader(
        n, int(seed), split, None if root is None else Path(root), **options
    )
    return Dataset(key, X, labels, factors, entry.sensitive, entry.description)


def _lookup(name: str) -> _Entry:
    entry = _REGISTRY.get(_normalize(name))
    if entry is None:
        close = difflib.get_close_matches(_normalize(name), list(_REGISTRY), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DataError(
            f"unknown built-in data set {name!r}; {hint}available: {', '.join(_REGISTRY)}"
        )
    return entry


def _rng(seed: int, split: str) -> np.random.Generator:
    """Independent streams per (seed, split), so train and test never share draws."""
    if split not in _GENERATED_SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(_GENERATED_SPLITS)}")
    return np.random.default_rng([seed, _GENERATED_SPLITS.index(split)])


def _first_n(index: np.ndarray, n: int | None, what: str) -> np.ndarray:
    if n is None:
        return index
    if n > len(index):
        raise DataError(f"n={n} exceeds the {len(index)} rows of the {what}; pass n ≤ {len(index)}")
    return index[:n]
