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


def read_json_object(path: Path) -> dict[str, Any]:
    """A run or model JSON file holding one object, or one ModelFormatError line naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
        value = json.loads(text)
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ModelFormatError(f"{path} is not UTF-8 text (corrupt or not JSON)") from None
    except (json.JSONDecodeError, RecursionError):
        raise ModelFormatError(f"{path} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path} must hold a JSON object, not {type(value).__name__}")
    return value


def load_model(
    path: str | Path,
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any], dict]:
    """Verify and read a model directory: (config, tensors, codec, manifest)."""
    path = resolve_model_dir(path)
    manifest = _read_manifest(path / "manifest.json")
    for name in FILES:
        file = path / name
        if not file.is_file():
            raise ModelFormatError(f"{path} is incomplete: {name} is missing")
        if sha256_file(file) != manifest["files"].get(name):
            raise ModelFormatError(
                f"{file} does not match its sha256 in manifest.json (tampered or corrupt)"
            )
    config = read_json_object(path / "config.json")
    _check_config(config, path / "config.json")
    codec = read_json_object(path / "codec.json")
    tensors = _read_weights(path / "weights.safetensors", config["params"].get("latent_dim"))
    return config, tensors, codec, manifest


def _read_manifest(file: Path) -> dict[str, Any]:
    manifest = read_json_object(file)
    version = manifest.get("format_version")
    files = manifest.get("files")
    if (
        manifest.get("format") != "fds-model"
        or type(version) is not int
        or version < 1
        or not isinstance(files, dict)
        or not isinstance(manifest.get("privacy"), dict | None)
    ):
        raise ModelFormatError(f"{file} is not an FDS manifest")
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{file.parent} uses model format {version}, newer than this FDS ({__version__}) "
            f"reads (format {FORMAT_VERSION}); upgrade fds to load it"
        )
    return manifest


# config.json's fields the loader reads, with the JSON types they must have
_CONFIG_FIELDS = {"params": dict, "fitted": dict}
_FITTED_FIELDS = {"n_features_in": int, "feature_names_in": list | None, "sensitive": list | None}


def _check_config(config: dict[str, Any], file: Path) -> None:
    """config.json's shape (its params are checked by the config model when the model is built)."""
    for fields, where, prefix in (
        (_CONFIG_FIELDS, config, ""),
        (_FITTED_FIELDS, config.get("fitted"), "fitted."),
    ):
        for key, kind in fields.items():
            value = where.get(key) if isinstance(where, dict) else None
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ModelFormatError(f"{file} is invalid: {prefix}{key} is missing or malformed")
    for key in ("custom_encoder", "custom_decoder"):
        if not isinstance(config.get(key, False), bool):
            raise ModelFormatError(f"{file} is invalid: {key} must be true or false")
    names = config["fitted"].get("feature_names_in") or []
    if not all(isinstance(n, str) for n in names):
        raise ModelFormatError(f"{file} is invalid: fitted.feature_names_in must be strings")
    if not all(isinstance(s, dict) for s in config["fitted"].get("sensitive") or []):
        raise ModelFormatError(f"{file} is invalid: fitted.sensitive must be a list of objects")


def _read_weights(file: Path, latent_dim: Any) -> dict[str, torch.Tensor]:
    """The tensors, each finite, with the fitted prior (latent_loc, latent_scale_tril) present."""
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{file} is unreadable: {exc}") from None
    loc, tril = tensors.get("fitted.latent_loc"), tensors.get("fitted.latent_scale_tril")
    d = loc.shape[0] if loc is not None and loc.ndim == 1 else None
    if d is None or tril is None or tuple(tril.shape) != (d, d):
        raise ModelFormatError(f"{file} lacks the fitted latent prior or has it in the wrong shape")
    if type(latent_dim) is int and latent_dim > 0 and d != latent_dim:  # else config.json's check
        raise ModelFormatError(f"{file} holds a {d}-D latent prior, config.json says {latent_dim}")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFormatError(f"{file} holds NaN or inf in tensor {name!r}")
    return tensors
