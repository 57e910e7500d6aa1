"""Run-directory pieces of a multimodal model: its training summary, and decoded modalities
written to files (images and sounds as .npy arrays, captions and tables as CSV), several at once
with `write_together` so a failure leaves no half of them behind."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.errors import DataError
from fds.estimator import FDS
from fds.rundir import MODEL_DIR, write_together

__all__ = [
    "CROSS_MODAL_PNG",
    "MODALITY_FILES",
    "evaluate_multimodal",
    "modality_frame",
    "multimodal_headline",
    "multimodal_summary",
    "write_grids",
    "write_modalities",
]

# the file each decoded modality is written to inside an output folder
MODALITY_FILES = {
    "image": "image.npy",
    "audio": "audio.npy",
    "text": "text.csv",
    "table": "table.csv",
}
_SUMMARY_ROWS = 500


def multimodal_summary(
    model: FDS, X: Mapping[str, Any], source: str, build: Path, out: Path, seconds: float
) -> dict[str, Any]:
    """The numbers a person checks first: the fusion model, its loss, and each modality
    rebuilt from itself alone on (up to) the first 500 records; the grids are drawn in `build`
    (the run being written) and named at `out` (where it will be)."""
    from fds.evaluation.coherence import reconstruction

    n = min(_SUMMARY_ROWS, len(next(iter(X.values()))))
    encoded, _ = model.fusion_.codec.encode({k: v[:n] for k, v in X.items()})
    last = model.history_[-1] if model.history_ else {}
    return {
        "run_dir": str(out),
        "model_dir": str(out / MODEL_DIR),
        "data": source,
        "fusion": model.config_.fusion,
        "modalities": model.fusion_.modalities,
        "latent_dim": model.config_.latent_dim,
        "missing_rate": model.config_.missing_rate,
        "epochs_trained": len(model.history_),
        "train_loss": last.get("train_loss"),
        "reconstruction": reconstruction(model.model_, encoded),
        "seconds": round(seconds, 2),
        "artifacts": [str(out / p.name) for p in write_grids(model, X, build)],
    }


def modality_frame(kind: str, decoded: Any) -> pd.DataFrame | np.ndarray:
    """What `write_output` writes for a decoded modality: captions as a one-column table."""
    return pd.DataFrame({"text": decoded}) if kind == "text" else decoded


def write_modalities(
    decoded: Mapping[str, Any], folder: Path, *, overwrite: bool = False
) -> list[Path]:
    """One file per modality in `folder` (MODALITY_FILES), all written or none."""
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} is a file; several modalities are written to a folder")
    files = []
    for kind, value in decoded.items():
        path = folder / MODALITY_FILES[kind]
        if path.exists() and not overwrite:
            raise DataError(f"{path} exists; pass --overwrite to replace it")
        files.append((path, _writer(modality_frame(kind, value)), None))
    return write_together(files)


def _writer(value: pd.DataFrame | np.ndarray):
    if isinstance(value, pd.DataFrame):
        return lambda tmp: value.to_csv(tmp, index=False)

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, value)

    return save


_EVAL_ROWS = (1000, 300)  # records scored (default, fast); half fit the probes
_MAX_LEVELS = 10  # factor columns with at most this many levels are coherence labels
_JOINT_DRAWS = 500


def evaluate_multimodal(
    model: FDS, X: Mapping[str, Any], labels: Any, factors: Any, *, fast: bool, seed: int
) -> dict[str, Any]:
    """`fds evaluate`'s `multimodal` group: per-modality reconstruction, cross-modal coherence
    for every subset → modality, joint coherence of prior draws and a probe per subset, for each
    label (the data's factor columns of at most 10 levels, and its labels unless one of them)."""
    from fds.evaluation import coherence

    n = min(_EVAL_ROWS[fast], len(next(iter(X.values()))))
    targets: dict[str, np.ndarray] = {}
    if factors is not None:
        for name in factors.columns:
            if factors[name].nunique() <= _MAX_LEVELS:
                targets[str(name)] = factors[name].to_numpy()[:n]
    if labels is not None and not any(np.array_equal(labels[:n], t) for t in targets.values()):
        targets["label"] = np.asarray(labels)[:n]
    encoded, present = model.fusion_.codec.encode({k: v[:n] for k, v in X.items()})
    complete = np.logical_and.reduce([present[k] for k in model.fusion_.modalities])
    encoded = {k: v[complete] for k, v in encoded.items()}
    targets = {k: v[complete] for k, v in targets.items()}
    fusion, codec = model.model_, model.fusion_.codec
    group: dict[str, Any] = {
        "n_records": int(complete.sum()),
        "reconstruction": coherence.reconstruction(fusion, encoded),
        "labels": list(targets),
    }
    if not targets or complete.sum() < 4:
        return group | {"cross_coherence": None, "joint_coherence": None, "probes": None}
    half = int(complete.sum()) // 2
    first = {k: v[:half] for k, v in encoded.items()}
    second = {k: v[half:] for k, v in encoded.items()}
    first_y = {k: v[:half] for k, v in targets.items()}
    second_y = {k: v[half:] for k, v in targets.items()}
    classifiers = coherence.fit_classifiers(codec, first, first_y)
    group["cross_coherence"] = coherence.cross_coherence(
        fusion, codec, second, second_y, classifiers
    )
    group["joint_coherence"] = coherence.joint_coherence(
        fusion, codec, classifiers, tuple(targets), _JOINT_DRAWS, seed
    )
    group["probes"] = coherence.subset_probes(fusion, first, first_y, second, second_y)
    return group


def multimodal_headline(group: dict[str, Any] | None) -> dict[str, Any]:
    """Per label: the mean coherence from one modality, and the joint coherence."""
    if not group or not group.get("cross_coherence"):
        return {}
    rows: dict[str, Any] = {}
    for label in group["labels"]:
        single = [
            r["accuracy"]
            for r in group["cross_coherence"]
            if r["label"] == label and "+" not in r["from"]
        ]
        rows[f"coherence_from_one_{label}"] = float(np.mean(single))
        rows[f"joint_coherence_{label}"] = group["joint_coherence"][label]
    return rows


CROSS_MODAL_PNG = "cross_modal.png"
_GRID_ROWS = 6
# what each modality is generated from in the grid
_SOURCES = {"image": ("text", "audio"), "text": ("image",), "audio": ("text",)}


def write_grids(model: FDS, X: Mapping[str, Any], out: Path) -> list[Path]:
    """cross_modal.png (each displayable modality, real and generated from another: captions →
    images, images → captions, sounds as spectrograms, images from sounds) and samples.png
    (prior samples of every displayable modality side by side)."""
    from fds.report.modality_grid import modality_grid
    from fds.rundir import SAMPLES_PNG

    fit = model.fusion_
    kinds = [k for k in ("image", "text", "audio") if k in fit.modalities]
    if not kinds:
        return []
    X = {k: v[: 4 * _GRID_ROWS] for k, v in X.items()}
    _, present = fit.codec.encode(X)
    rows = np.flatnonzero(np.logical_and.reduce([present[k] for k in fit.modalities]))
    X = {k: _take(v, rows[:_GRID_ROWS]) for k, v in X.items()}
    columns = []
    for kind in kinds:
        columns.append((f"{kind} (real)", *_shown(fit, kind, X[kind])))
        for source in (s for s in _SOURCES[kind] if s in kinds):
            # with a key: the public block, decoded with the neutral key (no sensitive values)
            part = "public" if fit.model.private_dim else "all"
            z = fit.transform(X, modalities=[source], part=part)
            columns.append((f"{kind} from {source}", *_shown(fit, kind, fit.decode(z, kind))))
    drawn = fit.sample(_GRID_ROWS, kinds, seed=0)
    samples = [(f"{kind} (prior sample)", *_shown(fit, kind, drawn[kind])) for kind in kinds]
    return [
        modality_grid(columns, out / CROSS_MODAL_PNG, "held-in records and cross-modal generation"),
        modality_grid(samples, out / SAMPLES_PNG, "samples from the prior, all modalities"),
    ]


def _take(values: Any, rows: np.ndarray) -> Any:
    if isinstance(values, pd.DataFrame):
        return values.iloc[rows]
    if isinstance(values, np.ndarray):
        return values[rows]
    return [values[i] for i in rows]


def _shown(fit: Any, kind: str, values: Any) -> tuple[str, list[Any]]:
    """(how to draw, the values): sounds as their magnitude spectrograms."""
    if kind == "audio":
        codec = fit.codec.codecs["audio"]
        return "spectrogram", list(codec.magnitudes(codec.encode(values)))
    return kind, list(values)
