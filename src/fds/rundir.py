"""The run directory's file names, and the one atomic write every output of FDS goes through.

A run directory (`fds train --out RUN`) holds the names below; every module reads and writes them
through these constants. Every file FDS writes is staged as a hidden temporary sibling, fsynced,
then renamed into place (`os.replace`), so a reader never sees half a file and a failure leaves
the old file as it was and no temporary behind. New files honour the user's umask (like `open`),
unless a caller asks for an exact `mode` (secret keys: 0o600).

No imports beyond the standard library and `fds.errors`: every layer, the CLI included, uses it.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from fds.errors import DataError

__all__ = [
    "ATTACKS_FILE",
    "CHECKPOINTS_DIR",
    "COLUMNS_PNG",
    "CONFIG_FILE",
    "DP_CODEC_FILE",
    "EVALUATION_FILE",
    "LAST_CHECKPOINT_FILE",
    "LEDGER_FILE",
    "METRICS_FILE",
    "MODEL_DIR",
    "PRIVACY_CURVE_FILE",
    "PROBES_DIR",
    "PROBES_FILE",
    "RECONSTRUCTIONS_PNG",
    "REPORT_FILE",
    "RUN_KEYS",
    "SAMPLES_CSV",
    "SAMPLES_PNG",
    "atomic_directory",
    "atomic_write",
    "claim_run_dir",
    "plain_json",
    "split_run_params",
    "write_json",
    "write_text",
    "write_together",
]

# ----------------------------------------------------------------------------- names
CONFIG_FILE = "config.yaml"  # the resolved parameters plus RUN_KEYS: all `--resume` needs
METRICS_FILE = "metrics.jsonl"  # one JSON line per epoch (per round for a federated run)
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT_FILE = f"{CHECKPOINTS_DIR}/last.safetensors"  # relative to the run directory
DP_CODEC_FILE = f"{CHECKPOINTS_DIR}/dp_codec.json"  # a DP run's noisy codec, reused on resume
MODEL_DIR = "model"  # the model directory (fds.io)
PROBES_DIR = "probes"  # saved probe heads, inside the model directory (fds.probefiles)
EVALUATION_FILE = "evaluation.json"
PROBES_FILE = "probes.json"
ATTACKS_FILE = "attacks.json"
PRIVACY_CURVE_FILE = "privacy_curve.json"
LEDGER_FILE = "privacy_ledger.json"
REPORT_FILE = "report.html"
RECONSTRUCTIONS_PNG = "reconstructions.png"
SAMPLES_PNG = "samples.png"
SAMPLES_CSV = "samples.csv"
COLUMNS_PNG = "columns.png"

# what config.yaml holds beside the model parameters (`stream`: read the table piece by piece)
RUN_KEYS = ("data", "data_root", "stream")


def split_run_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model parameters, data arguments) from a mapping that mixes both (config.yaml, fed.yaml)."""
    model = {k: v for k, v in params.items() if k not in RUN_KEYS}
    return model, {k: params[k] for k in RUN_KEYS if k in params}


def claim_run_dir(out: Path, overwrite: bool) -> None:
    """Make `out` an empty run directory: refuse a non-empty folder that is not a run, and a run
    unless `overwrite` (which removes it)."""
    if out.exists() and any(out.iterdir()):
        if not (out / CONFIG_FILE).is_file():
            raise DataError(
                f"refusing to write into {out}: it exists and is not an FDS run directory"
            )
        if not overwrite:
            raise DataError(
                f"{out} already holds a run; use --resume to continue it or --overwrite to replace it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------- atomic writes
Writer = Callable[[Path], object]  # called with the temporary path (safetensors, numpy, pandas)


def atomic_write(
    path: str | Path, data: bytes | Writer, *, mode: int | None = None, overwrite: bool = True
) -> Path:
    """Write `data` (bytes, or a writer called with the temporary path) to `path` atomically.

    `mode`: exact permissions (e.g. 0o600 for a secret key); by default the umask applies.
    `overwrite=False` refuses (FileExistsError) a file that appeared while writing."""
    return write_together([(path, data, mode)], overwrite=overwrite)[0]


def write_text(path: str | Path, text: str, *, mode: int | None = None) -> Path:
    """`text` (UTF-8) to `path`, atomically."""
    return atomic_write(path, text.encode("utf-8"), mode=mode)


def write_json(path: str | Path, obj: Any, *, mode: int | None = None) -> Path:
    """Strict JSON (numpy values made plain, NaN and ±inf as null), indented, atomically."""
    text = json.dumps(plain_json(obj), indent=2, allow_nan=False) + "\n"
    return write_text(path, text, mode=mode)


def write_together(
    files: Sequence[tuple[str | Path, bytes | Writer, int | None]], *, overwrite: bool = True
) -> list[Path]:
    """Write several files (path, data, mode): all are staged first, then renamed into place one
    by one, so a failure while writing any of them leaves every old file as it was."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in files:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            staged.append((_stage(path, data, mode), path))
        if not overwrite:
            for _, path in staged:
                if path.exists():
                    raise FileExistsError(errno.EEXIST, "exists; nothing was replaced", str(path))
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    for folder in {path.parent for _, path in staged}:
        _fsync_directory(folder)
    return [path for _, path in staged]


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Build a directory in the temporary sibling this yields, then swap it in for `path` (an old
    directory there is replaced); on any failure the old directory stays and the new one goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _fresh_name(path)
    os.mkdir(tmp)  # mode 0o777 less the umask (mkdtemp's 0o700 would hide the model from others)
    try:
        yield tmp
        for folder, _, names in os.walk(tmp):
            for name in names:
                _fsync_file(Path(folder) / name)
        if path.exists():
            old = _fresh_name(path)
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
        _fsync_directory(path.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def plain_json(value: Any) -> Any:
    """Plain JSON types only: numpy arrays and scalars become lists and Python numbers, tuples
    lists, keys strings, and NaN and ±inf None (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy
        return plain_json(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _stage(path: Path, data: bytes | Writer, mode: int | None) -> Path:
    """A hidden temporary sibling of `path` holding `data`, on disk (fsynced)."""
    tmp = _fresh_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
        if callable(data):
            os.close(fd)
            fd = -1
            data(tmp)
            _fsync_file(tmp)
        else:
            with open(fd, "wb", closefd=False) as handle:
                handle.write(data)
                handle.flush()
            os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    return tmp


def _fresh_name(path: Path) -> Path:
    """A hidden sibling name nobody uses; it keeps `path`'s suffix, which numpy and pandas read."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(path: Path) -> None:
    """Make the renames in `path` durable; some file systems cannot fsync a directory."""
    with suppress(OSError):
        _fsync_file(path)
