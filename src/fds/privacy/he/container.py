"""FDS's one container for encrypted files: `.fdsct` (ciphertexts, `fds encrypt`) and `.fdsz`
(sealed latents, `fds encode --seal`).

Layout (container format 2): magic, a u32 header length, a JSON header (`format`, which of the two
it holds; `format_version`; `n_blobs`; then that format's own fields), `n_blobs` blobs each behind
a u64 length, and last the sha256 of every byte before it (32 bytes). Files are written to a temp
file and renamed, so a failed write leaves nothing; a truncated, extended or altered file is a
DataError naming what is wrong. The digest detects damage, not a forger: anyone can write a
well-formed file with a fresh digest. No pickle: the blobs are raw arrays or serialized CKKS
ciphertexts.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tenseal as ts

from fds.errors import DataError
from fds.privacy.he.keys import check_key, key_id, read_bytes
from fds.privacy.he.wire import BATCH_KINDS, MAX_HEADER_BYTES, EncryptedBatch, is_count
from fds.rundir import atomic_write

__all__ = [
    "CIPHERTEXTS_FORMAT",
    "FILE_FORMAT_VERSION",
    "SEALED_FORMAT",
    "read_container",
    "read_encrypted",
    "write_container",
    "write_encrypted",
]

_FILE_MAGIC = b"FDSCT1\n"
_DIGEST_BYTES = 32
FILE_FORMAT_VERSION = 2  # 2: the sha256 trailer (format 1 had none)
CIPHERTEXTS_FORMAT = "fds-he-ciphertexts"
SEALED_FORMAT = "fds-sealed-latents"
_WRITTEN_BY = {
    CIPHERTEXTS_FORMAT: "an encrypted file (.fdsct, from `fds encrypt`)",
    SEALED_FORMAT: "a sealed latents file (.fdsz, from `fds encode --seal`)",
}


def write_container(
    path: str | Path, header: dict[str, Any], blobs: Sequence[bytes], *, overwrite: bool = False
) -> dict[str, Any]:
    """Write `blobs` behind `header` (whose `format` names the content) and the sha256 trailer,
    atomically (temp file + `os.replace`); refuses to replace an existing file unless
    `overwrite`. Returns the header as written plus `out` and `bytes`."""
    path = Path(path)
    if header.get("format") not in _WRITTEN_BY:
        raise ValueError(f"unknown container format {header.get('format')!r}")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the output file")
    if path.exists() and not overwrite:
        raise DataError(f"{path} exists; pass --overwrite to replace it")
    header = {
        "format": header["format"],
        "format_version": FILE_FORMAT_VERSION,
        "n_blobs": len(blobs),
        **header,
    }
    head = json.dumps(header).encode()

    def write(tmp: Path) -> None:
        digest = hashlib.sha256()
        with tmp.open("wb") as handle:

            def put(chunk: bytes) -> None:
                digest.update(chunk)
                handle.write(chunk)

            put(_FILE_MAGIC + struct.pack("<I", len(head)) + head)
            for blob in blobs:
                put(struct.pack("<Q", len(blob)))
                put(blob)
            handle.write(digest.digest())

    atomic_write(path, write)
    return {**header, "out": str(path), "bytes": path.stat().st_size}


def read_container(path: str | Path, fmt: str) -> tuple[dict[str, Any], list[bytes]]:
    """The header and blobs of a container file holding `fmt`, its framing and sha256 checked.
    DataError for anything else: not a container, the other format, newer or older format,
    truncated, trailing bytes, or altered (digest mismatch)."""
    data = read_bytes(path, "encrypted file")
    header, offset = _read_header(data, str(path))
    if header["format"] != fmt:
        raise DataError(
            f"{path} is {_WRITTEN_BY.get(header['format'], repr(header['format']))}, "
            f"not {_WRITTEN_BY[fmt]}"
        )
    blobs = []
    for i in range(header["n_blobs"]):
        if len(data) < offset + 8:
            raise DataError(f"{path} is truncated (part {i} of {header['n_blobs']})")
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        offset += 8
        if len(data) < offset + length:
            raise DataError(f"{path} is truncated (part {i} of {header['n_blobs']})")
        blobs.append(data[offset : offset + length])
        offset += length
    rest = len(data) - offset
    if rest < _DIGEST_BYTES:
        raise DataError(f"{path} is truncated (its sha256 is missing)")
    if rest > _DIGEST_BYTES:
        raise DataError(f"{path} has {rest - _DIGEST_BYTES} trailing bytes after its sha256")
    if hashlib.sha256(memoryview(data)[:offset]).digest() != data[offset:]:
        raise DataError(f"{path} was altered or damaged: its sha256 does not match its content")
    return header, blobs


def _read_header(data: bytes, what: str) -> tuple[dict[str, Any], int]:
    """The checked common header of a container and the offset of its first blob."""
    start = len(_FILE_MAGIC) + 4
    if not data.startswith(_FILE_MAGIC) or len(data) < start:
        raise DataError(f"{what} is not an FDS encrypted or sealed file (bad magic)")
    (n,) = struct.unpack("<I", data[len(_FILE_MAGIC) : start])
    if n > MAX_HEADER_BYTES or len(data) < start + n:
        raise DataError(f"{what} is truncated (header)")
    try:
        header = json.loads(data[start : start + n].decode())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{what}: the header is not valid JSON") from None
    if not (
        isinstance(header, dict)
        and isinstance(header.get("format"), str)
        and is_count(header.get("format_version"))
        and is_count(header.get("n_blobs"))
    ):
        raise DataError(f"{what}: malformed header")
    version = header["format_version"]
    if version > FILE_FORMAT_VERSION:
        raise DataError(f"{what} is from a newer FDS (format {version}); upgrade fds")
    if version < FILE_FORMAT_VERSION:
        raise DataError(
            f"{what} is in format {version}, which has no integrity check: write it again with "
            "this version of FDS"
        )
    return header, start + n


# --------------------------------------------------------------------------- .fdsct
def write_encrypted(
    path: str | Path, batches: Sequence[EncryptedBatch], *, overwrite: bool = False
) -> dict[str, Any]:
    """Write packed batches (all of one kind and key) to one `.fdsct` file: the header holds
    kind, key id, n_records and n_features, each blob is a batch's `to_bytes()`. Returns the
    header plus `n_batches`, `out` and `bytes`."""
    batches = list(batches)
    if not batches:
        raise DataError("no encrypted batches to write")
    first = batches[0]
    for batch in batches:
        if (batch.kind, batch.key_id, batch.width) != (first.kind, first.key_id, first.width):
            raise DataError("the batches differ in kind, key or width; write them separately")
    header = {
        "format": CIPHERTEXTS_FORMAT,
        "kind": first.kind,
        "key_id": first.key_id,
        "n_records": sum(b.n_records for b in batches),
        "n_features": first.width,
    }
    info = write_container(path, header, [b.to_bytes() for b in batches], overwrite=overwrite)
    return {**info, "n_batches": len(batches)}


def read_encrypted(
    path: str | Path, context: ts.Context, *, kind: str | None = None
) -> list[EncryptedBatch]:
    """The batches of a file written by `write_encrypted`, linked to `context` (public or
    secret). DataError for anything that is not such a file; KeyMismatchError when it was
    encrypted under another key than `context`'s."""
    header, blobs = read_container(path, CIPHERTEXTS_FORMAT)
    ints = ("n_records", "n_features")
    if not (
        header.get("kind") in BATCH_KINDS
        and isinstance(header.get("key_id"), str)
        and all(is_count(header.get(k)) for k in ints)
    ):
        raise DataError(f"{path}: malformed header")
    if kind is not None and header["kind"] != kind:
        raise DataError(f"{path} holds encrypted {header['kind']}, expected {kind}")
    check_key(header["key_id"], key_id(context), str(path))
    batches = []
    for blob in blobs:
        batch = EncryptedBatch.from_bytes(blob, context)
        if (batch.kind, batch.key_id, batch.width) != (
            header["kind"],
            header["key_id"],
            header["n_features"],
        ):
            raise DataError(f"{path}: batch {len(batches)} does not match the file header")
        batches.append(batch)
    if sum(b.n_records for b in batches) != header["n_records"]:
        raise DataError(f"{path}: the batches do not hold the header's n_records")
    return batches
