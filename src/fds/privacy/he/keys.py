"""CKKS keys for encrypted inference (TenSEAL): parameters, contexts, key ids, key files.

The data owner holds the secret context; a server holds only the public context and a head, and
computes encrypted scores it cannot read. Only this is encryption in FDS (see DESIGN.md).

`create_context` picks CKKS parameters for a head's multiplicative depth within the 128-bit
security bound of the HE standard (`MAX_COEFF_MODULUS_BITS`): primes `[60] + [40] * depth + [60]`
and a global scale of 2**40. Galois keys (rotations) only when asked. `save_keys` writes
`secret.ctx` (owner only, mode 0600), `public.ctx` (no secret key; relin keys only for heads that
multiply ciphertexts, Galois keys only if generated) and `keys.json`. The key id (sha256 of the
public key) travels with every ciphertext, so data from another key are refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tenseal as ts

from fds.errors import ConfigError, DataError, KeyMismatchError, ModelFormatError
from fds.rundir import write_together

__all__ = [
    "DEFAULT_POLY_MODULUS",
    "GLOBAL_SCALE_BITS",
    "INFO_FILE",
    "MAX_COEFF_MODULUS_BITS",
    "PUBLIC_FILE",
    "SECRET_FILE",
    "HEParams",
    "available_depth",
    "check_key",
    "context_params",
    "create_context",
    "global_scale",
    "key_id",
    "load_keys_info",
    "load_public_context",
    "load_secret_context",
    "public_context_bytes",
    "read_bytes",
    "save_keys",
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


def check_key(found: str, expected: str, what: str) -> None:
    """Refuse ciphertexts made under key id `found` where key `expected` is in use: CKKS itself
    would decrypt them to silent garbage."""
    if found != expected:
        raise KeyMismatchError(
            f"{what} was encrypted under key {found}, these keys are {expected}: "
            "use the keys the data were encrypted with"
        )


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
    files = [
        (out / SECRET_FILE, secret, 0o600),  # the secret key: owner only, whatever the umask
        (out / PUBLIC_FILE, public, None),
        (out / INFO_FILE, (json.dumps(info, indent=2) + "\n").encode(), None),
    ]
    try:
        write_together(files, overwrite=False)
    except FileExistsError as exc:  # raced with another writer
        raise ConfigError(
            f"{exc.filename} appeared while writing keys; nothing was replaced"
        ) from None
    return {
        **info,
        "out": str(out),
        "secret_path": str(out / SECRET_FILE),
        "public_path": str(out / PUBLIC_FILE),
    }


def read_bytes(path: str | Path, what: str) -> bytes:
    """The bytes of file `path`; a DataError names `what` was expected when it is missing or a
    directory."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory; give the {what} file")
    if not path.is_file():
        raise DataError(f"{what} {path} not found")
    return path.read_bytes()


def global_scale(ctx: ts.Context) -> float | None:
    """The scale fresh ciphertexts of `ctx` are encoded at (None when the context sets none)."""
    try:
        return float(ctx.global_scale)
    except ValueError:
        return None


def _context_from(data: bytes, what: str) -> ts.Context:
    """A TenSEAL context from bytes, refused (DataError) unless it is a CKKS context with a
    global scale, as `create_context` makes: FDS computes on nothing else."""
    try:
        ctx = ts.context_from(data)
    except Exception as exc:  # TenSEAL raises ValueError / RuntimeError on bad streams
        raise DataError(f"{what} is not a TenSEAL context ({exc})") from None
    scheme = ctx.seal_context().data.key_context_data().parms().scheme().name
    if scheme != "CKKS":
        raise DataError(f"{what} is a {scheme} context; FDS computes on CKKS contexts only")
    if global_scale(ctx) is None:
        raise DataError(f"{what} sets no global scale (make keys with `fds keys new`)")
    if not ctx.is_public() and not ctx.has_secret_key():  # pragma: no cover - defensive
        raise DataError(f"{what} holds no key")
    return ctx


def load_public_context(source: str | Path | bytes) -> ts.Context:
    """The server's context from `public.ctx` (a path) or its bytes; refuses one that holds a
    secret key, so secret material is never accepted by mistake."""
    data = source if isinstance(source, bytes) else read_bytes(source, "public context")
    ctx = _context_from(data, "the public context")
    if ctx.has_secret_key():
        raise DataError(
            "the context holds a secret key: send only the public context (public.ctx) to a server"
        )
    if not ctx.has_public_key():
        raise DataError("the public context holds no public key (send keys/public.ctx)")
    return ctx


def load_secret_context(source: str | Path) -> ts.Context:
    """The owner's context from `secret.ctx` or a keys directory."""
    path = Path(source)
    if path.is_dir():
        path = path / SECRET_FILE
    ctx = _context_from(read_bytes(path, "secret context"), str(path))
    if not ctx.has_secret_key():
        raise DataError(f"{path} holds no secret key (is it the public context?)")
    return ctx


def load_keys_info(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / INFO_FILE
    try:
        info = json.loads(read_bytes(path, "keys info").decode())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFormatError(f"{path} is not valid JSON") from None
    if not isinstance(info, dict) or info.get("format") != KEYS_FORMAT:
        raise ModelFormatError(f"{path} is not an FDS keys file")
    if int(info.get("format_version", 0)) > KEYS_FORMAT_VERSION:
        raise ModelFormatError(f"{path} is from a newer FDS; upgrade fds")
    return info


def available_depth(ctx: ts.Context) -> int:
    """How many rescalings a fresh ciphertext of `ctx` can take."""
    return int(ctx.seal_context().data.first_context_data().chain_index())
