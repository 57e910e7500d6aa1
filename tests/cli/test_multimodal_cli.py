"""The CLI on a multimodal model: encode from a subset, decode to one modality, sample several."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fds import FDS
from fds.data.datasets.shapes_mm import make_shapes_mm
from tests.cli_helpers import fds, one_line_error


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    X, _ = make_shapes_mm(16, seed=0)
    fitted = FDS(hidden_dims=(8,), latent_dim=3, epochs=1, batch_size=16, verbose=False).fit(X)
    return fitted.save(tmp_path_factory.mktemp("mm") / "model")


@pytest.mark.slow  # encodes and decodes the 5000 records of the built-in shapes-mm
def test_encode_from_text_decode_to_text_sample_two(model_dir: Path, tmp_path: Path) -> None:
    codes = tmp_path / "codes.npy"
    result = fds("encode", "--model", model_dir, "--data", "shapes-mm", "--from", "text",
                 "--out", codes, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["latent_dim"] == 3
    Z = np.load(codes)
    assert Z.shape == (5000, 3)
    captions = tmp_path / "captions.csv"
    result = fds("decode", "--model", model_dir, "--latents", codes, "--to", "text",
                 "--out", captions, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(captions, keep_default_na=False).columns) == ["text"]
    folder = tmp_path / "samples"
    result = fds("sample", "--model", model_dir, "-n", 5, "--to", "image,text", "--out", folder,
                 "--seed", 1, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == ["image.npy", "text.csv"]
    assert np.load(folder / "image.npy").shape == (5, 32, 32)


def test_unknown_modality_is_one_line_and_writes_nothing(model_dir: Path, tmp_path: Path) -> None:
    codes = tmp_path / "codes.npy"
    np.save(codes, np.zeros((2, 3), dtype=np.float32))
    out = tmp_path / "x.csv"
    result = fds("decode", "--model", model_dir, "--latents", codes, "--to", "video", "--out", out)
    one_line_error(result, "unknown modality 'video'", "image, text, audio, table")
    assert not out.exists()


@pytest.mark.slow  # a CLI training run: imports every workflow
def test_train_on_a_table_of_paths_and_encode_from_its_images(tmp_path: Path) -> None:
    from tests.unit.data.test_multimodal_columns import items

    items(tmp_path)
    run = tmp_path / "run"
    result = fds("train", "--data", tmp_path / "items.csv", "--modalities",
                 "image=photo,text=description,audio=clip,table=rest", "--epochs", 1,
                 "--latent-dim", 2, "--out", run, "--quiet", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["modalities"] == ["image", "text", "audio", "table"]
    assert (run / "checkpoints" / "last.safetensors").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    result = fds("train", "--resume", run, "--quiet", "--json")  # the run had finished
    assert result.exit_code == 0, result.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    codes = tmp_path / "codes.npy"
    result = fds("encode", "--model", run, "--data", tmp_path / "items.csv", "--from", "image",
                 "--out", codes)  # fmt: skip
    assert result.exit_code == 0, result.output
    Z = np.load(codes)
    assert Z.shape == (6, 2) and np.all(Z[5] == 0.0)  # the last record has no photo


def _grouped_items(folder: Path) -> Path:
    """Captions and a table with a sensitive `group` column, as a CSV."""
    rng = np.random.default_rng(0)
    group = np.array(["a", "b"] * 6)
    frame = pd.DataFrame(
        {
            "description": [f"a {'red' if g == 'a' else 'blue'} item" for g in group],
            "price": rng.normal(size=12).round(2),
            "group": group,
        }
    )
    frame.to_csv(folder / "grouped.csv", index=False)
    return folder / "grouped.csv"


@pytest.mark.slow  # CLI training runs: import every workflow
def test_train_with_a_key_and_its_errors(tmp_path: Path) -> None:
    data = _grouped_items(tmp_path)
    common = ["--data", data, "--modalities", "text=description,table=rest", "--epochs", 1,
              "--latent-dim", 3, "--quiet", "--json"]  # fmt: skip
    bad = tmp_path / "bad"
    result = fds("train", *common, "--preset", "fds", "--sensitive", "colour", "--out", bad)
    one_line_error(result, "unknown sensitive attribute 'colour'")
    assert not bad.exists()
    result = fds("train", *common, "--sensitive", "group", "--out", bad)
    one_line_error(result, "need a private block", "--preset fds")
    assert not bad.exists()
    run = tmp_path / "run"
    result = fds("train", *common, "--preset", "fds", "--sensitive", "group", "--out", run)
    assert result.exit_code == 0, result.output
    public = tmp_path / "public.npy"
    result = fds("encode", "--model", run, "--data", data, "--from", "text", "--part", "public",
                 "--out", public, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert np.load(public).shape == (12, 1)  # the fds preset's key: 2 of the 3 latents
    rows = tmp_path / "rows.csv"
    result = fds("decode", "--model", run, "--latents", public, "--to", "table",
                 "--private", "neutral", "--out", rows)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(rows).columns) == ["price", "group"]
    # the key's leakage: the same figures from fds evaluate and fds attack, per source
    evaluated = fds("evaluate", run, "--data", data, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    leakage = json.loads(evaluated.stdout)["leakage"]
    sources = ["public_from.all", "public_from.text", "public_from.table"]
    assert leakage["blocks"] == [*sources, "private"] and leakage["budget"] == "truthful"
    attacked = fds("attack", run, "--data", data, "--kind", "attribute", "--json")
    assert attacked.exit_code == 0, attacked.output
    attribute = json.loads(attacked.stdout)["attribute"]
    assert attribute["blocks"] == sources
    for source in sources:
        assert attribute["attributes"]["group"][source] == leakage["attributes"]["group"][source]
    result = fds("attack", run, "--data", data, "--kind", "membership")
    one_line_error(result, "--kind membership is not offered for fusion models")
    plain = tmp_path / "plain"
    assert fds("train", *common, "--out", plain).exit_code == 0
    result = fds("evaluate", plain, "--data", data, "--utility-target", "price")
    one_line_error(result, "--utility-target", "this fusion model has none")
    assert not (plain / "evaluation.json").exists()
