"""The encrypted file (`.fdsct`, written by `fds encrypt`): packed batches of one kind and key.

Magic, a u32 header length, a JSON header (format version, kind, key id, n_records, n_features,
batch count), then each batch's `to_bytes()` behind a u64 length prefix. Nothing but the header
and the ciphertexts; the key id in the header refuses a file read with other keys.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tenseal as ts

from fds.errors import DataError
from fds.privacy.he.keys import check_key, key_id, read_bytes
from fds.privacy.he.wire import BATCH_KINDS, MAX_HEADER_BYTES, EncryptedBatch
from fds.rundir import atomic_write

__all__ = ["FILE_FORMAT_VERSION", "read_encrypted", "read_encrypted_header", "write_encrypted"]

_FILE_MAGIC = b"FDSCT1\n"
FILE_FORMAT_VERSION = 1


def write_encrypted(
    path: str | Path, batches: Sequence[EncryptedBatch], *, overwrite: bool = False
) -> dict[str, Any]:
    """Write packed batches (all of one kind and key) to one file, atomically (temp file +
    `os.replace`); refuses to replace an existing file unless `overwrite`. The file holds only
    the header below and the ciphertexts: magic, u32 header length, JSON header (format version,
    kind, key id, n_records, n_features, n_batches), then per batch a u64 length and its
    `to_bytes()`. Returns the header plus `out` and `bytes`."""
    path = Path(path)
    batches = list(batches)
    if not batches:
        raise DataError("no encrypted batches to write")
    first = batches[0]
    for batch in batches:
        if (batch.kind, batch.key_id, batch.width) != (first.kind, first.key_id, first.width):
            raise DataError("the batches differ in kind, key or width; write them separately")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the output file")
    if path.exists() and not overwrite:
        raise DataError(f"{path} exists; pass --overwrite to replace it")
    header = {
        "format": "fds-he-ciphertexts",
        "format_version": FILE_FORMAT_VERSION,
        "kind": first.kind,
        "key_id": first.key_id,
        "n_records": sum(b.n_records for b in batches),
        "n_features": first.width,
        "n_batches": len(batches),
    }
    head = json.dumps(header).encode()

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:
            handle.write(_FILE_MAGIC + struct.pack("<I", len(head)) + head)
            for batch in batches:
                blob = batch.to_bytes()
                handle.write(struct.pack("<Q", len(blob)))
                handle.write(blob)

    atomic_write(path, write)
    return {**header, "out": str(path), "bytes": path.stat().st_size}


def read_encrypted_header(data: bytes, what: str = "the file") -> tuple[dict[str, Any], int]:
    """The checked header of an encrypted-batches file and the offset of its first batch."""
    start = len(_FILE_MAGIC) + 4
    if not data.startswith(_FILE_MAGIC) or len(data) < start:
        raise DataError(f"{what} is not an FDS encrypted file (bad magic)")
    (n,) = struct.unpack("<I", data[len(_FILE_MAGIC) : start])
    if n > MAX_HEADER_BYTES or len(data) < start + n:
        raise DataError(f"{what} is truncated (header)")
    try:
        header = json.loads(data[start : start + n].decode())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{what}: the header is not valid JSON") from None
    ints = ("format_version", "n_records", "n_features", "n_batches")
    if not (
        isinstance(header, dict)
        and header.get("kind") in BATCH_KINDS
        and isinstance(header.get("key_id"), str)
        and all(isinstance(header.get(k), int) and header[k] >= 1 for k in ints)
    ):
        raise DataError(f"{what}: malformed header")
    if header["format_version"] > FILE_FORMAT_VERSION:
        raise DataError(f"{what} is from a newer FDS (format {header['format_version']})")
    return header, start + n


def read_encrypted(
    path: str | Path, context: ts.Context, *, kind: str | None = None
) -> list[EncryptedBatch]:
    """The batches of a file written by `write_encrypted`, linked to `context` (public or
    secret). DataError for anything that is not such a file; KeyMismatchError when it was
    encrypted under another key than `context`'s."""
    data = read_bytes(path, "encrypted file")
    header, offset = read_encrypted_header(data, str(path))
    if kind is not None and header["kind"] != kind:
        raise DataError(f"{path} holds encrypted {header['kind']}, expected {kind}")
    check_key(header["key_id"], key_id(context), str(path))
    batches = []
    for _ in range(header["n_batches"]):
        if len(data) < offset + 8:
            raise DataError(f"{path} is truncated (batch {len(batches)})")
        (length,) = struct.unpack("<Q", data[offset : offset + 8])
        offset += 8
        if len(data) < offset + length:
            raise DataError(f"{path} is truncated (batch {len(batches)})")
        batch = EncryptedBatch.from_bytes(data[offset : offset + length], context)
        offset += length
        if (batch.kind, batch.key_id, batch.width) != (
            header["kind"],
            header["key_id"],
            header["n_features"],
        ):
            raise DataError(f"{path}: batch {len(batches)} does not match the file header")
        batches.append(batch)
    if offset != len(data):
        raise DataError(f"{path} has {len(data) - offset} trailing bytes after its batches")
    if sum(b.n_records for b in batches) != header["n_records"]:
        raise DataError(f"{path}: the batches do not hold the header's n_records")
    return batches
