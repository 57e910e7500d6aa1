"""The wire format of encrypted latents and scores: packed CKKS batches, checked on arrival.

Packed path (the one to use): feature-major packing. A batch of up to `slot_count = N/2` records
is `d` ciphertexts, ciphertext `j` holding feature `j` of every record. Per-record path (for
comparison): one ciphertext per record. `EncryptedBatch.to_bytes` writes magic, a JSON header
(kind, record count, width, the key id, lengths) and the serialized CKKS vectors; no pickle. The
key id travels with every batch, so ciphertexts from another key raise `KeyMismatchError` instead
of decrypting to silent garbage (CKKS itself cannot tell).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tenseal as ts

from fds.data.validation import as_matrix
from fds.errors import DataError
from fds.privacy.he.keys import check_key, key_id

__all__ = [
    "BATCH_KINDS",
    "MAX_HEADER_BYTES",
    "EncryptedBatch",
    "decrypt_batches",
    "decrypt_records",
    "decrypt_scores",
    "encrypt_latents",
    "encrypt_records",
    "parse_batch_header",
]

_MAGIC = b"FDSHE1\n"
BATCH_KINDS = ("latents", "scores")
MAX_HEADER_BYTES = 1 << 20


def _slot_count(ctx: ts.Context) -> int:
    return int(ctx.seal_context().data.key_context_data().parms().poly_modulus_degree()) // 2


@dataclass
class EncryptedBatch:
    """Up to `slot_count` records, feature-major: `vectors[j]` holds column `j` of every record
    (`kind="latents"`) or the score of output `j` (`kind="scores"`)."""

    kind: str
    n_records: int
    key_id: str
    vectors: list[ts.CKKSVector]

    @property
    def width(self) -> int:
        return len(self.vectors)

    def to_bytes(self) -> bytes:
        blobs = [v.serialize() for v in self.vectors]
        header = json.dumps(
            {
                "kind": self.kind,
                "n_records": self.n_records,
                "width": self.width,
                "key_id": self.key_id,
                "lengths": [len(b) for b in blobs],
            }
        ).encode()
        return b"".join([_MAGIC, struct.pack("<I", len(header)), header, *blobs])

    @classmethod
    def from_bytes(cls, data: bytes, ctx: ts.Context, *, kind: str | None = None) -> EncryptedBatch:
        """Parse a batch and link it to `ctx`; raises DataError for a malformed payload and
        KeyMismatchError when it was encrypted under another key."""
        header = parse_batch_header(data)
        if kind is not None and header["kind"] != kind:
            raise DataError(f"expected an encrypted batch of {kind}, got {header['kind']}")
        check_key(header["key_id"], key_id(ctx), "the batch")
        offset = len(_MAGIC) + 4 + header["_header_len"]
        vectors = []
        for length in header["lengths"]:
            chunk = data[offset : offset + length]
            offset += length
            try:
                vectors.append(ts.ckks_vector_from(ctx, chunk))
            except Exception as exc:
                raise DataError(f"malformed ciphertext in the batch ({exc})") from None
        return cls(header["kind"], header["n_records"], header["key_id"], vectors)


def parse_batch_header(data: bytes) -> dict[str, Any]:
    """The checked JSON header of a serialized batch (DataError when malformed)."""
    if not isinstance(data, bytes | bytearray) or not data.startswith(_MAGIC):
        raise DataError("not an FDS encrypted batch (bad magic)")
    start = len(_MAGIC) + 4
    if len(data) < start:
        raise DataError("truncated encrypted batch")
    (n,) = struct.unpack("<I", data[len(_MAGIC) : start])
    if n > MAX_HEADER_BYTES or len(data) < start + n:
        raise DataError("truncated or oversized encrypted batch header")
    try:
        header = json.loads(data[start : start + n].decode())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError("the encrypted batch header is not valid JSON") from None
    ok = (
        isinstance(header, dict)
        and header.get("kind") in BATCH_KINDS
        and isinstance(header.get("n_records"), int)
        and header["n_records"] >= 1
        and isinstance(header.get("key_id"), str)
        and isinstance(header.get("lengths"), list)
        and all(isinstance(x, int) and x > 0 for x in header["lengths"])
        and header.get("width") == len(header["lengths"])
        and header["lengths"]
    )
    if not ok:
        raise DataError("malformed encrypted batch header")
    if start + n + sum(header["lengths"]) != len(data):
        raise DataError("the encrypted batch's length does not match its header")
    header["_header_len"] = n
    return header


def encrypt_latents(ctx: ts.Context, Z: Any) -> list[EncryptedBatch]:
    """Feature-major packed encryption: one batch per `slot_count` records, `d` ciphertexts each."""
    Z = as_matrix(Z, "latents")
    if not ctx.has_public_key():
        raise DataError("the context has no public key to encrypt with")
    slots, kid = _slot_count(ctx), key_id(ctx)
    batches = []
    for start in range(0, len(Z), slots):
        block = Z[start : start + slots]
        vectors = [ts.ckks_vector(ctx, block[:, j]) for j in range(block.shape[1])]
        batches.append(EncryptedBatch("latents", len(block), kid, vectors))
    return batches


def decrypt_scores(
    ctx: ts.Context, batches: EncryptedBatch | Sequence[EncryptedBatch]
) -> np.ndarray:
    """(n, c) scores from encrypted score batches (in order), with the secret key of `ctx`."""
    return decrypt_batches(ctx, batches)


def decrypt_batches(
    ctx: ts.Context, batches: EncryptedBatch | Sequence[EncryptedBatch]
) -> np.ndarray:
    """(n, width) plaintext of packed batches (latents or scores, in order), with the secret key
    of `ctx`; a batch from another key raises KeyMismatchError."""
    if isinstance(batches, EncryptedBatch):
        batches = [batches]
    if not ctx.has_secret_key():
        raise DataError("decrypting needs the secret context (secret.ctx); this one is public")
    if not batches:
        raise DataError("no encrypted batches to decrypt")
    kid = key_id(ctx)
    parts = []
    for batch in batches:
        check_key(batch.key_id, kid, f"a batch of {batch.kind}")
        key = ctx.secret_key()
        cols = [np.asarray(v.decrypt(key), dtype=np.float64) for v in batch.vectors]
        parts.append(np.stack(cols, axis=1)[: batch.n_records])
    return np.concatenate(parts, axis=0)


def encrypt_records(ctx: ts.Context, Z: Any) -> list[ts.CKKSVector]:
    """One ciphertext per record (the slow path, for comparison)."""
    return [ts.ckks_vector(ctx, row) for row in as_matrix(Z, "latents")]


def decrypt_records(ctx: ts.Context, vectors: Sequence[ts.CKKSVector]) -> np.ndarray:
    """(n, width) plaintext of one-ciphertext-per-record vectors, with the secret key of `ctx`."""
    if not ctx.has_secret_key():
        raise DataError("decrypting needs the secret context (secret.ctx); this one is public")
    key = ctx.secret_key()
    return np.asarray([v.decrypt(key) for v in vectors], dtype=np.float64)
