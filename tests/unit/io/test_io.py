"""Model directories: no pickle, hashes verified, tampered/newer/incomplete directories refused."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from fds import FDS, ModelFormatError
from fds.errors import FDSError
from fds.io import sha256_file
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


# ------------------------------------------------------------ corrupt files under a valid manifest
def _rehash(model: Path) -> None:
    """Recompute the manifest's hashes, as a careless edit or a corrupting tool would."""
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["files"] = {name: sha256_file(model / name) for name in manifest["files"]}
    (model / "manifest.json").write_text(json.dumps(manifest))


def _edit_json(name: str, edit) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        state = json.loads((model / name).read_text())
        (model / name).write_text(json.dumps(edit(state)))

    return apply


def _edit_tensors(edit) -> Callable[[Path], None]:
    def apply(model: Path) -> None:
        tensors = load_file(str(model / "weights.safetensors"))
        edit(tensors)
        save_file(tensors, str(model / "weights.safetensors"))

    return apply


def _first_column(edit) -> Callable[[Path], None]:
    def change(codec: dict) -> dict:
        edit(codec["columns"][0])
        return codec

    return _edit_json("codec.json", change)


CORRUPT = {
    # manifest.json (hashes cannot help: the manifest is what holds them)
    "manifest-list": ("manifest.json", lambda m: (m / "manifest.json").write_text("[]")),
    "manifest-files-list": (
        "manifest.json",
        _edit_json("manifest.json", lambda s: s | {"files": []}),
    ),
    "manifest-not-utf8": (
        "manifest.json",
        lambda m: (m / "manifest.json").write_bytes(b"\xff\xfe{\x80garbage"),
    ),
    "manifest-version-bool": (
        "manifest.json",
        _edit_json("manifest.json", lambda s: s | {"format_version": True}),
    ),
    "manifest-privacy-list": (
        "manifest.json",
        _edit_json("manifest.json", lambda s: s | {"privacy": [1]}),
    ),
    # config.json, codec.json, weights.safetensors with their hashes recomputed
    "config-list": ("config.json", lambda m: (m / "config.json").write_text("[]")),
    "config-not-utf8": ("config.json", lambda m: (m / "config.json").write_bytes(b"\xff\xfe")),
    "config-deep": ("config.json", lambda m: (m / "config.json").write_text("[" * 100_000)),
    "config-no-fitted": ("config.json", _edit_json("config.json", lambda s: s | {"fitted": 3})),
    "config-names-numbers": (
        "config.json",
        _edit_json(
            "config.json", lambda s: s | {"fitted": s["fitted"] | {"feature_names_in": [1, 2]}}
        ),
    ),
    "config-sensitive-garbage": (
        "config.json",
        _edit_json("config.json", lambda s: s | {"fitted": s["fitted"] | {"sensitive": [{}]}}),
    ),
    "config-bad-option": (
        "config.json",
        _edit_json("config.json", lambda s: s | {"params": s["params"] | {"latent_dim": -3}}),
    ),
    "config-other-latent-size": (
        "weights.safetensors",
        _edit_json("config.json", lambda s: s | {"params": s["params"] | {"latent_dim": 5}}),
    ),
    "codec-list": ("codec.json", lambda m: (m / "codec.json").write_text("[]")),
    "codec-columns-string": (
        "codec.json",
        _edit_json("codec.json", lambda s: s | {"columns": "x"}),
    ),
    "codec-scale-zero": ("codec.json", _first_column(lambda c: c.update(scale=0))),
    "codec-scale-inf": ("codec.json", _first_column(lambda c: c.update(scale=float("inf")))),
    "codec-center-text": ("codec.json", _first_column(lambda c: c.update(center="0"))),
    "codec-unknown-kind": ("codec.json", _first_column(lambda c: c.update(kind="weird"))),
    "codec-extra-field": ("codec.json", _first_column(lambda c: c.update(evil=1))),
    "codec-blocks-garbage": ("codec.json", _edit_json("codec.json", lambda s: s | {"blocks": [1]})),
    "codec-images-garbage": (
        "codec.json",
        lambda m: (m / "codec.json").write_text('{"input_kind": "images"}'),
    ),
    "weights-truncated": (
        "weights.safetensors",
        lambda m: (m / "weights.safetensors").write_bytes(
            (m / "weights.safetensors").read_bytes()[:100]
        ),
    ),
    "weights-pickle": (
        "weights.safetensors",
        lambda m: (m / "weights.safetensors").write_bytes(pickle.dumps({"w": [1.0]})),
    ),
    "weights-no-prior": (
        "weights.safetensors",
        _edit_tensors(lambda t: t.pop("fitted.latent_loc")),
    ),
    "weights-nan": (
        "weights.safetensors",
        _edit_tensors(lambda t: t["fitted.latent_loc"].fill_(float("nan"))),
    ),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_model_file_is_one_line_naming_the_file(
    tmp_path: Path, saved: Path, case: str
) -> None:
    culprit, corrupt = CORRUPT[case]
    model = _copy(saved, tmp_path / "m")
    corrupt(model)
    if culprit != "manifest.json":
        _rehash(model)
    with pytest.raises(FDSError) as info:
        FDS.load(model)
    message = str(info.value)
    assert "\n" not in message and culprit in message, message
