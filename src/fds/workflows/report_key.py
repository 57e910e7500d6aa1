"""The report section "The key: public vs private" for a model with a private block.

Shows what decoding with and without the key does to the same held-out samples (originals, keyed
reconstructions, public-only reconstructions with one neutral key and with keys drawn from the key
prior, and the private block swapped with the next record's), then the key's figures from
evaluation.json (`key`: how often each decoding carries the sensitive attribute) and the measured
leakage (`leakage`: the best attacker's accuracy on each block against the majority baseline).
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
    "keyed (public + own private block)",
    "public only: one neutral key",
    "public only: keys drawn from the key prior",
    "private swapped (next record's key)",
)


def key_section(model: FDS, X_view: Any, evaluation: Any, seed: int = 0) -> Section:
    """The section, or an empty one (left out of the page) for a model without a private block."""
    section = Section("key", "The key: public vs private")
    if not model.model_.private_dim:
        return section
    cfg = model.config_
    names = ", ".join(c.name for c in model.sensitive_)
    section.intro = (
        f"The last {cfg.private_dim} of {cfg.latent_dim} latents are the private block (the key), "
        f"trained to carry the sensitive attribute(s) {names}; the first {model.model_.public_dim} "
        "are the public block, trained so that an attacker cannot predict them from it. Removing "
        "an attribute from the public block is information hiding, measured below by attackers "
        "(best accuracy against the majority baseline): it is not encryption and not "
        "differential privacy, and a stronger attacker may do better than the ones measured "
        "(a figure whose learning curve still rises is marked as a lower bound)."
    )
    n = min(N_SHOWN, len(X_view))
    shown = X_view.iloc[:n] if isinstance(X_view, pd.DataFrame) else np.asarray(X_view[:n])
    decoded = _decodings(model, shown, seed)
    if model.input_kind_ == "images":
        section.figures.append(
            Figure(
                plots.labelled_rows_png([np.asarray(shown), *decoded], list(ROW_LABELS)),
                f"{n} held-out samples. Rows 3 and 4 decode the public block alone, with the mean "
                "of the keys for every sample or with keys drawn from where keys fall (a Gaussian "
                f"per sensitive group, seed {seed}); row 5 decodes each public block with the next "
                "sample's private block.",
            )
        )
    else:
        section.tables.append(_table_view(model, shown, decoded))
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    if evaluation.get("key"):
        section.tables.append(key_table(evaluation["key"]))
    if evaluation.get("leakage"):
        section.tables.append(leakage_table(evaluation["leakage"]))
    return section


def _decodings(model: FDS, X: Any, seed: int) -> list[Any]:
    z = model.transform(X)
    public_dim = model.model_.public_dim
    public, private = z[:, :public_dim], z[:, public_dim:]
    return [
        model.inverse_transform(z),
        model.inverse_transform(public, private="neutral"),
        model.inverse_transform(public, private="prior", seed=seed),
        model.inverse_transform(public, private=np.roll(private, -1, axis=0)),
    ]


def _table_view(model: FDS, shown: Any, decoded: list[Any]) -> Table:
    """Tables: the sensitive columns of each row under the decodings."""
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


def key_table(key: dict[str, Any]) -> Table:
    """One row per sensitive attribute: how often each decoding carries it, and what a swap keeps."""
    header = [
        [
            ("attribute", 1, 1),
            ("keyed", 1, 1),
            ("keyed ÷ originals", 1, 1),
            ("public only (neutral key)", 1, 1),
            ("public only (drawn keys)", 1, 1),
            ("majority", 1, 1),
            ("swap success", 1, 1),
            ("swap keeps", 1, 1),
        ]
    ]
    rows = []
    for name, figures in (key.get("attributes") or {}).items():
        fidelity = figures["keyed_fidelity"]
        keeps = figures["swap_keeps"]
        kept = keeps.get("position_r2", keeps.get("mean_agreement"))
        rows.append(
            [
                name,
                format_value(fidelity["attribute_accuracy"]),
                format_value(fidelity.get("attribute_ratio")),
                format_value(figures["public_only_attribute_accuracy"]),
                format_value(figures["public_only_drawn_attribute_accuracy"]),
                format_value(figures["majority"]),
                format_value(figures["swap_success"]),
                format_value(kept),
            ]
        )
    caption = (
        f"The key on {key.get('n_rows')} held-out records (evaluation.json → key): the share of "
        "decodings that carry each record's own attribute (the donor's for swaps). Images are "
        "judged by a small convolutional classifier fitted on real training images (keyed ÷ "
        "originals divides by its accuracy on the originals) and swaps keep the position (R² of "
        "the centre of pixel mass); tables are judged by the decoded column, and swaps keep the "
        "other columns (mean agreement with the same rows decoded with their own key)."
    )
    return Table(header, rows, caption)


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
        "Attackers (logistic regression, gradient boosting, MLP, random forest) "
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
