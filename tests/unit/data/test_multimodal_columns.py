"""A table whose columns hold PNG paths, WAV paths, captions and values, split into modalities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from PIL import Image

from fds.data.multimodal.columns import parse_modalities, split_modalities
from fds.errors import DataError


def items(folder: Path, n: int = 6) -> pd.DataFrame:
    """n records on disk: photo_i.png, clip_i.wav (8 kHz), a caption and two numbers; the last
    record has no photo and no caption."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8)).save(folder / f"p{i}.png")
        soundfile.write(folder / f"c{i}.wav", rng.uniform(-0.5, 0.5, 400 + 10 * i), 8000)
        last = i == n - 1
        rows.append(
            {
                "photo": "" if last else f"p{i}.png",
                "description": None if last else f"item {i}",
                "clip": f"c{i}.wav",
                "price": float(i),
                "weight": 2.0 * i,
            }
        )
    frame = pd.DataFrame(rows)
    frame.to_csv(folder / "items.csv", index=False)
    return pd.read_csv(folder / "items.csv")


def test_spec_parses_and_names_bad_items() -> None:
    spec = parse_modalities("image=photo, text=description,table=rest")
    assert spec == {"image": "photo", "text": "description", "table": "rest"}
    with pytest.raises(DataError, match="unknown kind 'video'"):
        parse_modalities("video=clip")
    with pytest.raises(DataError, match="'image' is not KIND=COLUMN"):
        parse_modalities("image")
    with pytest.raises(DataError, match="text is given twice"):
        parse_modalities("text=a,text=b")


def test_paths_are_read_beside_the_table_and_rest_takes_the_others(tmp_path: Path) -> None:
    frame = items(tmp_path)
    spec = parse_modalities("image=photo,text=description,audio=clip,table=rest")
    data, rate = split_modalities(frame, spec, tmp_path)
    assert rate == 8000
    assert data["image"][0].shape == (8, 8) and data["image"][5] is None
    assert data["text"][5] is None and data["text"][1] == "item 1"
    assert len(data["audio"][3]) == 430
    assert list(data["table"].columns) == ["price", "weight"]
    only = split_modalities(frame, {"table": "price+weight"})[0]
    assert list(only["table"].columns) == ["price", "weight"]


def test_a_missing_column_or_file_is_named(tmp_path: Path) -> None:
    frame = items(tmp_path, n=2)
    with pytest.raises(DataError, match="no column 'picture'"):
        split_modalities(frame, {"image": "picture"}, tmp_path)
    with pytest.raises(DataError, match=r"c0\.wav: cannot read as audio"):
        split_modalities(frame, {"audio": "clip"}, tmp_path / "elsewhere")
