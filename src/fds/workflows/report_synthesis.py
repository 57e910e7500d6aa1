"""The report's "Synthetic table quality" section, from the `synthetic` group of evaluation.json
(`fds evaluate`): the headline figures, each said in words, and one row per column."""

from __future__ import annotations

from typing import Any

from fds.report.html import Section, Table, format_value
from fds.workflows.evaluate import synthetic_table_headline

COLUMN_HEADERS = (
    "column",
    "shape score",
    "out of support",
    "training range",
    "synthetic range",
    "missing real → synthetic",
    "absent categories",
    "precision kept",
)


def synthesis_section(evaluation: Any) -> Section:
    """Headline table and per-column table; empty unless evaluation.json scored a table."""
    section = Section("synthesis", "Synthetic table quality")
    syn = (evaluation or {}).get("synthetic") if isinstance(evaluation, dict) else None
    if not isinstance(syn, dict) or syn.get("kind") != "table" or not syn.get("fidelity"):
        return section
    section.intro = (
        f"{syn['n_synthetic']} rows sampled from the prior by `fds evaluate`. Column shapes and "
        "pair trends compare them with the held-out rows; pair trends cover every column pair "
        "(SDMetrics' own figure counts only strongly related pairs and is shown apart, named "
        "so). Support, missing rates, categories (those holding ≥ 0.5% of the training rows) "
        "and decimal precision compare them with the training rows. DCR share: the share of "
        "samples closer to training rows than to as many held-out rows (0.5 is ideal), the "
        "mean ± sd over several reference subsets."
    )
    headline = synthetic_table_headline(syn)
    section.tables = [
        Table(
            [[("figure", 1, 1), ("value", 1, 1)]],
            [[name.replace("_", " "), format_value(value)] for name, value in headline.items()],
        ),
        Table([[(h, 1, 1) for h in COLUMN_HEADERS]], column_rows(syn)),
    ]
    return section


def column_rows(syn: dict[str, Any]) -> list[list[str]]:
    """One display row per column from the quality and fidelity figures."""
    fidelity = syn["fidelity"]
    shapes = syn["quality"].get("column_shape_scores") or {}
    support = fidelity["out_of_support"]["columns"]
    missing = fidelity["missing"]["columns"]
    categories = fidelity["categories"]["columns"]
    precision = fidelity["precision"]["columns"]
    rows = []
    for name in missing:
        out = support.get(name, {})
        kept = precision.get(name)
        rows.append(
            [
                name,
                format_value(shapes.get(name)),
                format_value(out.get("rate")),
                _range(out.get("train_min"), out.get("train_max")),
                _range(out.get("synthetic_min"), out.get("synthetic_max")),
                f"{format_value(missing[name]['real'])} → {format_value(missing[name]['synthetic'])}",
                ", ".join(categories.get(name, {}).get("absent", [])) or "—",
                "—" if kept is None else f"{format_value(kept['kept'])} ({kept['decimals']} dp)",
            ]
        )
    return rows


def _range(low: Any, high: Any) -> str:
    if low is None or high is None:
        return "—"
    return f"{format_value(low)} … {format_value(high)}"
