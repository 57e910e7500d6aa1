"""Sealed latents (`.fdsz`): the public block in the clear, the private block under the owner's
CKKS keys. Round trip with the keys, public-only records without them, refusal of wrong keys,
damaged files and other models, no plaintext of the key in the file, and a probe on the sealed
key through the encrypted-inference path."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fds.data.datasets import make_census
from fds.data.files import read_latents, write_output
from fds.errors import DataError, KeyMismatchError
from fds.estimator import FDS
from fds.privacy.he import (
    HEParams,
    LinearHead,
    SealedLatents,
    create_context,
    load_secret_context,
    save_keys,
)
from fds.privacy.service import create_app, infer_remote
from tests.cli_helpers import fds, one_line_error
from tests.integration.test_he_service import _serving

SETTINGS = {"latent_dim": 4, "hidden_dims": [32], "epochs": 2, "batch_size": 64, "verbose": False}
CKKS_TOLERANCE = 1e-3  # the bound on the latents, in code units


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return make_census(n=400, seed=0)


@pytest.fixture(scope="module")
def run(table: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = FDS(preset="fds", sensitive=("sex",), seed=0, **SETTINGS).fit(table)
    out = tmp_path_factory.mktemp("seal") / "run" / "model"
    model.save(out)
    return out.parent


@pytest.fixture(scope="module")
def model(run: Path) -> FDS:
    return FDS.load(run)


def _keys(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "keys"
    save_keys(create_context(HEParams()), out, HEParams())
    return out


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _keys(tmp_path_factory, "keys")


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _keys(tmp_path_factory, "other")


@pytest.fixture(scope="module")
def sealed_file(model: FDS, table: pd.DataFrame, keys: Path, run: Path) -> Path:
    path = run.parent / "shared.fdsz"
    model.transform(table, seal=keys).save(path)
    return path


def _assert_same_records(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Decoded tables agree: categories exactly, numbers to CKKS noise through the decoder."""
    assert list(got.columns) == list(expected.columns)
    for column in got.columns:
        if pd.api.types.is_numeric_dtype(expected[column]):
            np.testing.assert_allclose(got[column], expected[column], rtol=1e-3, atol=1e-3)
        else:
            assert (got[column].astype(str) == expected[column].astype(str)).all(), column


# --------------------------------------------------------------------------- API
def test_sealed_round_trip_equals_plain_decoding(
    model: FDS, table: pd.DataFrame, keys: Path, sealed_file: Path
) -> None:
    plain = model.transform(table)
    sealed = SealedLatents.load(sealed_file)
    assert sealed.n_rows == len(table)
    assert (sealed.public_dim, sealed.private_dim) == (2, 2)
    assert sealed.columns == tuple(table.columns)
    np.testing.assert_array_equal(sealed.public, plain[:, :2])  # the public block, in the clear
    opened = np.hstack([sealed.public, sealed.private(keys)])
    assert np.max(np.abs(opened - plain)) <= CKKS_TOLERANCE
    expected = model.inverse_transform(plain)
    _assert_same_records(model.inverse_transform(sealed, keys=keys), expected)
    # keys as a loaded secret context, and a sealed object that never touched the disk
    in_memory = model.transform(table, seal=keys)
    _assert_same_records(
        model.inverse_transform(in_memory, keys=load_secret_context(keys)), expected
    )


def test_without_keys_decodes_public_only(
    model: FDS, table: pd.DataFrame, sealed_file: Path
) -> None:
    sealed = SealedLatents.load(sealed_file)
    public_only = model.inverse_transform(sealed, seed=0)  # keys drawn from the key prior
    expected = model.inverse_transform(model.transform(table, part="public"), seed=0)
    _assert_same_records(public_only, expected)
    swapped = np.roll(model.transform(table, part="private"), 1, axis=0)
    _assert_same_records(
        model.inverse_transform(sealed, private=swapped),
        model.inverse_transform(model.transform(table, part="public"), private=swapped),
    )


def test_sealing_needs_only_the_public_key(
    model: FDS, table: pd.DataFrame, keys: Path, tmp_path: Path
) -> None:
    public_only = tmp_path / "public_only"
    public_only.mkdir()
    (public_only / "public.ctx").write_bytes((keys / "public.ctx").read_bytes())
    sealed = model.transform(table.iloc[:50], seal=public_only)
    assert np.max(np.abs(sealed.private(keys) - model.transform(table.iloc[:50])[:, 2:])) <= 1e-3
    with pytest.raises(DataError, match="secret context"):
        sealed.private(public_only)


def test_file_holds_no_plaintext_of_the_private_block(
    model: FDS, table: pd.DataFrame, sealed_file: Path
) -> None:
    blob = sealed_file.read_bytes()
    private = model.transform(table, part="private")
    for row in private[:20]:
        assert row.tobytes() not in blob
        assert row.astype(np.float64).tobytes() not in blob
        assert f"{float(row[0]):.4f}".encode() not in blob
    public = model.transform(table, part="public")
    assert public.tobytes() in blob  # the public block is shared in the clear, as documented


def test_wrong_keys_are_refused(sealed_file: Path, other_keys: Path, model: FDS) -> None:
    sealed = SealedLatents.load(sealed_file)
    with pytest.raises(KeyMismatchError, match="encrypted under key"):
        sealed.private(other_keys)
    with pytest.raises(KeyMismatchError):
        model.inverse_transform(sealed, keys=other_keys)


@pytest.mark.parametrize("damage", ["flip", "cut_end", "cut_half", "cut_header", "append"])
def test_damaged_files_are_refused(sealed_file: Path, tmp_path: Path, damage: str) -> None:
    blob = bytearray(sealed_file.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x01
    cut = {"cut_end": len(blob) - 1, "cut_half": len(blob) // 2, "cut_header": 20}.get(damage)
    payload = bytes(blob[:cut]) if cut else bytes(blob) + (b"x" if damage == "append" else b"")
    bad = tmp_path / "bad.fdsz"
    bad.write_bytes(payload)
    with pytest.raises(DataError, match=r"truncated|altered|trailing"):
        SealedLatents.load(bad)


def test_a_flipped_public_value_is_detected(sealed_file: Path, tmp_path: Path) -> None:
    """The public block is in the clear, so the digest is what catches an edit of it."""
    blob = bytearray(sealed_file.read_bytes())
    (header_bytes,) = struct.unpack("<I", blob[7:11])  # after the magic
    blob[11 + header_bytes + 8 + 2] ^= 0x40  # the first public float, behind its u64 length
    bad = tmp_path / "edited.fdsz"
    bad.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="altered"):
        SealedLatents.load(bad)


def test_latents_of_another_model_are_refused(
    table: pd.DataFrame, sealed_file: Path, keys: Path
) -> None:
    other = FDS(preset="fds", sensitive=("sex",), seed=1, **SETTINGS).fit(table)
    with pytest.raises(DataError, match="sealed by another model"):
        other.inverse_transform(SealedLatents.load(sealed_file), keys=keys)


def test_misuse_is_a_data_error(model: FDS, table: pd.DataFrame, keys: Path) -> None:
    with pytest.raises(DataError, match="part='all'"):
        model.transform(table, part="public", seal=keys)
    with pytest.raises(DataError, match="sealed latents"):
        model.inverse_transform(model.transform(table), keys=keys)
    sealed = model.transform(table.iloc[:10], seal=keys)
    with pytest.raises(DataError, match="not both"):
        model.inverse_transform(sealed, private="prior", keys=keys)
    plain = FDS(preset="vae", **SETTINGS).fit(table)
    with pytest.raises(DataError, match="private block"):
        plain.transform(table, seal=keys)


def test_plain_readers_and_writers_name_the_sealed_file(sealed_file: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fds decode"):
        read_latents(sealed_file)
    with pytest.raises(DataError, match="--seal"):
        write_output(np.zeros((2, 2)), tmp_path / "z.fdsz")


# --------------------------------------------------------------------------- CLI
def test_cli_seal_and_open(run: Path, table: pd.DataFrame, keys: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    table.to_csv(data, index=False)
    shared = tmp_path / "shared.fdsz"
    sealed = fds(
        "encode", "--model", run, "--data", data, "--seal", keys, "--out", shared, "--json"
    )
    assert sealed.exit_code == 0, sealed.output
    summary = json.loads(sealed.stdout)
    key_id = json.loads((keys / "keys.json").read_text())["key_id"]
    assert summary["rows"] == len(table) and summary["key_id"] == key_id
    assert (summary["public_dim"], summary["private_dim"]) == (2, 2)
    assert summary["bytes"] == shared.stat().st_size

    plain = tmp_path / "z.npy"
    assert fds("encode", "--model", run, "--data", data, "--out", plain).exit_code == 0
    reference = tmp_path / "reference.csv"
    assert fds("decode", "--model", run, "--latents", plain, "--out", reference).exit_code == 0
    full = tmp_path / "full.csv"
    opened = fds(
        "decode", "--model", run, "--latents", shared, "--keys", keys, "--out", full, "--json"
    )
    assert opened.exit_code == 0, opened.output
    assert json.loads(opened.stdout) == {
        "out": str(full),
        "rows": len(table),
        "keyed": True,
        "key_id": key_id,
    }
    _assert_same_records(pd.read_csv(full), pd.read_csv(reference))

    public = tmp_path / "public.npy"
    args = ("--data", data, "--part", "public", "--out", public)
    assert fds("encode", "--model", run, *args).exit_code == 0
    hidden = tmp_path / "hidden.csv"
    args = ("--model", run, "--seed", "0")  # the same keys drawn from the key prior
    assert fds("decode", *args, "--latents", public, "--out", hidden).exit_code == 0
    public_only = tmp_path / "public_only.csv"
    result = fds("decode", *args, "--latents", shared, "--out", public_only, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["keyed"] is False
    _assert_same_records(pd.read_csv(public_only), pd.read_csv(hidden))


def test_cli_refusals_are_one_line_and_write_nothing(
    run: Path, sealed_file: Path, other_keys: Path, keys: Path, table: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "records.csv"
    decode = ("decode", "--model", run, "--out", out, "--latents")
    one_line_error(fds(*decode, sealed_file, "--keys", other_keys), "encrypted under key")
    truncated = tmp_path / "truncated.fdsz"
    truncated.write_bytes(sealed_file.read_bytes()[:-1000])
    one_line_error(fds(*decode, truncated, "--keys", keys), "truncated")
    tampered = tmp_path / "tampered.fdsz"
    blob = bytearray(sealed_file.read_bytes())
    blob[-5000] ^= 0xFF
    tampered.write_bytes(bytes(blob))
    one_line_error(fds(*decode, tampered, "--keys", keys), "altered")
    one_line_error(fds(*decode, tampered), "altered")  # without keys too
    other_run = tmp_path / "other"
    FDS(preset="fds", sensitive=("sex",), seed=2, **SETTINGS).fit(table).save(other_run)
    mismatch = fds("decode", "--model", other_run, "--latents", sealed_file, "--out", out)
    one_line_error(mismatch, "sealed by another model", str(sealed_file))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files

    data = tmp_path / "data.csv"
    table.iloc[:20].to_csv(data, index=False)
    existing = tmp_path / "existing.fdsz"
    existing.write_bytes(b"keep me")
    encode = ("encode", "--model", run, "--data", data, "--seal", keys, "--out")
    one_line_error(fds(*encode, existing), "exists")
    assert existing.read_bytes() == b"keep me"
    no_keys, new = tmp_path / "nokeys", tmp_path / "new.fdsz"
    no_keys.mkdir()
    sealing = fds("encode", "--model", run, "--data", data, "--seal", no_keys, "--out", new)
    one_line_error(sealing, "public context", "not found")
    assert not new.exists()


# --------------------------------------------------------------------------- inference
@pytest.mark.parametrize("block", ["all", "private"])
def test_a_probe_runs_on_the_sealed_key(
    model: FDS, table: pd.DataFrame, keys: Path, sealed_file: Path, block: str
) -> None:
    """A server holding a linear head and the public context scores the sealed latents (all of
    them, the public block encrypted beside the sealed one, or the key alone) without ever
    seeing the private block; the owner's decrypted scores equal the plaintext ones."""
    Z = model.transform(table, part=block)
    y = table["sex"].astype(str).to_numpy()
    head = LinearHead.from_sklearn(LogisticRegression(max_iter=1000).fit(Z, y))
    secret = load_secret_context(keys)
    with _serving(create_app(head)) as url:
        result = infer_remote(
            url,
            secret,
            SealedLatents.load(sealed_file),
            public_context=(keys / "public.ctx").read_bytes(),
        )
    assert np.max(np.abs(result["scores"] - head.scores(Z))) <= 1e-3
    assert np.mean(result["predictions"] == head.predict(Z)) >= 0.99


def test_cli_infer_remote_takes_the_sealed_file(
    model: FDS, table: pd.DataFrame, keys: Path, sealed_file: Path, tmp_path: Path
) -> None:
    Z = model.transform(table)
    y = table["sex"].astype(str).to_numpy()
    head = LinearHead.from_sklearn(LogisticRegression(max_iter=1000).fit(Z, y))
    out = tmp_path / "pred.csv"
    with _serving(create_app(head)) as url:
        args = ("--url", url, "--keys", keys, "--latents", sealed_file, "--out", out, "--json")
        result = fds("infer-remote", *args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == len(table)
    assert np.mean(pd.read_csv(out)["prediction"].to_numpy() == head.predict(Z)) >= 0.99
