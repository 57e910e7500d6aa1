"""The `key` group of evaluation.json: what decoding with, without and with another record's key
does to held-out records (see `fds.evaluation.key` for the figures).

For each sensitive attribute the model was trained on:

    keyed_fidelity                       reconstruction_mse, attribute_accuracy; images also
                                         attribute_accuracy_originals, attribute_ratio, position_r2
    public_only_attribute_accuracy       one neutral key for every record, beside `majority`
    public_only_drawn_attribute_accuracy keys drawn from the key prior
    swap_success                         share of swapped decodings carrying the donor's attribute
    swap_keeps                           images: position_r2; tables: mean_agreement, columns
    tables also: marginal, public_only_drawn_distribution, public_only_drawn_marginal_gap

Images are judged by a small convolutional classifier fitted on real training images; tables by
their decoded sensitive column. A continuous attribute is judged on its quartiles.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from fds.data.files import LoadedData
from fds.data.image_codec import ImageCodec
from fds.data.stream import split_indices
from fds.errors import DataError
from fds.estimator import FDS
from fds.evaluation.key import (
    ImageDecodings,
    TableDecodings,
    fit_image_classifier,
    image_key_figures,
    swap_donors,
    table_key_figures,
)
from fds.workflows.probe import resolve_values

# (default, fast): held-out records decoded, real training images the classifier learns from
KEY_ROWS = (1000, 300)
CLASSIFIER_ROWS = (4000, 1500)


def key_quality(
    model: FDS, data: LoadedData, *, seed: int = 0, fast: bool = False
) -> dict[str, Any] | None:
    """`{"attributes": {name: figures}, "n_rows", "notes"}`, or None without a private block."""
    if not model.model_.private_dim:
        return None
    budget = 1 if fast else 0
    rng = np.random.default_rng(seed)
    config = model.config_
    train_idx, val_idx = split_indices(len(data.X), config.val_fraction, config.seed)
    held = val_idx if len(val_idx) else np.arange(len(data.X))
    rows = _at_most(held, KEY_ROWS[budget], rng)
    X = _take(data.X, rows)
    z = model.transform(X)
    public, private = z[:, : model.model_.public_dim], z[:, model.model_.public_dim :]
    keyed = model.inverse_transform(z)
    neutral = model.inverse_transform(public, private="neutral")
    drawn = model.inverse_transform(public, private="prior", seed=seed)
    notes: list[str] = []
    attributes: dict[str, Any] = {}
    images = isinstance(model.codec_, ImageCodec)
    for column in model.sensitive_:
        try:
            values = resolve_values(data, column.name, "sensitive attribute")
        except DataError as exc:
            notes.append(f"{column.name}: not measured ({exc})")
            continue
        if column.kind == "continuous":
            notes.append(f"{column.name}: continuous, judged on its quartiles")
        s = np.asarray(values)[rows]
        donors = swap_donors(s, rng)
        swapped = model.inverse_transform(public, private=private[donors])
        if images:
            train_rows = _at_most(train_idx, CLASSIFIER_ROWS[budget], rng)
            labels = np.asarray(values)[train_rows]
            if column.kind == "continuous":
                labels, s = _quartiles_like(labels, s)
            encode = model.codec_.encode
            classify = fit_image_classifier(
                encode(_take(data.X, train_rows)), labels, model.codec_.chw, seed=seed
            )
            decodings = ImageDecodings(
                encode(X), encode(keyed), encode(neutral), encode(drawn), encode(swapped)
            )
            attributes[column.name] = image_key_figures(
                decodings, s, donors, classify, model.codec_.chw
            )
        else:
            frames = [_frame(part, X) for part in (X, keyed, neutral, drawn, swapped)]
            if column.kind == "continuous":
                frames = _binned(frames, column.name)
            attributes[column.name] = table_key_figures(
                TableDecodings(*frames), column.name, donors, model.reconstruction_mse(X)
            )
    return {"attributes": attributes, "n_rows": len(rows), "notes": notes}


def _at_most(rows: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    return rows if len(rows) <= size else np.sort(rng.choice(rows, size, replace=False))


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows].reset_index(drop=True) if isinstance(X, pd.DataFrame) else X[rows]


def _frame(part: Any, like: Any) -> pd.DataFrame:
    if isinstance(part, pd.DataFrame):
        return part.reset_index(drop=True)
    columns = like.columns if isinstance(like, pd.DataFrame) else None
    return pd.DataFrame(np.asarray(part), columns=columns)


def _quartiles_like(reference: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as quartile classes, with the edges of `reference`."""
    edges = np.quantile(reference.astype(np.float64), [0.25, 0.5, 0.75])
    return np.digitize(reference, edges), np.digitize(values.astype(np.float64), edges)


def _binned(frames: list[pd.DataFrame], name: str) -> list[pd.DataFrame]:
    """Every frame with column `name` replaced by its quartile, with the originals' edges."""
    edges = np.quantile(frames[0][name].to_numpy(np.float64), [0.25, 0.5, 0.75])
    return [f.assign(**{name: np.digitize(f[name].to_numpy(np.float64), edges)}) for f in frames]


def key_headline(key: dict[str, Any] | None) -> dict[str, Any]:
    """The key's figures for `fds evaluate`'s summary, one flat name per attribute."""
    rows: dict[str, Any] = {}
    for attribute, figures in ((key or {}).get("attributes") or {}).items():
        name = re.sub(r"\W+", "_", attribute)  # factor:shape → factor_shape
        fidelity = figures["keyed_fidelity"]
        rows[f"key_{name}_keyed_accuracy"] = fidelity["attribute_accuracy"]
        if "attribute_ratio" in fidelity:
            rows[f"key_{name}_keyed_ratio"] = fidelity["attribute_ratio"]
        rows[f"key_{name}_public_only_accuracy"] = figures["public_only_attribute_accuracy"]
        rows[f"key_{name}_majority"] = figures["majority"]
        rows[f"key_{name}_swap_success"] = figures["swap_success"]
    return rows
