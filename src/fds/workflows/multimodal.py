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

__all__ = ["MODALITY_FILES", "modality_frame", "multimodal_summary", "write_modalities"]

# the file each decoded modality is written to inside an output folder
MODALITY_FILES = {
    "image": "image.npy",
    "audio": "audio.npy",
    "text": "text.csv",
    "table": "table.csv",
}
_SUMMARY_ROWS = 500


def multimodal_summary(model: FDS, X: Mapping[str, Any], source: str, out: Path, seconds: float):
    """The numbers a person checks first: the fusion model, its loss, and each modality
    rebuilt from itself alone on (up to) the first 500 records."""
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
