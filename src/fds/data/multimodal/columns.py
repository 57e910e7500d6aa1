"""A table whose columns hold the modalities of each record: PNG and WAV file paths, free text,
and ordinary columns, split into the dict of modalities the fusion models read.

`--modalities image=photo,text=description,audio=clip,table=rest`: each kind names one column;
`table` may name several (`table=age+price`) or `rest` (every column no other kind took). An
empty cell marks a record without that modality. Relative paths are read from `base` (the
folder of the CSV file)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.data.images import read_png
from fds.data.multimodal.codec import MODALITY_KINDS
from fds.errors import DataError

__all__ = ["REST", "parse_modalities", "split_modalities"]

REST = "rest"


def parse_modalities(text: str) -> dict[str, str]:
    """`image=photo,text=description` → {"image": "photo", "text": "description"}."""
    spec: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        kind, _, column = item.partition("=")
        kind, column = kind.strip(), column.strip()
        if not kind or not column:
            raise DataError(f"--modalities: {item!r} is not KIND=COLUMN (e.g. image=photo)")
        if kind not in MODALITY_KINDS:
            raise DataError(
                f"--modalities: unknown kind {kind!r}; valid: {', '.join(MODALITY_KINDS)}"
            )
        if kind in spec:
            raise DataError(f"--modalities: {kind} is given twice")
        spec[kind] = column
    return spec


def split_modalities(
    frame: pd.DataFrame, spec: Mapping[str, str], base: Path | None = None
) -> tuple[dict[str, Any], int | None]:
    """({kind: values}, the WAV files' sample rate or None)."""
    taken = {c for kind, c in spec.items() if kind != "table"}
    for kind, column in spec.items():
        for name in _table_columns(frame, column, taken) if kind == "table" else [column]:
            if name not in frame.columns:
                raise DataError(f"--modalities {kind}={column}: no column {name!r} in the data")
    data: dict[str, Any] = {}
    rate = None
    for kind, column in spec.items():
        if kind == "table":
            data[kind] = frame[_table_columns(frame, column, taken)]
        elif kind == "text":
            data[kind] = [None if _empty(v) else str(v) for v in frame[column]]
        elif kind == "image":
            data[kind] = [None if _empty(v) else read_png(_path(v, base)) for v in frame[column]]
        else:
            data[kind], rate = _read_clips(frame[column], base)
    return data, rate


def _table_columns(frame: pd.DataFrame, column: str, taken: set[str]) -> list[str]:
    if column == REST:
        return [c for c in frame.columns if c not in taken]
    return [c.strip() for c in column.split("+")]


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def _path(value: Any, base: Path | None) -> Path:
    path = Path(str(value))
    return path if path.is_absolute() or base is None else base / path


def _read_clips(column: pd.Series, base: Path | None) -> tuple[list[Any], int | None]:
    """Mono float32 clips (channels averaged); every file must share one sample rate."""
    import soundfile  # only for tables with WAV paths

    clips: list[Any] = []
    rates: set[int] = set()
    for value in column:
        if _empty(value):
            clips.append(None)
            continue
        path = _path(value, base)
        try:
            wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
        except (OSError, RuntimeError, soundfile.LibsndfileError) as exc:
            raise DataError(f"{path}: cannot read as audio ({exc})") from None
        clips.append(wave.mean(1))
        rates.add(int(rate))
    if len(rates) > 1:
        raise DataError(f"audio files have several sample rates {sorted(rates)}; resample to one")
    return clips, rates.pop() if rates else None
