"""Encrypted inference on latents with the CKKS scheme (TenSEAL).

The data owner holds the secret context; a server holds only the public context and a head, and
computes encrypted scores it cannot read. Only this is encryption in FDS (see DESIGN.md).

- Keys: `create_context` picks CKKS parameters for a head's multiplicative depth within the
  128-bit security bound of the HE standard (`MAX_COEFF_MODULUS_BITS`): primes
  `[60] + [40] * depth + [60]` and a global scale of 2**40. Galois keys (rotations) only when asked.
  `save_keys` writes `secret.ctx` (owner only, mode 0600), `public.ctx` (no secret key; relin keys
  only for heads that multiply ciphertexts, Galois keys only if generated) and `keys.json`.
- Packed path (the one to use): feature-major packing. A batch of up to `slot_count = N/2`
  records is `d` ciphertexts, ciphertext `j` holding feature `j` of every record. A linear head
  computes `score_c = Σ_j W[j, c] · enc(z_j) + b_c` with plaintext-scalar products and additions
  only (depth 1, no rotations, no relinearization) → `c` ciphertexts per batch.
- Per-record path (for comparison): one ciphertext per record, `enc(z).matmul(W) + b`, which needs
  Galois keys for the rotations and costs one matmul per record.
- Wire format (`EncryptedBatch.to_bytes`): magic, a JSON header (kind, record count, width, the
  key id, lengths) and the serialized CKKS vectors. No pickle. Files (`write_encrypted` /
  `read_encrypted`, the `.fdsct` container of `fds encrypt`): magic, a JSON header (format
  version, kind, key id, n_records, n_features, batch count), then each batch's `to_bytes()`
  behind a u64 length prefix. The key id (sha256 of the public
  key) travels with every batch, so ciphertexts from another key raise `KeyMismatchError` instead
  of decrypting to silent garbage (CKKS itself cannot tell).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tenseal as ts

from fds.data.validation import as_matrix
from fds.errors import ConfigError, DataError, KeyMismatchError, ModelFormatError

__all__ = [
    "DEFAULT_POLY_MODULUS",
    "GLOBAL_SCALE_BITS",
    "MAX_COEFF_MODULUS_BITS",
    "EncryptedBatch",
    "HEParams",
    "LinearHead",
    "PolyMLPHead",
    "available_depth",
    "context_params",
    "create_context",
    "decrypt_batches",
    "decrypt_records",
    "decrypt_scores",
    "encrypt_latents",
    "encrypt_records",
    "head_from_dict",
    "head_from_probe",
    "key_id",
    "load_keys_info",
    "load_public_context",
    "load_secret_context",
    "parse_batch_header",
    "predictions_from_scores",
    "public_context_bytes",
    "read_encrypted",
    "read_encrypted_header",
    "save_keys",
    "write_encrypted",
]

DEFAULT_POLY_MODULUS = 8192
GLOBAL_SCALE_BITS = 40
OUTER_PRIME_BITS = 60
# Largest total coefficient modulus (bits) for 128-bit classical security, HE standard (2018),
# ternary secret; SEAL enforces the same table.
MAX_COEFF_MODULUS_BITS = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}

SECRET_FILE = "secret.ctx"
PUBLIC_FILE = "public.ctx"
INFO_FILE = "keys.json"
KEYS_FORMAT = "fds-he-keys"
KEYS_FORMAT_VERSION = 1

_MAGIC = b"FDSHE1\n"
_KINDS = ("latents", "scores")
MAX_HEADER_BYTES = 1 << 20
_FILE_MAGIC = b"FDSCT1\n"
FILE_FORMAT_VERSION = 1


# --------------------------------------------------------------------------- keys
@dataclass(frozen=True)
class HEParams:
    """CKKS parameters: ring size, prime sizes (bits), scale, and which evaluation keys exist."""

    poly_modulus_degree: int = DEFAULT_POLY_MODULUS
    depth: int = 1
    galois_keys: bool = False
    coeff_mod_bit_sizes: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        n, depth = self.poly_modulus_degree, self.depth
        if n not in MAX_COEFF_MODULUS_BITS or n < 4096:
            raise ConfigError(
                f"poly_modulus_degree={n} is not supported; choose 4096, 8192, 16384 or 32768"
            )
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ConfigError(f"depth={depth!r} must be an integer ≥ 1")
        sizes = self.coeff_mod_bit_sizes or context_params(n, depth)
        object.__setattr__(self, "coeff_mod_bit_sizes", tuple(int(s) for s in sizes))

    @classmethod
    def for_depth(
        cls, depth: int = 1, poly_modulus_degree: int | None = None, galois_keys: bool = False
    ) -> HEParams:
        """Parameters for `depth`; without a ring size, 8192 or the smallest larger one that fits
        the depth under the 128-bit bound."""
        if poly_modulus_degree is None:
            need = 2 * OUTER_PRIME_BITS + GLOBAL_SCALE_BITS * depth
            fits = [
                n
                for n, bits in sorted(MAX_COEFF_MODULUS_BITS.items())
                if n >= 8192 and bits >= need
            ]
            poly_modulus_degree = fits[0] if fits else max(MAX_COEFF_MODULUS_BITS)
        return cls(poly_modulus_degree=poly_modulus_degree, depth=depth, galois_keys=galois_keys)

    @property
    def slot_count(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def relin_keys(self) -> bool:
        """Relinearization keys: only heads that multiply two ciphertexts (depth ≥ 2) need them."""
        return self.depth >= 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "scheme": "ckks",
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "global_scale_bits": GLOBAL_SCALE_BITS,
            "depth": self.depth,
            "slot_count": self.slot_count,
            "security_bits": 128,
            "galois_keys": self.galois_keys,
            "relin_keys": self.relin_keys,
        }


def context_params(poly_modulus_degree: int, depth: int) -> list[int]:
    """Prime sizes for `depth` rescalings: `[60] + [40] * depth + [60]`, checked against the
    128-bit bound for the ring size (a ConfigError names the smallest ring that fits)."""
    sizes = [OUTER_PRIME_BITS] + [GLOBAL_SCALE_BITS] * depth + [OUTER_PRIME_BITS]
    limit = MAX_COEFF_MODULUS_BITS.get(poly_modulus_degree)
    if limit is None:
        raise ConfigError(f"poly_modulus_degree={poly_modulus_degree} is not a CKKS ring size")
    if sum(sizes) > limit:
        fits = [n for n, bits in sorted(MAX_COEFF_MODULUS_BITS.items()) if bits >= sum(sizes)]
        hint = f"use --poly-modulus {fits[0]}" if fits else "reduce the depth"
        raise ConfigError(
            f"depth {depth} needs a {sum(sizes)}-bit coefficient modulus, above the 128-bit "
            f"security bound of {limit} bits for poly_modulus_degree={poly_modulus_degree}; {hint}"
        )
    return sizes


def create_context(params: HEParams | None = None, *, n_threads: int | None = None) -> ts.Context:
    """A fresh CKKS context holding a new secret key (the owner's side)."""
    params = params or HEParams()
    kwargs = {} if n_threads is None else {"n_threads": int(n_threads)}
    ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        params.poly_modulus_degree,
        coeff_mod_bit_sizes=list(params.coeff_mod_bit_sizes),
        **kwargs,
    )
    ctx.global_scale = 2.0**GLOBAL_SCALE_BITS
    if params.galois_keys:
        ctx.generate_galois_keys()
    return ctx


def key_id(ctx: ts.Context) -> str:
    """Fingerprint of the context's public key (same for its secret and public serializations)."""
    blob = ctx.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )
    return hashlib.sha256(blob).hexdigest()[:32]


def public_context_bytes(ctx: ts.Context, *, relin_keys: bool = False) -> bytes:
    """What the server receives: public key, evaluation keys as needed, never the secret key."""
    return ctx.serialize(
        save_public_key=True,
        save_secret_key=False,
        save_galois_keys=ctx.has_galois_keys(),
        save_relin_keys=relin_keys,
    )


def save_keys(ctx: ts.Context, out: str | Path, params: HEParams) -> dict[str, Any]:
    """Write `secret.ctx`, `public.ctx` and `keys.json` into `out`, atomically; refuse to replace
    any existing key file. Returns the keys.json document plus the paths and sizes."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a directory")
    existing = [name for name in (SECRET_FILE, PUBLIC_FILE, INFO_FILE) if (out / name).exists()]
    if existing:
        raise ConfigError(
            f"{out} already holds {', '.join(existing)}: refusing to overwrite keys "
            "(ciphertexts made with them could no longer be decrypted); choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    secret = ctx.serialize(save_secret_key=True)
    public = public_context_bytes(ctx, relin_keys=params.relin_keys)
    info = {
        "format": KEYS_FORMAT,
        "format_version": KEYS_FORMAT_VERSION,
        **params.as_dict(),
        "key_id": key_id(ctx),
        "secret_file": SECRET_FILE,
        "public_file": PUBLIC_FILE,
        "public_sha256": hashlib.sha256(public).hexdigest(),
        "public_context_bytes": len(public),
    }
    temps: list[Path] = []
    try:
        staged = []
        for name, payload, mode in (
            (SECRET_FILE, secret, 0o600),
            (PUBLIC_FILE, public, 0o644),
            (INFO_FILE, (json.dumps(info, indent=2) + "\n").encode(), 0o644),
        ):
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            temps.append(Path(tmp))
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.chmod(tmp, mode)
            staged.append((Path(tmp), out / name))
        for _tmp, final in staged:
            if final.exists():  # raced with another writer
                raise ConfigError(f"{final} appeared while writing keys; nothing was replaced")
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return {
        **info,
        "out": str(out),
        "secret_path": str(out / SECRET_FILE),
        "public_path": str(out / PUBLIC_FILE),
    }


def _read(path: str | Path, what: str) -> bytes:
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the {what} file")
    if not path.is_file():
        raise DataError(f"{what} {path} not found")
    return path.read_bytes()


def _context_from(data: bytes, what: str) -> ts.Context:
    try:
        ctx = ts.context_from(data)
    except Exception as exc:  # TenSEAL raises ValueError / RuntimeError on bad streams
        raise DataError(f"{what} is not a TenSEAL context ({exc})") from None
    if not ctx.is_public() and not ctx.has_secret_key():  # pragma: no cover - defensive
        raise DataError(f"{what} holds no key")
    return ctx


def load_public_context(source: str | Path | bytes) -> ts.Context:
    """The server's context from `public.ctx` (a path) or its bytes; refuses one that holds a
    secret key, so secret material is never accepted by mistake."""
    data = source if isinstance(source, bytes) else _read(source, "public context")
    ctx = _context_from(data, "the public context")
    if ctx.has_secret_key():
        raise DataError(
            "the context holds a secret key: send only the public context (public.ctx) to a server"
        )
    return ctx


def load_secret_context(source: str | Path) -> ts.Context:
    """The owner's context from `secret.ctx` or a keys directory."""
    path = Path(source)
    if path.is_dir():
        path = path / SECRET_FILE
    ctx = _context_from(_read(path, "secret context"), str(path))
    if not ctx.has_secret_key():
        raise DataError(f"{path} holds no secret key (is it the public context?)")
    return ctx


def load_keys_info(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / INFO_FILE
    try:
        info = json.loads(_read(path, "keys info").decode())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFormatError(f"{path} is not valid JSON") from None
    if not isinstance(info, dict) or info.get("format") != KEYS_FORMAT:
        raise ModelFormatError(f"{path} is not an FDS keys file")
    if int(info.get("format_version", 0)) > KEYS_FORMAT_VERSION:
        raise ModelFormatError(f"{path} is from a newer FDS; upgrade fds")
    return info


# --------------------------------------------------------------------------- data
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
        if header["key_id"] != key_id(ctx):
            raise KeyMismatchError(
                f"the batch was encrypted under key {header['key_id']}, this context is key "
                f"{key_id(ctx)}: use the keys the data were encrypted with"
            )
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
        and header.get("kind") in _KINDS
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
        if batch.key_id != kid:
            raise KeyMismatchError(
                f"{batch.kind} were encrypted under key {batch.key_id}, the secret context is "
                f"key {kid}: use the keys the data were encrypted with"
            )
        key = ctx.secret_key()
        cols = [np.asarray(v.decrypt(key), dtype=np.float64) for v in batch.vectors]
        parts.append(np.stack(cols, axis=1)[: batch.n_records])
    return np.concatenate(parts, axis=0)


# --------------------------------------------------------------------------- files
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_FILE_MAGIC + struct.pack("<I", len(head)) + head)
            for batch in batches:
                blob = batch.to_bytes()
                handle.write(struct.pack("<Q", len(blob)))
                handle.write(blob)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
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
        and header.get("kind") in _KINDS
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
    data = _read(path, "encrypted file")
    header, offset = read_encrypted_header(data, str(path))
    if kind is not None and header["kind"] != kind:
        raise DataError(f"{path} holds encrypted {header['kind']}, expected {kind}")
    if header["key_id"] != key_id(context):
        raise KeyMismatchError(
            f"{path} was encrypted under key {header['key_id']}, these keys are "
            f"{key_id(context)}: use the keys the data were encrypted with"
        )
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


def encrypt_records(ctx: ts.Context, Z: Any) -> list[ts.CKKSVector]:
    """One ciphertext per record (the slow path, for comparison)."""
    return [ts.ckks_vector(ctx, row) for row in as_matrix(Z, "latents")]


def decrypt_records(ctx: ts.Context, vectors: Sequence[ts.CKKSVector]) -> np.ndarray:
    if not ctx.has_secret_key():
        raise DataError("decrypting needs the secret context (secret.ctx); this one is public")
    key = ctx.secret_key()
    return np.asarray([v.decrypt(key) for v in vectors], dtype=np.float64)


# --------------------------------------------------------------------------- heads
def predictions_from_scores(scores: Any, classes: Any = None) -> np.ndarray:
    """Class labels from (n, c) scores: argmax, or the sign of a single score for two classes;
    without classes (regression) the scores themselves (1-D for one output)."""
    scores = np.asarray(scores, dtype=np.float64)
    if classes is None:
        return scores[:, 0] if scores.shape[1] == 1 else scores
    classes = np.asarray(classes)
    if scores.shape[1] == 1:
        return classes[(scores[:, 0] > 0).astype(int)]
    return classes[np.argmax(scores, axis=1)]


def _linear_layer(
    vectors: Sequence[ts.CKKSVector], W: np.ndarray, b: np.ndarray
) -> list[ts.CKKSVector]:
    """`out_c = Σ_j W[j, c] · vectors[j] + b[c]` with plaintext scalars (one rescaling)."""
    outputs = []
    for c in range(W.shape[1]):
        acc = None
        for j, vector in enumerate(vectors):
            w = float(W[j, c])
            if w == 0.0:
                continue
            term = vector * w
            acc = term if acc is None else acc.add_(term)
        if acc is None:  # an all-zero column: keep the level of the other outputs
            acc = vectors[0] * 0.0
        outputs.append(acc.add_(float(b[c])))
    return outputs


def available_depth(ctx: ts.Context) -> int:
    """How many rescalings a fresh ciphertext of `ctx` can take."""
    return int(ctx.seal_context().data.first_context_data().chain_index())


def _check_batch(batch: EncryptedBatch, n_features: int, depth: int, *, needs_relin: bool) -> None:
    if batch.kind != "latents":
        raise DataError(f"the head evaluates encrypted latents, got {batch.kind}")
    if batch.width != n_features:
        raise DataError(f"the batch has {batch.width} features, the head expects {n_features}")
    ctx = batch.vectors[0].context()
    if available_depth(ctx) < depth:
        raise ConfigError(
            f"the head needs multiplicative depth {depth}, the context allows "
            f"{available_depth(ctx)}: create keys with `fds keys new --depth {depth}`"
        )
    if needs_relin and not ctx.has_relin_keys():
        raise ConfigError(
            "the head multiplies ciphertexts: the public context needs relinearization keys "
            f"(`fds keys new --depth {depth}` includes them)"
        )


def _fold_step(step: Any, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fold a preprocessing step x' = (x - mean) / scale applied before (W, b)."""
    from sklearn.preprocessing import StandardScaler

    if not isinstance(step, StandardScaler):
        raise ConfigError(
            f"cannot fold a {type(step).__name__} into a linear head (only StandardScaler)"
        )
    scale = getattr(step, "scale_", None)
    mean = getattr(step, "mean_", None)
    if scale is not None:
        W = W / np.asarray(scale, dtype=np.float64)[:, None]
    if mean is not None and step.with_mean:
        b = b - np.asarray(mean, dtype=np.float64) @ W
    return W, b


@dataclass
class LinearHead:
    """`scores = Z @ W + b` with W (d × c); classification when `classes` is given (argmax, or
    the sign of one score for two classes), else c regression outputs."""

    W: np.ndarray
    b: np.ndarray
    classes: np.ndarray | None = None
    depth: int = 1

    def __post_init__(self) -> None:
        W = np.asarray(self.W, dtype=np.float64)
        if W.ndim == 1:
            W = W[:, None]
        b = np.atleast_1d(np.asarray(self.b, dtype=np.float64))
        if W.ndim != 2 or b.shape != (W.shape[1],):
            raise ConfigError(f"W {W.shape} and b {b.shape} do not form a linear head")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ConfigError("the linear head holds NaN or inf weights")
        self.W, self.b = W, b
        if self.classes is not None:
            self.classes = np.asarray(self.classes)
            expected = 2 if W.shape[1] == 1 else W.shape[1]
            if len(self.classes) != expected:
                raise ConfigError(f"{len(self.classes)} classes for {W.shape[1]} score(s)")

    @property
    def n_features(self) -> int:
        return self.W.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.W.shape[1]

    @classmethod
    def from_sklearn(cls, estimator: Any) -> LinearHead:
        """From a fitted linear model (LogisticRegression, Ridge, RidgeClassifier, LinearSVC, …)
        or a Pipeline of StandardScaler steps ending in one, the scalers folded into W and b."""
        steps = list(getattr(estimator, "steps", [(None, estimator)]))
        final = steps[-1][1]
        coef = getattr(final, "coef_", None)
        if coef is None:
            raise ConfigError(
                f"{type(final).__name__} is not a fitted linear model (it has no coef_)"
            )
        coef = np.asarray(coef, dtype=np.float64)
        W = coef[:, None] if coef.ndim == 1 else coef.T
        b = np.broadcast_to(
            np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64), (W.shape[1],)
        ).copy()
        for _, step in reversed(steps[:-1]):
            if step is None or step == "passthrough":
                continue
            W, b = _fold_step(step, W, b)
        classes = getattr(final, "classes_", None)
        return cls(W, b, None if classes is None else np.asarray(classes))

    @classmethod
    def from_probe(cls, probe: Any) -> LinearHead:
        """From a saved `fds.evaluation.probes.FittedProbe` with a `logistic` or `ridge` head;
        classes come back in the probe's original label space."""
        head, task = probe.spec["head"], probe.spec["task"]
        if head not in ("logistic", "ridge"):
            raise ConfigError(
                f"the {head} {task} probe has no encrypted form: use a logistic or ridge probe"
            )
        linear = cls.from_sklearn(probe.estimator)
        if task == "classification":
            linear.classes = np.asarray(probe.spec["classes"])[linear.classes.astype(int)]
        return linear

    def scores(self, Z: Any) -> np.ndarray:
        """Plaintext scores (n, c)."""
        return as_matrix(Z, "latents", width=self.n_features) @ self.W + self.b

    def predict_from_scores(self, scores: np.ndarray) -> np.ndarray:
        return predictions_from_scores(scores, self.classes)

    def predict(self, Z: Any) -> np.ndarray:
        return self.predict_from_scores(self.scores(Z))

    def evaluate(self, batch: EncryptedBatch) -> EncryptedBatch:
        """Encrypted scores of a packed latent batch: plaintext products and sums only."""
        _check_batch(batch, self.n_features, self.depth, needs_relin=False)
        outputs = _linear_layer(batch.vectors, self.W, self.b)
        return EncryptedBatch("scores", batch.n_records, batch.key_id, outputs)

    def evaluate_records(self, vectors: Sequence[ts.CKKSVector]) -> list[ts.CKKSVector]:
        """Encrypted scores of one-ciphertext-per-record inputs (needs Galois keys)."""
        if vectors and not vectors[0].context().has_galois_keys():
            raise ConfigError("the per-record path needs Galois keys (HEParams(galois_keys=True))")
        W, b = self.W.tolist(), self.b.tolist()
        return [v.matmul(W).add_(b) for v in vectors]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "linear",
            "W": self.W.tolist(),
            "b": self.b.tolist(),
            "classes": None if self.classes is None else self.classes.tolist(),
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> LinearHead:
        if not isinstance(spec, dict) or spec.get("kind") != "linear":
            raise ModelFormatError("not a linear head specification")
        try:
            return cls(np.asarray(spec["W"], float), np.asarray(spec["b"], float), spec["classes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"bad linear head specification: {exc}") from None


# --------------------------------------------------------------------------- polynomial MLP
_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "logistic": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "identity": lambda x: x,
}


@dataclass
class PolyMLPHead:
    """One hidden layer with a degree-2 activation, in the form evaluated on ciphertexts:
    `scores = ((Z @ W1 + b1) ** 2) @ V + b` (depth 3: layer, square, layer).

    `from_sklearn_mlp` builds it from a fitted one-hidden-layer MLPClassifier/MLPRegressor: its
    activation is replaced by the least-squares degree-2 polynomial `c2·h² + c1·h + c0` over the
    hidden pre-activations of the given latents, then folded (`c1`, `c0` into `b1` and `b`, `c2`
    into `V`) so only one ciphertext square per hidden unit remains. `approximation` records the
    polynomial and its fit error; `approximation_report` the accuracy lost to it."""

    W1: np.ndarray
    b1: np.ndarray
    V: np.ndarray
    b: np.ndarray
    classes: np.ndarray | None = None
    approximation: dict[str, Any] = field(default_factory=dict)
    depth: int = 3

    def __post_init__(self) -> None:
        self.W1 = np.asarray(self.W1, dtype=np.float64)
        self.b1 = np.asarray(self.b1, dtype=np.float64)
        self.V = np.asarray(self.V, dtype=np.float64)
        self.b = np.asarray(self.b, dtype=np.float64)
        h = self.W1.shape[1] if self.W1.ndim == 2 else 0
        if (
            self.W1.ndim != 2
            or self.b1.shape != (h,)
            or self.V.ndim != 2
            or self.V.shape[0] != h
            or self.b.shape != (self.V.shape[1],)
        ):
            raise ConfigError("the MLP head's weights do not fit together")
        if not all(np.isfinite(a).all() for a in (self.W1, self.b1, self.V, self.b)):
            raise ConfigError("the MLP head holds NaN or inf weights")
        if self.classes is not None:
            self.classes = np.asarray(self.classes)
            expected = 2 if self.V.shape[1] == 1 else self.V.shape[1]
            if len(self.classes) != expected:
                raise ConfigError(f"{len(self.classes)} classes for {self.V.shape[1]} score(s)")

    @property
    def n_features(self) -> int:
        return self.W1.shape[0]

    @property
    def n_outputs(self) -> int:
        return self.V.shape[1]

    @classmethod
    def from_sklearn_mlp(cls, estimator: Any, Z: Any) -> PolyMLPHead:
        """From a fitted MLPClassifier / MLPRegressor with one hidden layer (optionally behind
        StandardScaler steps); `Z` are latents whose hidden pre-activations set the range the
        polynomial approximates (the training latents)."""
        steps = list(getattr(estimator, "steps", [(None, estimator)]))
        mlp = steps[-1][1]
        coefs = getattr(mlp, "coefs_", None)
        if coefs is None or not hasattr(mlp, "activation"):
            raise ConfigError(f"{type(mlp).__name__} is not a fitted scikit-learn MLP")
        if len(coefs) != 2:
            raise ConfigError(
                f"the MLP has {len(coefs) - 1} hidden layers; the encrypted head supports one"
            )
        W1 = np.asarray(coefs[0], dtype=np.float64)
        b1 = np.asarray(mlp.intercepts_[0], dtype=np.float64)
        for _, step in reversed(steps[:-1]):
            if step is None or step == "passthrough":
                continue
            W1, b1 = _fold_step(step, W1, b1)
        W2 = np.asarray(coefs[1], dtype=np.float64)
        b2 = np.asarray(mlp.intercepts_[1], dtype=np.float64)
        pre = as_matrix(Z, "latents", width=W1.shape[0]) @ W1 + b1
        activation = _ACTIVATIONS[mlp.activation]
        c2, c1, c0 = np.polyfit(pre.ravel(), activation(pre.ravel()), 2)
        rmse = float(np.sqrt(np.mean((np.polyval([c2, c1, c0], pre) - activation(pre)) ** 2)))
        if abs(c2) < 1e-12:
            raise ConfigError("the activation's quadratic fit is degenerate (c2 ≈ 0)")
        shift = c1 / (2.0 * c2)  # c2·h² + c1·h + c0 = c2·(h + shift)² + (c0 − c2·shift²)
        constant = c0 - c2 * shift**2
        classes = getattr(mlp, "classes_", None)
        return cls(
            W1,
            b1 + shift,
            c2 * W2,
            b2 + constant * W2.sum(axis=0),
            None if classes is None else np.asarray(classes),
            {
                "activation": mlp.activation,
                "degree": 2,
                "coefficients": [float(c2), float(c1), float(c0)],
                "range": [float(pre.min()), float(pre.max())],
                "fit_rmse": rmse,
            },
        )

    def scores(self, Z: Any) -> np.ndarray:
        """Plaintext scores of the polynomial network (what the ciphertexts compute)."""
        hidden = as_matrix(Z, "latents", width=self.n_features) @ self.W1 + self.b1
        return (hidden**2) @ self.V + self.b

    def predict_from_scores(self, scores: np.ndarray) -> np.ndarray:
        return predictions_from_scores(scores, self.classes)

    def predict(self, Z: Any) -> np.ndarray:
        return self.predict_from_scores(self.scores(Z))

    def approximation_report(self, estimator: Any, Z: Any, y: Any = None) -> dict[str, Any]:
        """What the polynomial activation costs: agreement of its predictions with the exact
        MLP's, and (with labels) both accuracies and their difference."""
        exact = np.asarray(estimator.predict(as_matrix(Z, "latents", width=self.n_features)))
        poly = self.predict(Z)
        report: dict[str, Any] = {**self.approximation}
        if self.classes is None:
            report["max_abs_difference"] = float(np.max(np.abs(np.ravel(poly) - np.ravel(exact))))
            return report
        report["prediction_agreement"] = float(np.mean(poly == exact))
        if y is not None:
            y = np.asarray(y)
            report["exact_accuracy"] = float(np.mean(exact == y))
            report["poly_accuracy"] = float(np.mean(poly == y))
            report["accuracy_loss"] = report["exact_accuracy"] - report["poly_accuracy"]
        return report

    def evaluate(self, batch: EncryptedBatch) -> EncryptedBatch:
        """Encrypted scores: hidden layer, one ciphertext square per unit, output layer."""
        _check_batch(batch, self.n_features, self.depth, needs_relin=True)
        hidden = [h.square_() for h in _linear_layer(batch.vectors, self.W1, self.b1)]
        outputs = _linear_layer(hidden, self.V, self.b)
        return EncryptedBatch("scores", batch.n_records, batch.key_id, outputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "poly_mlp",
            "W1": self.W1.tolist(),
            "b1": self.b1.tolist(),
            "V": self.V.tolist(),
            "b": self.b.tolist(),
            "classes": None if self.classes is None else self.classes.tolist(),
            "approximation": self.approximation,
        }


def head_from_dict(spec: dict[str, Any]) -> LinearHead | PolyMLPHead:
    """A head from its JSON form (`to_dict`)."""
    if isinstance(spec, dict) and spec.get("kind") == "poly_mlp":
        try:
            return PolyMLPHead(
                spec["W1"],
                spec["b1"],
                spec["V"],
                spec["b"],
                spec["classes"],
                dict(spec.get("approximation") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"bad MLP head specification: {exc}") from None
    return LinearHead.from_dict(spec)


def head_from_probe(probe: Any) -> LinearHead | PolyMLPHead:
    """The encrypted form of a saved `FittedProbe`: `logistic` / `ridge` → LinearHead,
    classification `mlp` → PolyMLPHead (activation fitted on the probe's training latents)."""
    spec = probe.spec
    if spec["head"] == "mlp" and spec["task"] == "classification":
        head = PolyMLPHead.from_sklearn_mlp(probe.estimator, probe.Z_train)
        # on the probe's training rows, in class indices (what its estimator predicts)
        head.approximation = head.approximation_report(
            probe.estimator, probe.Z_train, probe.y_train
        )
        head.classes = np.asarray(spec["classes"])[head.classes.astype(int)]
        return head
    return LinearHead.from_probe(probe)
