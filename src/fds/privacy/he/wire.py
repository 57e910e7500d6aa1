"""The wire format of encrypted latents and scores: packed CKKS batches, checked on arrival.

Packed path (the one to use): feature-major packing. A batch of up to `slot_count = N/2` records
is `d` ciphertexts, ciphertext `j` holding feature `j` of every record. Per-record path (for
comparison): one ciphertext per record. `EncryptedBatch.to_bytes` writes magic, a JSON header
(kind, record count, width, the key id, lengths) and the serialized CKKS vectors; no pickle. The
key id travels with every batch, so ciphertexts from another key raise `KeyMismatchError` instead
of decrypting to silent garbage (CKKS itself cannot tell). Parsing checks every field and every
ciphertext (one per feature, each holding exactly `n_records` slots; latents fresh from encryption)
so that a hostile batch is a `DataError` here rather than a TenSEAL failure mid-computation.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tenseal as ts

from fds.data.validation import as_matrix
from fds.errors import DataError
from fds.privacy.he.keys import check_key, global_scale, key_id

__all__ = [
    "BATCH_KINDS",
    "MAX_HEADER_BYTES",
    "EncryptedBatch",
    "decrypt_batches",
    "decrypt_records",
    "decrypt_scores",
    "encrypt_latents",
    "encrypt_records",
    "is_count",
    "parse_batch_header",
]

_MAGIC = b"FDSHE1\n"
BATCH_KINDS = ("latents", "scores")
MAX_HEADER_BYTES = 1 << 20
_KEY_ID = re.compile(r"[0-9a-f]{32}")  # `key_id`: the first 32 hex digits of a sha256


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
        slots = _slot_count(ctx)
        if header["n_records"] > slots:
            raise DataError(
                f"the batch claims {header['n_records']} records, above the {slots} slots of "
                "its key's ciphertexts"
            )
        offset = len(_MAGIC) + 4 + header["_header_len"]
        vectors = []
        for j, length in enumerate(header["lengths"]):
            chunk = data[offset : offset + length]
            offset += length
            try:
                vector = ts.ckks_vector_from(ctx, chunk)
            except Exception as exc:
                raise DataError(f"malformed ciphertext {j} in the batch ({exc})") from None
            _check_vector(vector, j, header, ctx)
            vectors.append(vector)
        return cls(header["kind"], header["n_records"], header["key_id"], vectors)


def _check_vector(vector: ts.CKKSVector, j: int, header: dict[str, Any], ctx: ts.Context) -> None:
    """Ciphertext `j` must hold one ciphertext of exactly `n_records` slots; a latent one must
    be fresh (top level, two polynomials, not transparent), as `encrypt_latents` makes it, so a
    head's depth budget holds for it."""
    parts = vector.ciphertext()
    if len(parts) != 1:
        raise DataError(f"ciphertext {j} of the batch is {len(parts)} ciphertexts, expected 1")
    if vector.size() != header["n_records"]:
        raise DataError(
            f"ciphertext {j} of the batch holds {vector.size()} slots, the header says "
            f"{header['n_records']} records (all ciphertexts of a batch hold the same records)"
        )
    if header["kind"] != "latents":
        return
    (ciphertext,) = parts
    fresh = (
        ciphertext.size() == 2
        and not ciphertext.is_transparent()
        and ciphertext.parms_id() == ctx.seal_context().data.first_parms_id()
        and ciphertext.scale == global_scale(ctx)
    )
    if not fresh:
        raise DataError(
            f"ciphertext {j} of the batch is not a fresh encryption (level, size or scale "
            "altered): encrypt latents with `encrypt_latents`"
        )


def is_count(value: Any) -> bool:
    """A positive JSON integer (JSON `true` parses to a Python bool, an int subclass)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# (field, check, what it must be), in order: later checks rely on earlier ones
_HEADER_FIELDS: tuple[tuple[str, Callable[[dict], bool], str], ...] = (
    ("kind", lambda h: h.get("kind") in BATCH_KINDS, "latents or scores"),
    ("n_records", lambda h: is_count(h.get("n_records")), "an integer ≥ 1"),
    (
        "key_id",
        lambda h: isinstance(h.get("key_id"), str) and _KEY_ID.fullmatch(h["key_id"]) is not None,
        "32 lowercase hex digits",
    ),
    (
        "lengths",
        lambda h: (
            isinstance(h.get("lengths"), list)
            and len(h["lengths"]) >= 1
            and all(is_count(x) for x in h["lengths"])
        ),
        "a non-empty list of positive integers",
    ),
    (
        "width",
        lambda h: is_count(h.get("width")) and h["width"] == len(h["lengths"]),
        "the number of ciphertexts (of lengths)",
    ),
)


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
    if not isinstance(header, dict):
        raise DataError("the encrypted batch header is not a JSON object")
    for name, valid, expected in _HEADER_FIELDS:
        if not valid(header):
            raise DataError(f"malformed encrypted batch header: {name} must be {expected}")
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
