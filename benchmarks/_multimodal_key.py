"""`benchmarks/multimodal.py --sensitive NAME`: does a fusion model's key keep the sensitive
attribute out of the public block as the single-modality key does?

On the same `shapes-mm` records and budget as the coherence runs, for each fusion model:
`FDS(fusion=NAME, preset="fds", **SPEC)` with the attribute as its key (a factor given as values,
`fit(X, sensitive=values)`, or a column of the table modality, which the table's encoder then
does not read), and the same fusion model without a key. The truthful estimator
(`fds.privacy.leakage.attribute_leakage`, what `fds attack --kind attribute` runs: logistic,
boosting and MLP attackers fitted on every training record's code, scored on the test records)
reads the attribute from the public block encoded from each single modality and from all of
them, beside the majority. The single-modality keys on the same records: the `fds` preset on
the table modality alone and on the images alone (the attribute given as values, or the table
column). Utility: a logistic probe of `scale` from the same codes (test accuracy). The
necessary leakage beside them: the same attackers given only `scale` (one-hot).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fds import FDS
from fds.privacy.leakage import attribute_leakage

UTILITY = "scale"


def _probe(z_train: np.ndarray, y_train: np.ndarray, z_test: np.ndarray, y_test: np.ndarray):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(model.fit(z_train, y_train).score(z_test, y_test))


def _row(model: str, source: str, block: str, codes, s, y, cpu: float) -> dict[str, Any]:
    """The leakage of the attribute and the utility probe from (train, test) codes."""
    (z_train, z_test), (s_train, s_test), (y_train, y_test) = codes, s, y
    leak = attribute_leakage(z_train, s_train, z_test, s_test, seed=0)
    return {
        "model": model,
        "from": source,
        "block": block,
        "leakage": leak["best_accuracy"],
        "auc": leak["best_auc"],
        "best_attacker": leak["best_attacker"],
        "lower_bound": leak["lower_bound"],
        "majority": leak["majority"],
        f"probe_{UTILITY}": _probe(z_train, y_train, z_test, y_test),
        "cpu_seconds": cpu,
    }


def key_leakage(
    name: str,
    models: list[str],
    spec: dict[str, Any],
    epochs: int,
    data: tuple[dict, pd.DataFrame, dict, pd.DataFrame],
    references: bool = True,
) -> list[dict[str, Any]]:
    """One row per (model, source, block): the figures of the module docstring; without
    `references`, the keyed fusion models only (a screening run)."""
    X, factors, X_test, factors_test = data
    column = name in X["table"].columns
    values = X["table"][name] if column else factors[name]
    values_test = X_test["table"][name] if column else factors_test[name]
    s = (np.asarray(values), np.asarray(values_test))
    y = (factors[UTILITY].to_numpy(), factors_test[UTILITY].to_numpy())
    keyed = {"sensitive": (name,)} if column else {}
    fit_values = {} if column else {"sensitive": values.to_numpy()}
    rows = []

    def report(row: dict[str, Any]) -> None:
        rows.append(row)
        shown = {k: round(v, 3) for k, v in row.items() if isinstance(v, float)}
        print(f"{row['model']} from {row['from']} ({row['block']}): {shown}", flush=True)

    # the necessary leakage: what the utility target alone (one-hot) tells of the attribute
    levels = np.unique(y[0])
    target = tuple((part[:, None] == levels[None, :]).astype(np.float32) for part in y)
    report(_row("necessary leakage", UTILITY, "target alone", target, s, y, 0.0))

    for fusion in models:
        for key in (True, False) if references else (True,):
            cpu = time.process_time()
            params = dict(spec, fusion=fusion, epochs=epochs, verbose=False)
            model = FDS(**params, preset="fds", **keyed) if key else FDS(**params)
            model.fit(X, **(fit_values if key else {}))
            cpu = time.process_time() - cpu
            label = f"{fusion}+key" if key else fusion
            part = "public" if key else "all"
            for source in [*model.fusion_.modalities, "all"]:
                given = None if source == "all" else [source]
                codes = tuple(
                    model.transform(data_, modalities=given, part=part) for data_ in (X, X_test)
                )
                report(_row(label, source, part, codes, s, y, cpu))
            if key:
                codes = tuple(
                    model.transform(data_, part="private", sensitive=v)
                    for data_, v in ((X, values), (X_test, values_test))
                )
                report(_row(label, "sensitive values", "private", codes, s, y, cpu))
    for kind in ("table", "image") if references else ():
        cpu = time.process_time()
        model = FDS(preset="fds", epochs=epochs, verbose=False, **spec, **keyed)
        given = {} if column and kind == "table" else {"sensitive": values.to_numpy()}
        model.fit(X[kind], **given)
        cpu = time.process_time() - cpu
        codes = tuple(model.transform(data_[kind], part="public") for data_ in (X, X_test))
        report(_row(f"fds ({kind} alone)", kind, "public", codes, s, y, cpu))
    return rows
