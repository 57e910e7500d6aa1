"""The report section "The key: public vs private" for a model with a private block.

Shows what decoding with and without the key does to the same held-out samples (originals, keyed
reconstructions, public-only reconstructions with the private block at the prior mean, and the
private block swapped with another record's), and under it the measured leakage from
evaluation.json: the best attacker's accuracy on each block against the majority baseline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fds.estimator import FDS
from fds.report import plots
from fds.report.html import Figure, Section, Table, format_value

N_SHOWN = 10
ROW_LABELS = (
    "original",
    "keyed (public + private)",
    "public only (private = prior mean)",
    "private swapped (next record's key)",
)


def key_section(model: FDS, X_view: Any, evaluation: Any) -> Section:
    """The section, or an empty one (left out of the page) for a model without a private block."""
    section = Section("key", "The key: public vs private")
    if not model.model_.private_dim:
        return section
    cfg = model.config_
    names = ", ".join(c.name for c in model.sensitive_)
    section.intro = (
        f"The last {cfg.private_dim} of {cfg.latent_dim} latents are the private block (the key), "
        f"trained to carry the sensitive attribute(s) {names}; the first {model.model_.public_dim} "
        "are the public block, trained so that an adversary cannot predict them from it. Removing "
        "an attribute from the public block is information hiding, measured below by attackers "
        "(best accuracy against the majority baseline): it is not encryption and not "
        "differential privacy, and a stronger attacker may do better than the ones measured "
        "(a figure whose learning curve still rises is marked as a lower bound)."
    )
    n = min(N_SHOWN, len(X_view))
    shown = X_view.iloc[:n] if isinstance(X_view, pd.DataFrame) else np.asarray(X_view[:n])
    decoded = _decodings(model, shown)
    if model.input_kind_ == "images":
        section.figures.append(
            Figure(
                plots.labelled_rows_png([np.asarray(shown), *decoded], list(ROW_LABELS)),
                f"{n} held-out samples. Row 3 decodes the public block alone; row 4 decodes each "
                "public block with the next sample's private block.",
            )
        )
    else:
        section.tables.append(_table_view(model, shown, decoded))
    leakage = (evaluation or {}).get("leakage") if isinstance(evaluation, dict) else None
    if leakage:
        section.tables.append(leakage_table(leakage))
    return section


def _decodings(model: FDS, X: Any) -> list[Any]:
    z = model.transform(X)
    public_dim = model.model_.public_dim
    public, private = z[:, :public_dim], z[:, public_dim:]
    return [
        model.inverse_transform(z),
        model.inverse_transform(public, private="prior"),
        model.inverse_transform(public, private=np.roll(private, -1, axis=0)),
    ]


def _table_view(model: FDS, shown: Any, decoded: list[Any]) -> Table:
    """Tables: the sensitive columns of each row under the four decodings."""
    frames = [pd.DataFrame(np.asarray(shown))] + [pd.DataFrame(np.asarray(d)) for d in decoded]
    if isinstance(shown, pd.DataFrame):
        frames = [shown.reset_index(drop=True)] + [d.reset_index(drop=True) for d in decoded]
    columns = [c.name for c in model.sensitive_ if c.name in frames[0].columns] or list(
        frames[0].columns[:3]
    )
    header = [[("row", 1, 2)] + [(c, len(ROW_LABELS), 1) for c in columns]]
    header.append([(label, 1, 1) for _ in columns for label in ROW_LABELS])
    rows = [
        [str(i)] + [format_value(_plain(f[c].iloc[i])) for c in columns for f in frames]
        for i in range(len(frames[0]))
    ]
    return Table(header, rows, "sensitive column(s) per decoding")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def leakage_table(leakage: dict[str, Any]) -> Table:
    """One row per sensitive attribute and block: the best attacker's accuracy beside the
    majority, the best AUC, the necessary leakage and whether the figure is only a lower bound."""
    header = [
        [
            ("attribute", 1, 1),
            ("block", 1, 1),
            ("best attacker", 1, 1),
            ("accuracy", 1, 1),
            ("majority", 1, 1),
            ("AUC", 1, 1),
            ("necessary", 1, 1),
            ("lower bound", 1, 1),
        ]
    ]
    rows = []
    for name, entry in (leakage.get("attributes") or {}).items():
        for block in leakage.get("blocks") or ():
            leak = entry.get(block) or {}
            rows.append(
                [
                    name,
                    block,
                    str(leak.get("best_attacker")),
                    format_value(leak.get("best_accuracy")),
                    format_value(leak.get("majority")),
                    format_value(leak.get("best_auc")),
                    format_value(entry.get("necessary_accuracy")),
                    "yes: still rising" if leak.get("lower_bound") else "no",
                ]
            )
    caption = (
        "Attackers (logistic regression, gradient boosting, MLP) "
        f"{leakage.get('split', '')}: {leakage.get('n_train')} attacker rows, "
        f"{leakage.get('n_test')} scored. Necessary: the best attacker given only the utility "
        "target, which any code useful for it reveals."
    )
    utility = leakage.get("utility")
    if utility:
        caption += (
            f" Utility of the {utility.get('block')} block for {utility.get('target')}: "
            f"{utility.get('utility_metric')} {format_value(utility.get('utility'))}."
        )
    for note in leakage.get("notes") or ():
        caption += f" {note[0].upper()}{note[1:]}."
    return Table(header, rows, caption)
