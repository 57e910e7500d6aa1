"""The model directory: config.json, weights.safetensors, codec.json, manifest.json (sha256 of each).

No pickle anywhere, so loading a model never executes code from the file. Loading verifies the
hashes and refuses tampered, incomplete or newer-format directories with a message that says which.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from fds._version import __version__
from fds.errors import ModelFormatError
from fds.rundir import MODEL_DIR, atomic_directory

FORMAT_VERSION = 1
FILES = ("config.json", "weights.safetensors", "codec.json")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model_dir(path: str | Path) -> Path:
    """Accept a run directory or its `model/` folder (the CLI's --model takes either)."""
    path = Path(path)
    if (path / MODEL_DIR / "manifest.json").is_file():
        return path / MODEL_DIR
    if (path / "manifest.json").is_file():
        return path
    if not path.exists():
        raise ModelFormatError(f"model not found: {path} does not exist")
    raise ModelFormatError(f"{path} is not an FDS model or run directory (no manifest.json)")


def save_model(
    path: str | Path,
    config: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    codec: dict[str, Any],
    privacy: dict[str, Any] | None = None,
) -> Path:
    """Write a model directory atomically: built in a temporary sibling, then renamed into place.

    An existing FDS model directory at `path` is replaced; any other non-empty directory is refused.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not (path / "manifest.json").is_file():
        raise ModelFormatError(
            f"refusing to overwrite {path}: it exists and is not an FDS model directory"
        )
    with atomic_directory(path) as tmp:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        (tmp / "codec.json").write_text(json.dumps(codec, indent=2))
        save_file(
            {k: v.detach().contiguous() for k, v in tensors.items()},
            str(tmp / "weights.safetensors"),
        )
        manifest = {
            "format": "fds-model",
            "format_version": FORMAT_VERSION,
            "fds_version": __version__,
            "files": {name: sha256_file(tmp / name) for name in FILES},
            "privacy": privacy,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return path


def load_model(
    path: str | Path,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any], dict]:
    """Verify and read a model directory: (config, tensors, codec, manifest)."""
    path = resolve_model_dir(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except json.JSONDecodeError:
        raise ModelFormatError(f"{path / 'manifest.json'} is not valid JSON") from None
    version = manifest.get("format_version")
    if not isinstance(version, int) or manifest.get("format") != "fds-model":
        raise ModelFormatError(f"{path / 'manifest.json'} is not an FDS manifest")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} uses model format {version}, newer than this FDS ({__version__}) reads "
            f"(format {FORMAT_VERSION}); upgrade fds to load it"
        )
    for name in FILES:
        file = path / name
        if not file.is_file():
            raise ModelFormatError(f"{path} is incomplete: {name} is missing")
        if sha256_file(file) != manifest.get("files", {}).get(name):
            raise ModelFormatError(
                f"{file} does not match its sha256 in manifest.json (tampered or corrupt)"
            )
    try:
        tensors = load_file(str(path / "weights.safetensors"))
    except SafetensorError as exc:
        raise ModelFormatError(f"{path / 'weights.safetensors'} is unreadable: {exc}") from None
    config = json.loads((path / "config.json").read_text())
    codec = json.loads((path / "codec.json").read_text())
    return config, tensors, codec, manifest
