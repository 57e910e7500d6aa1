"""Model directories: no pickle, hashes verified, tampered/newer/incomplete directories refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fds import FDS, ModelFormatError
from tests.conftest import FAST


@pytest.fixture(scope="module")
def saved(tmp_path_factory, census) -> Path:
    path = tmp_path_factory.mktemp("m") / "model"
    FDS(**FAST).fit(census).save(path)
    return path


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_directory_holds_only_json_and_safetensors(saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [
        "codec.json",
        "config.json",
        "manifest.json",
        "weights.safetensors",
    ]
    for name in ("codec.json", "config.json", "manifest.json"):
        json.loads((saved / name).read_text())
    manifest = json.loads((saved / "manifest.json").read_text())
    assert set(manifest["files"]) == {"codec.json", "config.json", "weights.safetensors"}
    assert all(len(digest) == 64 for digest in manifest["files"].values())


def test_run_directory_is_accepted(tmp_path: Path, saved: Path) -> None:
    _copy(saved, tmp_path / "model")
    assert FDS.load(tmp_path).config_.latent_dim == 3


def test_tampered_file_is_refused(tmp_path: Path, saved: Path) -> None:
    model = _copy(saved, tmp_path / "m")
    codec = json.loads((model / "codec.json").read_text())
    codec["columns"][0]["scale"] = 1e9
    (model / "codec.json").write_text(json.dumps(codec))
    with pytest.raises(ModelFormatError, match=r"codec.json does not match its sha256"):
        FDS.load(model)


def test_newer_format_is_refused(tmp_path: Path, saved: Path) -> None:
    model = _copy(saved, tmp_path / "m")
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["format_version"] = 99
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="format 99, newer"):
        FDS.load(model)


def test_missing_file_and_missing_dir(tmp_path: Path, saved: Path) -> None:
    model = _copy(saved, tmp_path / "m")
    (model / "weights.safetensors").unlink()
    with pytest.raises(ModelFormatError, match=r"weights\.safetensors is missing"):
        FDS.load(model)
    with pytest.raises(ModelFormatError, match="does not exist"):
        FDS.load(tmp_path / "nowhere")


def test_save_refuses_to_overwrite_foreign_directory(tmp_path: Path, census) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious")
    m = FDS(**FAST).fit(census)
    with pytest.raises(ModelFormatError, match="refusing to overwrite"):
        m.save(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "precious"
    m.save(tmp_path / "model")
    m.save(tmp_path / "model")  # replacing an FDS model directory is fine
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_custom_module_model_needs_the_module(tmp_path: Path, digits) -> None:
    from torch import nn

    m = FDS(**FAST, decoder=nn.Linear(3, 64)).fit(digits)
    m.save(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="custom decoder"):
        FDS.load(tmp_path / "m")
    assert FDS.load(tmp_path / "m", decoder=nn.Linear(3, 64)).transform(digits).shape == (
        len(digits),
        3,
    )
