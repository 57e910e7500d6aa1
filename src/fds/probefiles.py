"""Saved probe heads on disk: `NAME.json` (spec, sha256 of the data file) and `NAME.safetensors`.

No pickle: the JSON holds the head's spec (head, task, params, seed, classes, target, feature count)
and the safetensors file its training arrays. Loading verifies the hash and the format here; the
head itself is refitted from the spec and data by `fds.evaluation.probes.FittedProbe.from_saved`,
which also checks that the spec names a registered head, so loading never runs code from the file.
This module sits at the bottom of the layers so every layer that saves or loads probes can use it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save

from fds.errors import ConfigError, ModelFormatError
from fds.io import sha256_file
from fds.rundir import write_together

__all__ = [
    "PROBE_FORMAT",
    "PROBE_FORMAT_VERSION",
    "ProbeData",
    "SavedProbe",
    "read_probe",
    "validate_probe_name",
    "write_probe",
]

PROBE_FORMAT = "fds-probe"
PROBE_FORMAT_VERSION = 1
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ProbeData(Protocol):
    """What is saved of a fitted probe: its spec and training arrays (labels as class indices)."""

    spec: dict[str, Any]
    Z_train: np.ndarray
    y_train: np.ndarray | None


class SavedProbe(NamedTuple):
    """A probe read back from disk, checked against its format but not yet refitted."""

    spec: dict[str, Any]
    Z_train: np.ndarray
    y_train: np.ndarray | None
    source: Path  # the JSON file, for error messages


def validate_probe_name(name: str) -> str:
    """A probe name is a file stem: letters, digits, `_`, `.`, `-`, at most 64 characters."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.endswith(".json"):
        raise ConfigError(
            f"bad probe name {name!r}: use letters, digits, '_', '.', '-' (≤ 64, no leading dot)"
        )
    return name


def write_probe(probe: ProbeData, directory: str | Path, name: str) -> Path:
    """Write `name.json` (spec + sha256 of the data file) and `name.safetensors` atomically;
    returns the JSON's path."""
    validate_probe_name(name)
    directory = Path(directory)
    tensors = {"Z_train": np.ascontiguousarray(probe.Z_train, dtype=np.float64)}
    if probe.y_train is not None:
        tensors["y_train"] = np.ascontiguousarray(probe.y_train)
    data = save(tensors)
    document = {
        "format": PROBE_FORMAT,
        "format_version": PROBE_FORMAT_VERSION,
        "spec": probe.spec,
        "data_file": f"{name}.safetensors",
        "data_sha256": hashlib.sha256(data).hexdigest(),
        "refit": "the head is refitted from this spec and the data file when loaded",
    }
    files = [
        (directory / f"{name}.safetensors", data, None),
        (directory / f"{name}.json", json.dumps(document, indent=2).encode(), None),
    ]
    return write_together(files)[1]


def read_probe(directory: str | Path, name: str) -> SavedProbe:
    """Verify `name.json` / `name.safetensors` in `directory`: format and version, the data file's
    sha256, and that the arrays match the spec. A missing probe lists the saved ones."""
    validate_probe_name(name)
    directory = Path(directory)
    path = directory / f"{name}.json"
    if not path.is_file():
        saved = sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []
        listed = f"saved probes: {', '.join(saved)}" if saved else "no probes are saved there"
        raise ModelFormatError(f"probe {name!r} not found in {directory} ({listed})")
    document = _read_json(path)
    version = document.get("format_version")
    if document.get("format") != PROBE_FORMAT or not isinstance(version, int):
        raise ModelFormatError(f"{path} is not an FDS probe file")
    if version > PROBE_FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} uses probe format {version}, newer than this FDS reads "
            f"({PROBE_FORMAT_VERSION}); upgrade fds"
        )
    data_path = directory / f"{name}.safetensors"
    if not data_path.is_file():
        raise ModelFormatError(f"{data_path} is missing")
    if sha256_file(data_path) != document.get("data_sha256"):
        raise ModelFormatError(
            f"{data_path} does not match its sha256 in {path.name} (tampered or corrupt)"
        )
    try:
        tensors = load_file(str(data_path))
    except SafetensorError as exc:
        raise ModelFormatError(f"{data_path} is unreadable: {exc}") from None
    spec = _check_spec(document.get("spec"), path)
    Z, y = tensors.get("Z_train"), tensors.get("y_train")
    if Z is None or Z.ndim != 2 or Z.shape[1] != spec["n_features"]:
        raise ModelFormatError(f"{data_path} does not hold the training latents its spec says")
    if (y is None) != (spec["task"] == "clustering") or (y is not None and len(y) != len(Z)):
        raise ModelFormatError(f"{data_path}: training targets do not match the spec")
    if spec["task"] == "classification" and (
        not isinstance(spec["classes"], list) or y.min() < 0 or y.max() >= len(spec["classes"])
    ):
        raise ModelFormatError(f"{path}: class indices and class list disagree")
    return SavedProbe(spec, Z, y, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFormatError(f"{path} is not valid JSON") from None
    if not isinstance(document, dict):
        raise ModelFormatError(f"{path} is not an FDS probe file")
    return document


def _check_spec(spec: Any, path: Path) -> dict[str, Any]:
    """The spec's shape: a mapping with a task, params, an integer seed and a feature count (which
    head and parameters it may name is the probe registry's check, at refit)."""
    if not isinstance(spec, dict):
        raise ModelFormatError(f"{path} has no probe spec")
    if not isinstance(spec.get("task"), str) or not isinstance(spec.get("head"), str):
        raise ModelFormatError(f"{path}: the spec's task and head must be names")
    if not isinstance(spec.get("params"), dict) or not isinstance(spec.get("seed"), int):
        raise ModelFormatError(f"{path}: params and seed must be a mapping and an integer")
    if not isinstance(spec.get("n_features"), int) or spec["n_features"] < 1:
        raise ModelFormatError(f"{path}: n_features must be a positive integer")
    return spec
