"""`fds encrypt` / `fds decrypt` and the encrypted-batches file (`write_encrypted`,
`read_encrypted`): round trip, no plaintext in the file, wrong keys and garbage refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fds.cli import app
from fds.errors import DataError, KeyMismatchError
from fds.privacy.he import (
    EncryptedBatch,
    HEParams,
    LinearHead,
    create_context,
    decrypt_batches,
    encrypt_latents,
    load_public_context,
    load_secret_context,
    public_context_bytes,
    read_encrypted,
    save_keys,
    write_encrypted,
)

runner = CliRunner()
N, DIM = 300, 8


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys") / "keys"
    save_keys(create_context(HEParams()), out, HEParams())
    return out


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("other") / "keys"
    save_keys(create_context(HEParams()), out, HEParams())
    return out


@pytest.fixture(scope="module")
def Z() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, DIM)).astype(np.float32)


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _encrypt(keys: Path, Z: np.ndarray, tmp_path: Path, name: str = "z.fdsct") -> Path:
    src = tmp_path / "latents.npy"
    np.save(src, Z)
    out = tmp_path / name
    result = runner.invoke(
        app, ["encrypt", "--keys", str(keys), "--latents", str(src), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_cli_round_trip(keys: Path, Z: np.ndarray, tmp_path: Path, suffix: str) -> None:
    src = tmp_path / "latents.parquet"
    pd.DataFrame(Z, columns=[f"z{i}" for i in range(DIM)]).to_parquet(src)
    enc = tmp_path / "z.fdsct"
    result = runner.invoke(
        app, ["encrypt", "--keys", str(keys), "--latents", str(src), "--out", str(enc), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    slots = 8192 // 2
    assert summary == {
        "out": str(enc),
        "records": N,
        "batches": -(-N // slots),
        "bytes": enc.stat().st_size,
        "key_id": json.loads((keys / "keys.json").read_text())["key_id"],
    }
    dec = tmp_path / f"z{suffix}"
    result = runner.invoke(
        app, ["decrypt", "--keys", str(keys), "--in", str(enc), "--out", str(dec), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == N
    back = np.load(dec) if suffix == ".npy" else pd.read_csv(dec).to_numpy()
    assert back.shape == Z.shape
    np.testing.assert_allclose(back, Z, atol=1e-3)


def test_encrypt_needs_only_the_public_key(keys: Path, Z: np.ndarray, tmp_path: Path) -> None:
    public_only = tmp_path / "public_only"
    public_only.mkdir()
    (public_only / "public.ctx").write_bytes((keys / "public.ctx").read_bytes())
    enc = _encrypt(public_only, Z, tmp_path)
    back = decrypt_batches(
        load_secret_context(keys), read_encrypted(enc, load_secret_context(keys))
    )
    np.testing.assert_allclose(back, Z, atol=1e-3)


def test_file_holds_no_plaintext(keys: Path, Z: np.ndarray, tmp_path: Path) -> None:
    blob = _encrypt(keys, Z, tmp_path).read_bytes()
    assert Z[0].tobytes() not in blob
    assert Z[0].astype(np.float64).tobytes() not in blob
    assert Z[0, :2].tobytes() not in blob
    assert f"{float(Z[0, 0]):.4f}".encode() not in blob


def test_several_batches_and_api(keys: Path, tmp_path: Path) -> None:
    public = load_public_context(keys / "public.ctx")
    Z = np.random.default_rng(1).normal(size=(4096 * 2 + 5, 3))
    batches = encrypt_latents(public, Z)
    assert len(batches) == 3
    info = write_encrypted(tmp_path / "z.fdsct", batches)
    assert (info["n_records"], info["n_features"], info["n_batches"]) == (len(Z), 3, 3)
    secret = load_secret_context(keys)
    back = decrypt_batches(secret, read_encrypted(tmp_path / "z.fdsct", secret, kind="latents"))
    np.testing.assert_allclose(back, Z, atol=1e-3)
    with pytest.raises(DataError, match="exists"):
        write_encrypted(tmp_path / "z.fdsct", batches)
    with pytest.raises(DataError, match="holds encrypted latents"):
        read_encrypted(tmp_path / "z.fdsct", secret, kind="scores")


def test_decrypt_encrypted_scores(tmp_path: Path) -> None:
    ctx = create_context(HEParams())
    out = tmp_path / "keys"
    save_keys(ctx, out, HEParams())
    server = load_public_context(public_context_bytes(ctx))
    Z = np.random.default_rng(2).normal(size=(50, 4))
    head = LinearHead(np.random.default_rng(3).normal(size=(4, 3)), np.zeros(3))
    replies = [
        head.evaluate(EncryptedBatch.from_bytes(b.to_bytes(), server))
        for b in encrypt_latents(ctx, Z)
    ]
    write_encrypted(tmp_path / "scores.fdsct", replies)
    dec = tmp_path / "scores.csv"
    result = runner.invoke(
        app,
        [
            "decrypt",
            "--keys",
            str(out),
            "--in",
            str(tmp_path / "scores.fdsct"),
            "--out",
            str(dec),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["kind"] == "scores"
    table = pd.read_csv(dec)
    assert list(table.columns) == ["score_0", "score_1", "score_2"]
    np.testing.assert_allclose(table.to_numpy(), head.scores(Z), atol=1e-3)


def test_decrypt_with_other_keys_is_one_line(
    keys: Path, other_keys: Path, Z: np.ndarray, tmp_path: Path
) -> None:
    enc = _encrypt(keys, Z, tmp_path)
    dec = tmp_path / "z.npy"
    result = runner.invoke(
        app, ["decrypt", "--keys", str(other_keys), "--in", str(enc), "--out", str(dec)]
    )
    assert "encrypted under key" in _one_line_error(result)
    assert not dec.exists()
    with pytest.raises(KeyMismatchError):
        read_encrypted(enc, load_secret_context(other_keys))


@pytest.mark.parametrize(
    "payload",
    [b"", b"not an encrypted file at all", b"FDSCT1\n\xff\xff\x00\x00{", b"\x93NUMPY garbage"],
)
def test_garbage_file_is_one_line(keys: Path, tmp_path: Path, payload: bytes) -> None:
    bad = tmp_path / "bad.fdsct"
    bad.write_bytes(payload)
    result = runner.invoke(
        app, ["decrypt", "--keys", str(keys), "--in", str(bad), "--out", str(tmp_path / "z.npy")]
    )
    _one_line_error(result)


def test_truncated_or_tampered_file_is_a_data_error(
    keys: Path, Z: np.ndarray, tmp_path: Path
) -> None:
    enc = _encrypt(keys, Z, tmp_path)
    blob = enc.read_bytes()
    secret = load_secret_context(keys)
    for i, payload in enumerate([blob[:-100], blob + b"x", blob[: len(blob) // 2]]):
        path = tmp_path / f"t{i}.fdsct"
        path.write_bytes(payload)
        with pytest.raises(DataError):
            read_encrypted(path, secret)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x01  # inside a ciphertext: CKKS alone would decrypt it to noise
    path = tmp_path / "flipped.fdsct"
    path.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match="altered"):
        read_encrypted(path, secret)
    missing = runner.invoke(
        app,
        [
            "decrypt",
            "--keys",
            str(keys),
            "--in",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "z.npy"),
        ],
    )
    _one_line_error(missing)


def test_existing_out_is_not_overwritten(keys: Path, Z: np.ndarray, tmp_path: Path) -> None:
    enc = _encrypt(keys, Z, tmp_path)
    src = tmp_path / "latents.npy"
    before = enc.read_bytes()
    again = runner.invoke(
        app, ["encrypt", "--keys", str(keys), "--latents", str(src), "--out", str(enc)]
    )
    assert "exists" in _one_line_error(again)
    assert enc.read_bytes() == before
    forced = runner.invoke(
        app,
        ["encrypt", "--keys", str(keys), "--latents", str(src), "--out", str(enc), "--overwrite"],
    )
    assert forced.exit_code == 0, forced.output
    assert enc.read_bytes() != before  # fresh randomness

    dec = tmp_path / "z.npy"
    dec.write_bytes(b"keep me")
    result = runner.invoke(
        app, ["decrypt", "--keys", str(keys), "--in", str(enc), "--out", str(dec)]
    )
    assert "exists" in _one_line_error(result)
    assert dec.read_bytes() == b"keep me"
    ok = runner.invoke(
        app, ["decrypt", "--keys", str(keys), "--in", str(enc), "--out", str(dec), "--overwrite"]
    )
    assert ok.exit_code == 0, ok.output
    np.testing.assert_allclose(np.load(dec), Z, atol=1e-3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
