"""Probes on a trained model (`fds probe run` / `fds probe apply`).

`probe_run` scores probe heads on the model's latents beside the raw features, records the table in
`RUN/probes.json` (for the report) and can save the best latent head as a `FittedProbe` under
`RUN/model/probes/NAME.{json,safetensors}`. The model directory's manifest hashes only its own
three files, so saved probes never break loading the model; each probe records the sha256 of
`model/weights.safetensors` and `apply_probe` refuses to run it on any other model.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.data.files import LoadedData
from fds.errors import ConfigError, DataError, ModelFormatError
from fds.estimator import FDS
from fds.evaluation.probes import FittedProbe, main_metric, missing_mask
from fds.io import resolve_model_dir, sha256_file
from fds.probefiles import read_probe, validate_probe_name, write_probe
from fds.rundir import CONFIG_FILE, MODEL_DIR, PROBES_DIR, PROBES_FILE, write_json


def run_dir_of(model_path: str | Path) -> Path:
    """The run directory of `--model` (a run directory or its `model/` folder); a model directory
    saved outside a run is its own run directory."""
    model_dir = resolve_model_dir(model_path)
    if model_dir.name == MODEL_DIR and (model_dir.parent / CONFIG_FILE).is_file():
        return model_dir.parent
    return model_dir


def probe_run(
    model: FDS,
    data: LoadedData,
    *,
    target: str,
    task: str = "auto",
    heads: list[str] | str | None = None,
    seed: int = 0,
    save_as: str | None = None,
    run_dir: Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Probe `target` on the latents of `data` (see `FDS.probe`); returns the probes.json entry,
    plus `probes_file` and `saved_probe` when written.

    `target` is a column of a table, `label` (the data set's labels) or `factor:NAME`. A column the
    model was trained on stays in the input: the model is applied to the full table it was fitted
    on, so its latents (and the raw baseline) may carry the target itself, and the probe then
    measures how much of that column the code kept (`target_in_input` says so). A column the model
    was not trained on is dropped from the input before encoding.

    With `save_as`, the best latent head (by the task's main metric) is refitted on every row with
    a target and saved in `run_dir`'s model directory, tied to the model's weights by sha256; a
    probe of that name is only replaced with `overwrite`.
    """
    if save_as is not None:
        validate_probe_name(save_as)
        if run_dir is None:
            raise ConfigError("saving a probe needs the run directory (run_dir)")
        saved = resolve_model_dir(run_dir) / PROBES_DIR / f"{save_as}.json"
        if saved.exists() and not overwrite:
            raise DataError(
                f"probe {save_as!r} already exists ({saved}); use --overwrite to replace it"
            )
    X, y, in_input = _target_values(model, data, target)
    result = model.probe(X, y, task=task, heads=heads, seed=seed)
    entry = {
        "target": target,
        "task": result["task"],
        "n_train": result["n_train"],
        "n_test": result["n_test"],
        "n_dropped": result["n_dropped"],
        "target_in_input": in_input,
        "saved_as": save_as,
        "rows": result["rows"],
    }
    summary = dict(entry)
    if save_as is not None:
        summary["saved_probe"] = _save_best(model, X, y, entry, save_as, run_dir, seed)
    if run_dir is not None:
        summary["probes_file"] = str(_record(Path(run_dir), entry))
    return summary


def apply_probe(model: FDS, model_dir: str | Path, name: str, X: Any) -> np.ndarray:
    """Predictions of saved probe `name` on `X` (labels in their original type)."""
    probe = load_model_probe(model_dir, name)
    target = probe.spec.get("target")
    if isinstance(X, pd.DataFrame) and target in X.columns and not _model_column(model, target):
        X = X.drop(columns=[target])
    return probe.predict(model.transform(X))


def load_model_probe(model_dir: str | Path, name: str) -> FittedProbe:
    """Saved probe `name` of a model (run directory or model/ folder), refused when it was fitted
    on another model's weights."""
    model_dir = resolve_model_dir(model_dir)
    probe = FittedProbe.from_saved(read_probe(model_dir / PROBES_DIR, name))
    expected, actual = (
        probe.spec.get("model_sha256"),
        sha256_file(model_dir / "weights.safetensors"),
    )
    if expected != actual:
        fitted_on = f"weights sha256 {expected[:12]}…" if expected else "no recorded model"
        raise ModelFormatError(
            f"probe {name!r} was fitted on another model ({fitted_on}; this model "
            f"{actual[:12]}…): refit it with `fds probe run --save {name}`"
        )
    return probe


def _model_column(model: FDS, name: str) -> bool:
    return name in [str(c) for c in getattr(model, "feature_names_in_", [])]


def _target_values(model: FDS, data: LoadedData, target: str) -> tuple[Any, Any, bool]:
    """(model input, target values, whether the target is one of the model's input columns)."""
    X = data.X
    if isinstance(X, pd.DataFrame) and target in X.columns:
        if _model_column(model, target):
            return X, X[target].to_numpy(), True
        return X.drop(columns=[target]), X[target].to_numpy(), False
    return X, resolve_values(data, target), False


def resolve_values(data: LoadedData, name: str, what: str = "probe target") -> np.ndarray:
    """Values of `name` for every sample: a table column (of multimodal records: of their table
    modality), `label` (the data set's labels) or `factor:NAME` (a ground-truth factor); an
    unknown name fails naming the valid ones."""
    table = _table_of(data)
    if table is not None and name in table.columns:
        return table[name].to_numpy()
    if name == "label" and data.labels is not None:
        return np.asarray(data.labels)
    if name.startswith("factor:") and data.factors is not None:
        factor = name.removeprefix("factor:")
        if factor in data.factors.columns:
            return data.factors[factor].to_numpy()
    options = _options(data)
    close = difflib.get_close_matches(name, options, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(f"unknown {what} {name!r}; {hint}choose from {', '.join(options)}")


def _table_of(data: LoadedData) -> pd.DataFrame | None:
    """The table of `data`: itself, or the table modality of multimodal records."""
    table = data.X.get("table") if isinstance(data.X, dict) else data.X
    return table if isinstance(table, pd.DataFrame) else None


def _options(data: LoadedData) -> list[str]:
    table = _table_of(data)
    options = [str(c) for c in table.columns] if table is not None else []
    if data.labels is not None:
        options.append("label")
    if data.factors is not None:
        options += [f"factor:{name}" for name in data.factors.columns]
    return options or ["nothing: this data has no columns, labels or factors"]


def _save_best(
    model: FDS, X: Any, y: Any, entry: dict[str, Any], name: str, run_dir: Path, seed: int
) -> dict[str, Any]:
    metric = main_metric(entry["task"], has_labels=y is not None)
    latent = [row for row in entry["rows"] if row["features"] == "latent"]
    best = max(latent, key=lambda row: -np.inf if row.get(metric) is None else row[metric])
    keep = ~missing_mask(y)
    model_dir = resolve_model_dir(run_dir)
    probe = FittedProbe.fit(
        model.transform(X)[keep],
        np.asarray(y)[keep],
        head=best["head"],
        task=entry["task"],
        seed=seed,
        target=entry["target"],
        model_sha256=sha256_file(model_dir / "weights.safetensors"),
    )
    path = write_probe(probe, model_dir / PROBES_DIR, name)
    return {"name": name, "head": best["head"], metric: best.get(metric), "path": str(path)}


def _record(run_dir: Path, entry: dict[str, Any]) -> Path:
    """Add `entry` to RUN/probes.json, replacing an earlier one for the same target and task."""
    path = run_dir / PROBES_FILE
    entries: list[dict[str, Any]] = []
    if path.is_file():
        try:
            entries = list(json.loads(path.read_text()).get("probes", []))
        except (json.JSONDecodeError, AttributeError, TypeError):
            entries = []  # unreadable: start over (every entry can be recomputed)
    entries = [
        e
        for e in entries
        if isinstance(e, dict)
        and not (e.get("target") == entry["target"] and e.get("task") == entry["task"])
    ]
    entries.append(entry)
    return write_json(path, {"probes": entries})
