"""Leakage of a trained model's codes, measured the one way `fds evaluate`, `fds attack --kind
attribute`, the report and the quickstart all use, so they report the same numbers for the same
model, data and seed.

The attackers are fitted on the codes of every row the model trained on and scored on the rows it
held out (its own validation split; without one, and for fusion models, which train on every
record, a seeded 70/30 split of all rows). For each sensitive attribute and each latent block
(public and private for a model with a key, else all latents; a fusion model's code encoded
from all its modalities and from each one alone, `public_from.image` …):
`fds.privacy.leakage.attribute_leakage`. With a utility target: the public (shared)
block's utility in the target's own terms and, per attribute, the *necessary leakage* (what the
target alone reveals of the attribute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fds.data.files import LoadedData
from fds.data.multimodal.codec import check_aligned
from fds.data.sensitive import is_categorical
from fds.data.stream import split_indices
from fds.errors import DataError
from fds.estimator import FDS
from fds.privacy.leakage import (
    TRUTHFUL,
    Budget,
    attribute_leakage_plan,
    necessary_leakage_plan,
    target_utility_plan,
)
from fds.runtime.concurrent import Plan, run_plans

__all__ = [
    "block_codes",
    "leakage_blocks",
    "leakage_notes",
    "measure_leakage",
    "plan_leakage",
    "quartiles",
    "sensitive_values",
]

MIN_HELD_OUT = 50  # fewer held-out rows than this: a seeded split of all rows instead
TEST_FRACTION = 0.3
FROM = "_from."  # a fusion model's block encoded from one source: public_from.image, all_from.all


def sensitive_values(data: LoadedData, names: tuple[str, ...] | list[str]) -> Any:
    """The values fit's `sensitive=` needs for `names`, or None when they are all columns of the
    table, or of a multimodal record's table modality (the estimator reads those itself)."""
    from fds.workflows.probe import resolve_values

    if not names:
        return None
    if isinstance(data.X, pd.DataFrame) and all(n in data.X.columns for n in names):
        return None
    table = data.X.get("table") if isinstance(data.X, dict) else None  # multimodal records
    if isinstance(table, pd.DataFrame) and all(n in table.columns for n in names):
        return None
    return pd.DataFrame({n: resolve_values(data, n, "sensitive attribute") for n in names})


def attacker_rows(model: FDS, n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(rows the attackers fit on, rows they are scored on, how they were chosen)."""
    if model.input_kind_ == "multimodal":
        why = "fusion models train on every record"
    else:
        train, held = split_indices(n_rows, model.config_.val_fraction, model.config_.seed)
        if len(held) >= MIN_HELD_OUT:
            return train, held, "fitted on the model's training rows, scored on its held-out rows"
        why = f"the model held out {len(held)} rows"
    order = np.random.default_rng(seed).permutation(n_rows)
    n_test = max(1, round(TEST_FRACTION * n_rows))
    return (
        np.sort(order[n_test:]),
        np.sort(order[:n_test]),
        f"{why}: a seeded {round(100 * TEST_FRACTION)}% of all rows scores attackers fitted on "
        "the rest",
    )


def leakage_blocks(model: FDS, *, shared_only: bool = False) -> tuple[str, ...]:
    """The blocks attackers read: public and private with a key, else all latents; for a fusion
    model, its shared block (public with a key, else all) encoded from all modalities and from
    each one alone (`public_from.all`, `public_from.image`, …), then the key. `shared_only`:
    without the private block (what `fds attack` releases)."""
    shared = "public" if model.model_.private_dim else "all"
    if model.input_kind_ == "multimodal":
        blocks = tuple(f"{shared}{FROM}{s}" for s in ("all", *model.fusion_.modalities))
    else:
        blocks = (shared,)
    return blocks if shared_only or shared == "all" else (*blocks, "private")


def block_codes(
    model: FDS, X: Any, blocks: tuple[str, ...], sensitive: Any = None
) -> dict[str, np.ndarray]:
    """Posterior means of every row (what `fds encode` shares), cut into the named blocks; a
    fusion model's `…_from.SOURCE` blocks are encoded from that modality alone (`all`: from every
    one) and its key from the `sensitive` values (None: the table modality's columns)."""
    if model.input_kind_ == "multimodal":
        return {block: _fused_block(model, X, block, sensitive) for block in blocks}
    z = model.transform(X)
    public_dim = model.model_.public_dim
    cuts = {"all": z, "public": z[:, :public_dim], "private": z[:, public_dim:]}
    return {block: cuts[block] for block in blocks}


def _fused_block(model: FDS, X: Any, block: str, sensitive: Any) -> np.ndarray:
    if block == "private":
        return model.transform(X, part="private", sensitive=sensitive)
    part, source = block.split(FROM)
    given = None if source == "all" else [source]
    return model.transform(X, modalities=given, part=part, sensitive=sensitive)


def measure_leakage(
    model: FDS, data: LoadedData, *, workers: int = 1, **options: Any
) -> dict[str, Any]:
    """The leakage `plan_leakage` plans (`options`: its keywords), its fits run side by side on
    `workers` cores (`fds.runtime.concurrent`); the figures do not depend on `workers`.

    Returns `{"attributes": {name: {block: attribute_leakage dict, "necessary": … | None,
    "necessary_accuracy", "necessary_auc"}}, "utility": {"target", "block", "utility_metric",
    "utility", …} | None, "blocks", "n_train", "n_test", "split", "budget", "noise_std",
    "notes"}`."""
    plans, finish = plan_leakage(model, data, **options)
    return finish(run_plans(plans, workers))


LeakageFits = dict[tuple[str, str], Plan[dict[str, Any]]]


def plan_leakage(
    model: FDS,
    data: LoadedData,
    *,
    names: tuple[str, ...] | list[str] | None = None,
    blocks: tuple[str, ...] | None = None,
    target: str | None = None,
    noise_std: float = 0.0,
    seed: int = 0,
    budget: Budget = TRUTHFUL,
) -> tuple[LeakageFits, Callable[[dict[tuple[str, str], Any]], dict[str, Any]]]:
    """Leakage of each attribute in `names` (default: the model's sensitive attributes) from each
    of `blocks` (default: `leakage_blocks`), the codes released with Gaussian noise of std
    `noise_std` (0: the posterior means); with a utility `target`, the shared block's utility
    and each attribute's necessary leakage. Continuous attributes are attacked on their
    quartiles.

    `measure_leakage` in two halves: the codes are encoded and every attacker planned now;
    returns (the plans by (attribute, block), turning their figures into `measure_leakage`'s
    result). The caller runs the plans (`run_plans`), alone or beside other work."""
    from fds.workflows.probe import resolve_values

    names = list(names) if names else [column.name for column in model.sensitive_]
    blocks = leakage_blocks(model) if blocks is None else blocks
    n_rows = check_aligned(data.X) if isinstance(data.X, dict) else len(data.X)
    train, test, split = attacker_rows(model, n_rows, seed)
    key = None
    if model.input_kind_ == "multimodal" and model.sensitive_:  # the key reads the values
        key = sensitive_values(data, [column.name for column in model.sensitive_])
    codes = block_codes(model, data.X, blocks, key)
    if noise_std:
        rng = np.random.default_rng(seed)
        codes = {b: z + noise_std * rng.standard_normal(z.shape) for b, z in codes.items()}
    notes: list[str] = []
    y = continuous = None
    if target is not None:
        y = resolve_values(data, target, "utility target")
        continuous = not is_categorical(pd.Series(y))
    # The shared block's attackers and the utility (the longest fits) first.
    plans: LeakageFits = {}
    later: LeakageFits = {}
    for name in names:
        s = resolve_values(data, name, "sensitive attribute")
        if not is_categorical(pd.Series(s)):
            notes.append(f"{name}: continuous, attacked on its quartiles")
            s = quartiles(s)
        fit, score = _known(train, s), _known(test, s)
        for i, (block, z) in enumerate(codes.items()):
            (plans if i == 0 else later)[name, block] = _plan_on(
                attribute_leakage_plan, z, s, fit, score, seed=seed, budget=budget
            )
        if y is not None:
            fit, score = _known(fit, y), _known(score, y)
            later[name, "necessary"] = _plan_on(
                necessary_leakage_plan,
                y,
                s,
                fit,
                score,
                continuous=continuous,
                seed=seed,
                budget=budget,
            )
    if y is not None:
        fit, score = _known(train, y), _known(test, y)
        plans["", "utility"] = _plan_on(
            target_utility_plan,
            codes[blocks[0]],
            y,
            fit,
            score,
            continuous=continuous,
            seed=seed,
            budget=budget,
        )
    plans |= later

    def finish(done: dict[tuple[str, str], Any]) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for name in names:
            entry = {block: done[name, block] for block in codes}
            if y is not None:
                necessary = done[name, "necessary"]
                entry |= {
                    "necessary": necessary,
                    "necessary_accuracy": necessary["best_accuracy"],
                    "necessary_auc": necessary["best_auc"],
                }
            attributes[name] = entry
        utility = None
        if y is not None:
            utility = {"target": target, "block": blocks[0]} | done["", "utility"]
        result = {
            "attributes": attributes,
            "utility": utility,
            "blocks": list(blocks),
            "n_train": len(train),
            "n_test": len(test),
            "split": split,
            "budget": budget.name,
            "noise_std": noise_std,
            "notes": list(notes),
        }
        result["notes"] += leakage_notes(result)
        return result

    return plans, finish


def leakage_notes(result: dict[str, Any]) -> list[str]:
    """One human line per leakage figure that is only a lower bound (its learning curve still
    rises, or the attackers ran on the fast budget)."""
    notes = []
    if result["budget"] != TRUTHFUL.name:
        notes.append(
            f"attackers on the {result['budget']} budget (small networks, few rows): every "
            "leakage figure is a lower bound"
        )
    for name, entry in result["attributes"].items():
        for block in result["blocks"]:
            leak = entry[block]
            if leak["lower_bound"]:
                notes.append(
                    f"{name} from the {block} block: {_curve_text(leak['learning_curve'])}; "
                    "the figures are lower bounds: more rows would find more"
                )
    return notes


def _curve_text(curve: list[dict[str, Any]]) -> str:
    """The last doubling of the learning curve, in words."""
    half, full = next(p for p in curve if p["fraction"] == 0.5), curve[-1]
    return (
        f"from {half['n_train']} to {full['n_train']} attacker rows the best accuracy went "
        f"{half['accuracy']:.3f} → {full['accuracy']:.3f} and the AUC "
        f"{_figure(half['auc'])} → {_figure(full['auc'])}"
    )


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _plan_on(
    plan: Callable[..., Plan[dict[str, Any]]],
    x: np.ndarray,
    v: np.ndarray,
    fit: np.ndarray,
    score: np.ndarray,
    **options: Any,
) -> Plan[dict[str, Any]]:
    """`plan` of (x, v) fitted on the rows `fit` and scored on the rows `score`."""
    return plan(x[fit], v[fit], x[score], v[score], **options)


def _known(rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The rows whose value is present (a missing attribute or target cannot be scored)."""
    missing = np.asarray(pd.isna(pd.Series(np.asarray(values, dtype=object))), dtype=bool)
    kept = rows[~missing[rows]]
    if len(kept) == 0:
        raise DataError("every value of the attribute or target is missing in these rows")
    return kept


def quartiles(values: np.ndarray) -> np.ndarray:
    """Continuous values as 4 classes (the attackers are classifiers)."""
    values = values.astype(np.float64)
    known = ~np.isnan(values)
    classes = np.digitize(values, np.quantile(values[known], [0.25, 0.5, 0.75]))
    return np.where(known, classes, np.nan)
