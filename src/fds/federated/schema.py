"""The shared codec, built from per-site statistics so that no site sends rows.

Every site fits a codec on its own rows and sends its JSON (image shape and dtype; or per column:
kind, count, mean and standard deviation of the transformed values, category set). The server
merges them: images must agree; continuous and count columns get the pooled mean and standard
deviation (exact, from n, mean and sd per site), categories the union. These per-site statistics
are what the server learns about a site's data besides the model updates.

A site's report is checked before it is merged (`usable_site_states`): one whose statistics are
not finite numbers within float32's range, or whose codec is malformed, is left out with a log
line naming the site, like a site whose query failed; the run goes on while `min_sites` report.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from fds.data.codec import Codec
from fds.data.codecs import codec_from_json
from fds.errors import ConfigError, DataError

log = logging.getLogger("fds.federated")


def site_codec_state(codec: Codec, n_rows: int) -> dict[str, Any]:
    """What a site reports: its codec's JSON plus its row count (the weight of its statistics)."""
    if codec.input_kind == "table" and getattr(codec, "transform", "standard") != "standard":
        raise ConfigError(
            "federated training needs continuous_transform: standard (quantiles and the bounded "
            "transform's median scale cannot be pooled from per-site summaries)"
        )
    return {"codec": codec.to_json(), "n": int(n_rows)}


def usable_site_states(reports: list[tuple[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(site, state) for each (site, reported JSON text) that can be merged; every other site is
    logged and dropped."""
    usable = []
    for site, text in reports:
        try:
            state = json.loads(str(text))
        except (json.JSONDecodeError, RecursionError):
            state = None
        problem = _state_problem(site, state)
        if problem is None:
            usable.append((site, state))
        else:
            log.warning("site %s is left out: its data schema is unusable (%s)", site, problem)
    return usable


def _state_problem(site: str, state: Any) -> str | None:
    if not isinstance(state, dict):
        return "not a JSON object"
    n = state.get("n")
    if type(n) is not int or n < 1:
        return "its row count is not a positive integer"
    try:
        codec_from_json(state.get("codec"), source=f"the schema of site {site}")
    except DataError as exc:
        return str(exc)
    return None


def merge_codecs(states: list[tuple[str, dict[str, Any]]]) -> Codec:
    """One codec for all sites from (site, site_codec_state) pairs."""
    if not states:
        raise DataError("no site reported its data schema")
    kinds = {s["codec"]["input_kind"] for _, s in states}
    if len(kinds) > 1:
        raise DataError(f"sites hold different kinds of data: {sorted(kinds)}")
    if kinds == {"images"}:
        first_site, first = states[0]
        for site, state in states[1:]:
            if state["codec"] != first["codec"]:
                raise DataError(
                    f"site {site} holds images of another shape or dtype than site {first_site}"
                )
        return codec_from_json(first["codec"])
    return codec_from_json(_merge_tables(states), source="the merged schema")


def _merge_tables(states: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    first_site, first = states[0]
    merged = dict(first["codec"])
    names = merged["feature_names"]
    columns = {c["name"]: [] for c in merged["columns"]}
    for site, state in states:
        codec = state["codec"]
        if codec["feature_names"] != names:
            raise DataError(
                f"site {site} has columns {codec['feature_names']}, site {first_site} has {names}"
            )
        for column in codec["columns"]:
            columns[column["name"]].append((site, state["n"], column))
    out = [_merge_column(name, parts) for name, parts in columns.items()]
    order = {"continuous": 0, "count": 0, "binary": 1, "categorical": 2}
    out.sort(key=lambda c: order[c["kind"]])
    merged["columns"] = out
    # Recompute the block layout from the merged columns (category counts may have grown).
    from fds.data.codec import blocks_to_json
    from fds.data.tabular import ColumnSpec, TabularCodec

    codec = TabularCodec(
        [ColumnSpec(**c) for c in out],
        feature_names=names,
        from_array=merged["from_array"],
        transform=merged["transform"],
    )
    merged["blocks"] = blocks_to_json(codec.blocks)
    return merged


def _merge_column(name: str, parts: list[tuple[str, int, dict[str, Any]]]) -> dict[str, Any]:
    kinds = {c["kind"] for _, _, c in parts}
    if len(kinds) > 1:
        detail = ", ".join(f"{s}: {c['kind']}" for s, _, c in parts)
        raise DataError(
            f"column {name!r} is inferred differently at the sites ({detail}); "
            "declare it under `columns:`"
        )
    column = dict(parts[0][2])
    n = np.array([p[1] for p in parts], dtype=np.float64)
    if column["kind"] in ("continuous", "count"):
        mean = np.array([p[2]["center"] for p in parts])
        sd = np.array([p[2]["scale"] for p in parts])
        pooled = float((n * mean).sum() / n.sum())
        var = float((n * (sd**2 + mean**2)).sum() / n.sum() - pooled**2)
        column["center"], column["scale"] = pooled, float(np.sqrt(max(var, 0.0))) or 1.0
        column["fill"] = float((n * np.array([p[2]["fill"] for p in parts])).sum() / n.sum())
        if column["kind"] == "count":
            column["fill"] = float(round(column["fill"]))
        return column
    levels: list[Any] = []
    for _, _, c in parts:
        levels += [v for v in c["categories"] if v not in levels]
    levels.sort(key=lambda v: (str(type(v)), v))
    if column["kind"] == "binary" and len(levels) > 2:
        raise DataError(
            f"column {name!r} is binary at each site but has {len(levels)} values overall"
        )
    column["categories"] = levels
    counts = {}
    for site_n, (_, _, c) in zip(n, parts, strict=True):
        counts[_key(c["fill"])] = counts.get(_key(c["fill"]), 0.0) + site_n
    column["fill"] = next(
        c["fill"] for _, _, c in parts if _key(c["fill"]) == max(counts, key=counts.get)
    )
    return column


def _key(value: Any) -> str:
    return f"{type(value).__name__}:{value}"
