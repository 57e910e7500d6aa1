"""Sealed latents (`.fdsz`): the public block in the clear, the private block (the key) under the
owner's CKKS keys.

Whoever holds the file without the owner's `secret.ctx` reads the public block and decodes
public-only records; the owner decrypts the private block and decodes the exact records. Sealing
needs only `public.ctx`. The private block is packed feature-major (`encrypt_latents`: up to
`slot_count` rows per ciphertext), so a server can evaluate a head on it, or on the whole latent
vector with the public block encrypted beside it (`inference_batches`), through the ordinary
encrypted-inference path without decrypting anything.

The file is the FDS container (`container.py`, format `fds-sealed-latents`): a header with the
model id, key id, row count, block widths and the data's column names; blob 0 the public block
as little-endian float32 (row-major); blobs 1… the private block's encrypted batches; the sha256
trailer. What it reveals is in docs/privacy.md ("Sealed latents").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tenseal as ts

from fds.errors import DataError
from fds.privacy.he.container import SEALED_FORMAT, read_container, write_container
from fds.privacy.he.keys import (
    PUBLIC_FILE,
    check_key,
    key_id,
    load_public_context,
    load_secret_context,
)
from fds.privacy.he.wire import (
    EncryptedBatch,
    decrypt_batches,
    encrypt_latents,
    is_count,
    parse_batch_header,
)

__all__ = ["SealedLatents", "open_context", "seal_context", "seal_latents"]

_PUBLIC_DTYPE = "<f4"
_HEX = re.compile(r"[0-9a-f]+")
Keys = str | Path | ts.Context


@dataclass(frozen=True, eq=False)
class SealedLatents:
    """Latent codes with the private block sealed: `public` (n_rows × public_dim float32, in the
    clear) and `sealed` (the private block's serialized `EncryptedBatch`es, feature-major).
    `model_id` names the model that encoded them and `key_id` the CKKS key they are sealed
    under; `columns` are the data columns they decode to (None for images)."""

    public: np.ndarray
    sealed: tuple[bytes, ...]
    model_id: str
    key_id: str
    private_dim: int
    columns: tuple[str, ...] | None = None
    source: str = "the sealed latents"

    @property
    def n_rows(self) -> int:
        return len(self.public)

    @property
    def public_dim(self) -> int:
        return self.public.shape[1]

    # ------------------------------------------------------------------ file
    def save(self, path: str | Path, *, overwrite: bool = False) -> dict[str, Any]:
        """Write the `.fdsz` file atomically; returns its header plus `out` and `bytes`."""
        header = {
            "format": SEALED_FORMAT,
            "model_id": self.model_id,
            "key_id": self.key_id,
            "n_rows": self.n_rows,
            "public_dim": self.public_dim,
            "private_dim": self.private_dim,
            "public_dtype": _PUBLIC_DTYPE,
            "columns": None if self.columns is None else list(self.columns),
        }
        public = np.ascontiguousarray(self.public, dtype=_PUBLIC_DTYPE).tobytes()
        return write_container(path, header, [public, *self.sealed], overwrite=overwrite)

    @classmethod
    def load(cls, path: str | Path) -> SealedLatents:
        """Read and check a `.fdsz` file (no keys needed): framing, sha256, header, and that the
        public block and every sealed batch agree with the header. DataError otherwise."""
        header, blobs = read_container(path, SEALED_FORMAT)
        what = str(path)
        n, pub, priv = (header.get(k) for k in ("n_rows", "public_dim", "private_dim"))
        columns = header.get("columns")
        ok = (
            all(is_count(v) for v in (n, pub, priv))
            and all(isinstance(header.get(k), str) for k in ("model_id", "key_id"))
            and _HEX.fullmatch(header["model_id"]) is not None
            and header.get("public_dtype") == _PUBLIC_DTYPE
            and (
                columns is None
                or (isinstance(columns, list) and all(isinstance(c, str) for c in columns))
            )
            and len(blobs) >= 2
        )
        if not ok:
            raise DataError(f"{what}: malformed sealed-latents header")
        if len(blobs[0]) != n * pub * 4:
            raise DataError(
                f"{what}: the public block holds {len(blobs[0])} bytes, the header says "
                f"{n} rows × {pub} float32"
            )
        public = np.frombuffer(blobs[0], dtype=_PUBLIC_DTYPE).reshape(n, pub)
        if not np.isfinite(public).all():
            raise DataError(f"{what}: the public block holds NaN or inf")
        records = 0
        for i, blob in enumerate(blobs[1:]):
            batch = parse_batch_header(blob)
            if (batch["kind"], batch["width"], batch["key_id"]) != (
                "latents",
                priv,
                header["key_id"],
            ):
                raise DataError(f"{what}: sealed batch {i} does not match the file header")
            records += batch["n_records"]
        if records != n:
            raise DataError(f"{what}: the sealed batches hold {records} rows, the header says {n}")
        return cls(
            public.astype(np.float32),
            tuple(blobs[1:]),
            header["model_id"],
            header["key_id"],
            priv,
            None if columns is None else tuple(columns),
            source=what,
        )

    # ------------------------------------------------------------------ keys
    def check_model(self, model_id: str, public_dim: int, private_dim: int) -> None:
        """Refuse latents sealed by another model (their decoding would be garbage)."""
        if (self.model_id, self.public_dim, self.private_dim) != (
            model_id,
            public_dim,
            private_dim,
        ):
            raise DataError(
                f"{self.source} was sealed by another model (model {self.model_id[:12]}…, "
                f"{self.public_dim} public + {self.private_dim} private latents); this model is "
                f"{model_id[:12]}… ({public_dim} + {private_dim}): decode it with the model "
                "that encoded it"
            )

    def batches(self, context: ts.Context) -> list[EncryptedBatch]:
        """The private block as encrypted latent batches linked to `context` (public or secret);
        KeyMismatchError under another key."""
        check_key(self.key_id, key_id(context), self.source)
        return [EncryptedBatch.from_bytes(b, context, kind="latents") for b in self.sealed]

    def inference_batches(self, context: ts.Context, n_features: int) -> list[EncryptedBatch]:
        """Encrypted batches for a head of `n_features` inputs: the sealed private block alone
        (n_features = private_dim), or every latent (public_dim + private_dim), the public block
        encrypted under `context` and stacked before the sealed columns. Nothing is decrypted."""
        private = self.batches(context)
        if n_features == self.private_dim:
            return private
        if n_features != self.public_dim + self.private_dim:
            raise DataError(
                f"the head takes {n_features} features; {self.source} holds "
                f"{self.public_dim} public + {self.private_dim} private latents"
            )
        public = encrypt_latents(context, self.public)
        if [b.n_records for b in public] != [b.n_records for b in private]:
            raise DataError(f"{self.source} was sealed under CKKS parameters other than these")
        return [
            EncryptedBatch("latents", p.n_records, p.key_id, p.vectors + s.vectors)
            for p, s in zip(public, private, strict=True)
        ]

    def private(self, keys: Keys) -> np.ndarray:
        """The private block (n_rows × private_dim float32), decrypted with the owner's secret
        context (a keys directory, `secret.ctx`, or a loaded context holding the secret key)."""
        context = open_context(keys)
        return decrypt_batches(context, self.batches(context)).astype(np.float32)


def seal_latents(
    public: Any,
    private: Any,
    keys: Keys,
    *,
    model_id: str,
    columns: Any = None,
) -> SealedLatents:
    """Seal `private` (n × private_dim) under `keys` (only their public key is used) beside
    `public` (n × public_dim, kept in the clear as float32)."""
    public = np.asarray(public, dtype=np.float32)
    private = np.asarray(private, dtype=np.float64)
    if public.ndim != 2 or private.ndim != 2 or len(public) != len(private) or not len(public):
        raise DataError(
            f"public {public.shape} and private {private.shape} blocks must be 2-D with the "
            "same, non-zero number of rows"
        )
    context = seal_context(keys)
    batches = encrypt_latents(context, private)
    return SealedLatents(
        public,
        tuple(b.to_bytes() for b in batches),
        model_id,
        batches[0].key_id,
        private.shape[1],
        None if columns is None else tuple(str(c) for c in columns),
    )


def seal_context(keys: Keys) -> ts.Context:
    """The context that seals: a loaded context as given, else the keys directory's
    `public.ctx` (or a public context file)."""
    if isinstance(keys, ts.Context):
        return keys
    path = Path(keys)
    return load_public_context(path / PUBLIC_FILE if path.is_dir() else path)


def open_context(keys: Keys) -> ts.Context:
    """The context that opens: a loaded context holding the secret key, else the keys
    directory's `secret.ctx` (or that file)."""
    if isinstance(keys, ts.Context):
        if not keys.has_secret_key():
            raise DataError("opening sealed latents needs the secret context; this one is public")
        return keys
    return load_secret_context(keys)
