"""The single-file HTML report: sections of figures, tables and JSON rendered with jinja2.

Everything the page shows is inside the file: images are `data:` URIs, the CSS is inline, and there
is no script and no font or style sheet fetched from anywhere, so it opens offline.

`render_report` takes plain data (`Section`s of `Figure`s, `Table`s and JSON values); the run
directory logic that decides what goes in lives in `fds.workflows.report`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from fds.report.plots import png_data_uri

__all__ = [
    "Figure",
    "Section",
    "Table",
    "format_value",
    "json_node",
    "looks_numeric",
    "probe_tables",
    "render_report",
]

TEMPLATE = "report.html"
_IMAGE_SUFFIXES = (".png",)


@dataclass
class Figure:
    """One PNG with its caption; `src` is the data: URI the page embeds."""

    png: bytes
    caption: str = ""
    alt: str = ""
    wide: bool = True  # False: two figures share a row

    @property
    def src(self) -> str:
        return png_data_uri(self.png)


@dataclass
class Table:
    """A table: `header` holds header rows of (text, colspan, rowspan); `rows` display strings."""

    header: list[list[tuple[str, int, int]]]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Section:
    """A report section: an intro, figures, tables, and JSON rendered as nested tables."""

    id: str
    title: str
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    data: Any = None  # a json_node tree

    @property
    def is_empty(self) -> bool:
        return not (self.intro or self.figures or self.tables or self.data)


# --------------------------------------------------------------------------- values


def format_value(value: Any) -> str:
    """Numbers to 4 significant digits, lists of numbers compactly, None as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.4g}"
    if _is_number_list(value):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if _is_short_text_list(value):
        return ", ".join(value)
    return str(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_number_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_number(v) for v in value)


def _is_matrix(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 1
        and all(_is_number_list(row) for row in value)
        and len({len(row) for row in value}) == 1
    )


def _is_records(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(r, Mapping) and all(_is_inline(v) for v in r.values()) for r in value)
    )


def _is_short_text_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and 0 < len(value) <= 16
        and all(isinstance(v, str) and len(v) <= 40 for v in value)
    )


def _is_inline(value: Any) -> bool:
    """Fits in one table cell."""
    return (
        _is_scalar(value)
        or (_is_number_list(value) and len(value) <= 64)
        or _is_short_text_list(value)
    )


def _image_path(value: Any, base: Path | None) -> Path | None:
    if base is None or not isinstance(value, str) or not value.lower().endswith(_IMAGE_SUFFIXES):
        return None
    path = Path(value) if Path(value).is_absolute() else base / value
    return path if path.is_file() else None


def _shade(value: float, low: float, high: float) -> str:
    share = 0.0 if high <= low else (value - low) / (high - low)
    return f"background-color: rgba(37, 99, 235, {0.08 + 0.5 * share:.2f})"


def json_node(value: Any, title: str = "", *, base: Path | None = None) -> dict[str, Any]:
    """A JSON value as a tree the template draws: dicts of scalars become key/value tables, dicts
    of such dicts one table (rows × inner keys), lists of records a table, number matrices a shaded
    table, lists of numbers one compact line, other lists bullets, and names of PNG files under
    `base` inline images. Keys whose value is null are left out."""
    if (path := _image_path(value, base)) is not None:
        return {"kind": "image", "title": title, "src": png_data_uri(path.read_bytes())}
    if isinstance(value, str) and value.startswith("data:image/png;base64,"):
        return {"kind": "image", "title": title, "src": value}
    if _is_inline(value):
        return {"kind": "scalar", "title": title, "text": format_value(value)}
    if _is_matrix(value):
        numbers = [v for row in value for v in row]
        low, high = min(numbers), max(numbers)
        rows = [[str(i)] + [format_value(v) for v in row] for i, row in enumerate(value)]
        styles = [[""] + [_shade(v, low, high) for v in row] for row in value]
        header = [[("", 1, 1)] + [(str(j), 1, 1) for j in range(len(value[0]))]]
        return {"kind": "matrix", "title": title, "header": header, "rows": rows, "styles": styles}
    if _is_number_list(value):
        return {"kind": "scalar", "title": title, "text": format_value(value)}
    if isinstance(value, list) and value and all(_is_scalar(v) for v in value):
        return {"kind": "list", "title": title, "entries": [format_value(v) for v in value]}
    if _is_records(value):
        return {"kind": "table", "title": title, "table": _records_table(value)}
    if isinstance(value, Mapping):
        return _mapping_node(value, title, base)
    if isinstance(value, list):
        children = [json_node(v, f"{title}[{i}]" if title else f"[{i}]", base=base)
                    for i, v in enumerate(value)]  # fmt: skip
        return {"kind": "group", "title": title, "table": None, "children": children}
    return {"kind": "scalar", "title": title, "text": str(value)}


def _mapping_node(value: Mapping[str, Any], title: str, base: Path | None) -> dict[str, Any]:
    value = {k: v for k, v in value.items() if v is not None}  # only what was computed
    inner = [v for v in value.values() if isinstance(v, Mapping)]
    if (
        len(inner) == len(value) > 1
        and all(v and all(_is_inline(x) for x in v.values()) for v in inner)
        and _image_path_in(value, base) is None
    ):  # e.g. per-column errors: {"age": {"mse": …}, "income": {"mse": …}}
        columns = list(dict.fromkeys(k for v in inner for k in v))
        rows = [[str(k)] + [format_value(v.get(c)) for c in columns] for k, v in value.items()]
        table = Table([[("", 1, 1)] + [(str(c), 1, 1) for c in columns]], rows)
        return {"kind": "table", "title": title, "table": table}
    plain = {k: v for k, v in value.items() if _is_inline(v) and _image_path(v, base) is None}
    table = Table([], [[str(k), format_value(v)] for k, v in plain.items()]) if plain else None
    children = [json_node(v, str(k), base=base) for k, v in value.items() if k not in plain]
    return {"kind": "group", "title": title, "table": table, "children": children}


def _image_path_in(value: Mapping[str, Any], base: Path | None) -> Path | None:
    for v in value.values():
        for x in v.values() if isinstance(v, Mapping) else (v,):
            if (path := _image_path(x, base)) is not None:
                return path
    return None


def _records_table(records: Sequence[Mapping[str, Any]], caption: str = "") -> Table:
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [[format_value(r.get(c)) for c in columns] for r in records]
    return Table([[(str(c), 1, 1) for c in columns]], rows, caption)


def looks_numeric(text: str) -> bool:
    """A cell to right-align: a number as `format_value` writes it, or a dash for none."""
    try:
        float(text.replace("−", "-").replace("∞", "inf"))
    except ValueError:
        return text in ("—", "NaN")
    return True


# --------------------------------------------------------------------------- probes

_FEATURE_ORDER = {"latent": 0, "raw": 1}


def probe_tables(probes: Any) -> list[Table]:
    """One table per probe of a probes.json ({"probes": [{"target", "task", "rows": [...]}]}):
    one row per head, each metric split into columns per feature set (latent beside raw)."""
    items = probes.get("probes", []) if isinstance(probes, Mapping) else []
    tables = []
    for probe in items:
        if not isinstance(probe, Mapping):
            continue
        rows = [r for r in probe.get("rows", []) if isinstance(r, Mapping)]
        extra = {
            k: v
            for k, v in probe.items()
            if k not in ("target", "task", "rows") and _is_scalar(v) and v is not None
        }
        caption = " · ".join(
            [f"target: {probe.get('target', '?')}", f"task: {probe.get('task', '?')}"]
            + [f"{k}: {format_value(v)}" for k, v in extra.items()]
        )
        if not rows:
            continue
        if not all("head" in r and "features" in r for r in rows):
            tables.append(_records_table(rows, caption))
            continue
        tables.append(_pivot_probe(rows, caption))
    return tables


def _pivot_probe(rows: list[Mapping[str, Any]], caption: str) -> Table:
    heads = list(dict.fromkeys(str(r["head"]) for r in rows))
    features = sorted(
        dict.fromkeys(str(r["features"]) for r in rows),
        key=lambda f: (_FEATURE_ORDER.get(f, 2), f),
    )
    metrics = list(
        dict.fromkeys(
            k for r in rows for k in r if k not in ("head", "features") and _is_inline(r[k])
        )
    )
    cell = {(str(r["head"]), str(r["features"]), m): r.get(m) for r in rows for m in metrics}
    header = [
        [("head", 1, 2)] + [(m, len(features), 1) for m in metrics],
        [(f, 1, 1) for _ in metrics for f in features],
    ]
    body = [
        [head] + [format_value(cell.get((head, f, m))) for m in metrics for f in features]
        for head in heads
    ]
    return Table(header, body, caption)


# --------------------------------------------------------------------------- page


def _environment() -> jinja2.Environment:
    template = resources.files("fds.report").joinpath("templates", TEMPLATE).read_text("utf-8")
    env = jinja2.Environment(
        loader=jinja2.DictLoader({TEMPLATE: template}),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests["numeric_text"] = looks_numeric
    return env


def render_report(
    title: str,
    summary: Sequence[tuple[str, str]],
    headline: Sequence[tuple[str, str]],
    sections: Sequence[Section],
    *,
    subtitle: str = "",
    footer: str = "",
) -> str:
    """The whole page as one string. `headline` pairs are shown as large figures above the
    `summary` table; empty sections are left out."""
    shown = [s for s in sections if not s.is_empty]
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=title,
            subtitle=subtitle,
            summary=summary,
            headline=headline,
            sections=shown,
            footer=footer,
        )
    )
