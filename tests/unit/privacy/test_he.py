"""CKKS encrypted inference (fds.privacy.he): encrypted scores match plaintext ones, the server's
context cannot decrypt, ciphertexts round-trip, and a wrong key is an error, never silent garbage."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest
import tenseal as ts
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from fds.cli import app
from fds.errors import ConfigError, DataError, KeyMismatchError
from fds.evaluation.probes import FittedProbe
from fds.privacy.he import (
    EncryptedBatch,
    HEParams,
    LinearHead,
    PolyMLPHead,
    available_depth,
    context_params,
    create_context,
    decrypt_records,
    decrypt_scores,
    encrypt_latents,
    encrypt_records,
    head_from_dict,
    head_from_probe,
    key_id,
    load_keys_info,
    load_public_context,
    load_secret_context,
    public_context_bytes,
    save_keys,
)
from fds.probefiles import read_probe, write_probe

N_RECORDS, DIM, N_CLASSES = 400, 16, 10


@pytest.fixture(scope="module")
def ctx() -> ts.Context:
    return create_context(HEParams())


@pytest.fixture(scope="module")
def public(ctx: ts.Context) -> ts.Context:
    return load_public_context(public_context_bytes(ctx))


@pytest.fixture(scope="module")
def latents() -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 16-d latents with 10 classes (Gaussian blobs)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, N_CLASSES, size=N_RECORDS)
    centers = rng.normal(scale=2.0, size=(N_CLASSES, DIM))
    return centers[y] + rng.normal(size=(N_RECORDS, DIM)), y


@pytest.fixture(scope="module")
def head(latents: tuple[np.ndarray, np.ndarray]) -> LinearHead:
    Z, y = latents
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Z, y)
    return LinearHead.from_sklearn(pipe)


def _server_scores(ctx: ts.Context, public: ts.Context, head: LinearHead, Z: np.ndarray):
    """Owner encrypts → bytes → server (public context) computes → bytes → owner decrypts."""
    replies = []
    for batch in encrypt_latents(ctx, Z):
        received = EncryptedBatch.from_bytes(batch.to_bytes(), public, kind="latents")
        replies.append(head.evaluate(received).to_bytes())
    return decrypt_scores(ctx, [EncryptedBatch.from_bytes(r, ctx, kind="scores") for r in replies])


def test_encrypted_predictions_match_plaintext(ctx, public, head, latents) -> None:
    Z, _ = latents
    scores = _server_scores(ctx, public, head, Z)
    assert scores.shape == (N_RECORDS, N_CLASSES)
    assert np.max(np.abs(scores - head.scores(Z))) <= 1e-3
    agreement = np.mean(head.predict_from_scores(scores) == head.predict(Z))
    assert agreement >= 0.999


def test_more_records_than_slots_span_several_batches(ctx, public) -> None:
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(4096 + 7, 4))
    linear = LinearHead(rng.normal(size=(4, 3)), rng.normal(size=3), classes=["a", "b", "c"])
    batches = encrypt_latents(ctx, Z)
    assert [b.n_records for b in batches] == [4096, 7]
    assert all(b.width == 4 for b in batches)
    scores = _server_scores(ctx, public, linear, Z)
    assert np.max(np.abs(scores - linear.scores(Z))) <= 1e-3
    assert np.mean(linear.predict_from_scores(scores) == linear.predict(Z)) >= 0.999


def test_linear_head_folds_the_scaler_and_matches_sklearn(latents) -> None:
    Z, y = latents
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Z, y)
    linear = LinearHead.from_sklearn(pipe)
    np.testing.assert_allclose(linear.scores(Z), pipe.decision_function(Z), atol=1e-9)
    assert np.array_equal(linear.predict(Z), pipe.predict(Z))
    # binary: one score, its sign picks the class
    yb = np.where(y < 5, "low", "high")
    binary = make_pipeline(StandardScaler(), LogisticRegression()).fit(Z, yb)
    lb = LinearHead.from_sklearn(binary)
    assert lb.n_outputs == 1
    assert np.array_equal(lb.predict(Z), binary.predict(Z))
    # ridge regression: raw outputs
    target = Z @ np.arange(DIM) + 1.0
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(Z, target)
    lr = LinearHead.from_sklearn(ridge)
    assert lr.classes is None
    np.testing.assert_allclose(lr.predict(Z), ridge.predict(Z), atol=1e-8)


def test_binary_and_ridge_heads_run_encrypted(ctx, public, latents) -> None:
    Z, y = latents
    binary = LinearHead.from_sklearn(LogisticRegression().fit(Z, y % 2 == 0))
    scores = _server_scores(ctx, public, binary, Z)
    assert np.mean(binary.predict_from_scores(scores) == binary.predict(Z)) >= 0.999
    ridge = LinearHead.from_sklearn(Ridge().fit(Z, Z[:, 0] - 2 * Z[:, 1]))
    pred = ridge.predict_from_scores(_server_scores(ctx, public, ridge, Z))
    assert np.max(np.abs(pred - ridge.predict(Z))) <= 1e-3


def test_linear_head_from_a_saved_probe(tmp_path: Path, latents, ctx, public) -> None:
    Z, y = latents
    labels = np.array([f"class-{v}" for v in y])
    probe = FittedProbe.fit(Z, labels, head="logistic", task="classification")
    write_probe(probe, tmp_path, "risk")
    loaded = FittedProbe.from_saved(read_probe(tmp_path, "risk"))
    linear = LinearHead.from_probe(loaded)
    assert np.array_equal(linear.predict(Z), loaded.predict(Z))
    scores = _server_scores(ctx, public, linear, Z)
    assert np.mean(linear.predict_from_scores(scores) == loaded.predict(Z)) >= 0.999
    knn = FittedProbe.fit(Z, labels, head="knn", task="classification")
    with pytest.raises(ConfigError, match="no encrypted form"):
        LinearHead.from_probe(knn)


def test_linear_head_rejects_non_linear_steps(latents) -> None:
    from sklearn.decomposition import PCA

    Z, y = latents
    with pytest.raises(ConfigError, match="PCA"):
        LinearHead.from_sklearn(make_pipeline(PCA(4), LogisticRegression()).fit(Z, y))
    with pytest.raises(ConfigError, match="no coef_"):
        LinearHead.from_sklearn(StandardScaler().fit(Z))
    head = LinearHead(np.ones((3, 2)), np.zeros(2), classes=[0, 1])
    assert LinearHead.from_dict(json.loads(json.dumps(head.to_dict()))).W.shape == (3, 2)
    with pytest.raises(DataError, match="expected 3"):
        head.scores(np.ones((2, 4)))


def test_public_context_cannot_decrypt(ctx, public, head, latents) -> None:
    assert not public.has_secret_key()
    assert public.is_public()
    Z, _ = latents
    (batch,) = encrypt_latents(public, Z[:10])  # the public key can encrypt…
    out = head.evaluate(batch)
    with pytest.raises(DataError, match="secret context"):
        decrypt_scores(public, out)  # …but not decrypt
    with pytest.raises(ValueError, match="secret"):
        out.vectors[0].decrypt()  # TenSEAL itself refuses too
    # the owner can decrypt what was encrypted with the public key
    np.testing.assert_allclose(decrypt_scores(ctx, out), head.scores(Z[:10]), atol=1e-3)


def test_public_context_refuses_secret_material(ctx) -> None:
    with pytest.raises(DataError, match="secret key"):
        load_public_context(ctx.serialize(save_secret_key=True))
    with pytest.raises(DataError, match="not a TenSEAL context"):
        load_public_context(b"not a context")


def test_ciphertexts_round_trip_through_bytes(ctx, latents) -> None:
    Z, _ = latents
    (batch,) = encrypt_latents(ctx, Z)
    data = batch.to_bytes()
    again = EncryptedBatch.from_bytes(data, ctx)
    assert (again.kind, again.n_records, again.width) == ("latents", N_RECORDS, DIM)
    columns = np.stack([v.decrypt() for v in again.vectors], axis=1)
    assert np.max(np.abs(columns - Z)) <= 1e-6
    assert again.to_bytes() == data
    with pytest.raises(DataError, match="expected an encrypted batch of scores"):
        EncryptedBatch.from_bytes(data, ctx, kind="scores")


def test_malformed_batches_are_data_errors(ctx, latents) -> None:
    Z, _ = latents
    (batch,) = encrypt_latents(ctx, Z[:5])
    data = batch.to_bytes()
    with pytest.raises(DataError, match="bad magic"):
        EncryptedBatch.from_bytes(b"garbage" + data, ctx)
    with pytest.raises(DataError, match="length does not match"):
        EncryptedBatch.from_bytes(data[:-10], ctx)
    # same length, corrupted ciphertext body
    corrupt = bytearray(data)
    header_end = len(data) - sum(len(v.serialize()) for v in batch.vectors)
    corrupt[header_end : header_end + 64] = b"\x00" * 64
    with pytest.raises(DataError, match="malformed ciphertext"):
        EncryptedBatch.from_bytes(bytes(corrupt), ctx)


def test_ciphertexts_from_another_key_are_refused(ctx, public, head, latents) -> None:
    Z, _ = latents
    other = create_context(HEParams())
    assert key_id(other) != key_id(ctx)
    assert key_id(public) == key_id(ctx)
    (batch,) = encrypt_latents(other, Z[:20])
    with pytest.raises(KeyMismatchError, match="encrypted under key"):
        EncryptedBatch.from_bytes(batch.to_bytes(), public)
    scores = head.evaluate(EncryptedBatch.from_bytes(batch.to_bytes(), other))
    with pytest.raises(KeyMismatchError):
        EncryptedBatch.from_bytes(scores.to_bytes(), ctx)
    with pytest.raises(KeyMismatchError):
        decrypt_scores(ctx, scores)


def test_per_record_path_needs_galois_keys_and_agrees(ctx, head, latents) -> None:
    Z, _ = latents
    with pytest.raises(ConfigError, match="Galois"):
        head.evaluate_records(encrypt_records(ctx, Z[:2]))
    rotating = create_context(HEParams(galois_keys=True))
    outs = head.evaluate_records(encrypt_records(rotating, Z[:8]))
    scores = decrypt_records(rotating, outs)
    assert np.max(np.abs(scores - head.scores(Z[:8]))) <= 1e-3


def test_parameters_fit_the_depth_within_128_bit_security() -> None:
    assert context_params(8192, 1) == [60, 40, 60]
    assert context_params(8192, 2) == [60, 40, 40, 60]
    assert sum(context_params(16384, 5)) <= 438
    with pytest.raises(ConfigError, match="--poly-modulus 16384"):
        context_params(8192, 3)
    with pytest.raises(ConfigError, match="not supported"):
        HEParams(poly_modulus_degree=1000)
    with pytest.raises(ConfigError, match="depth"):
        HEParams(depth=0)
    assert HEParams(depth=2).relin_keys and not HEParams().relin_keys


def test_save_keys_writes_secret_and_public_separately(tmp_path: Path, latents, head) -> None:
    params = HEParams()
    ctx = create_context(params)
    info = save_keys(ctx, tmp_path / "keys", params)
    keys = tmp_path / "keys"
    assert sorted(p.name for p in keys.iterdir()) == ["keys.json", "public.ctx", "secret.ctx"]
    assert stat.S_IMODE((keys / "secret.ctx").stat().st_mode) == 0o600
    public = load_public_context(keys / "public.ctx")
    assert not public.has_secret_key()
    assert not public.has_galois_keys()
    secret = load_secret_context(keys)
    assert secret.has_secret_key()
    assert key_id(secret) == key_id(public) == info["key_id"] == load_keys_info(keys)["key_id"]
    assert load_keys_info(keys)["coeff_mod_bit_sizes"] == [60, 40, 60]
    assert info["public_context_bytes"] == (keys / "public.ctx").stat().st_size
    # the saved secret context encrypts and decrypts what the saved public one computed
    Z, _ = latents
    scores = _server_scores(secret, public, head, Z[:50])
    assert np.max(np.abs(scores - head.scores(Z[:50]))) <= 1e-3
    with pytest.raises(DataError, match="no secret key"):
        load_secret_context(keys / "public.ctx")
    before = (keys / "secret.ctx").read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        save_keys(create_context(params), keys, params)
    assert (keys / "secret.ctx").read_bytes() == before
    assert not [p for p in keys.iterdir() if p.name.startswith(".")]


def test_cli_keys_new(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "keys"
    result = runner.invoke(app, ["keys", "new", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["poly_modulus_degree"] == 8192
    assert summary["coeff_mod_bit_sizes"] == [60, 40, 60]
    assert summary["security_bits"] == 128
    assert summary["public_context_bytes"] == (out / "public.ctx").stat().st_size
    assert not load_public_context(out / "public.ctx").has_secret_key()
    again = runner.invoke(app, ["keys", "new", "--out", str(out)])
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output
    deep = ["keys", "new", "--out", str(tmp_path / "deep"), "--depth", "3"]
    bad = runner.invoke(app, [*deep, "--poly-modulus", "8192"])
    assert bad.exit_code == 2
    assert "--poly-modulus 16384" in bad.output
    assert not (tmp_path / "deep").exists()
    good = runner.invoke(app, [*deep, "--json"])
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["poly_modulus_degree"] == 16384
    public = load_public_context(tmp_path / "deep" / "public.ctx")
    assert public.has_relin_keys() and not public.has_secret_key()
    assert available_depth(public) == 3


# --------------------------------------------------------------------------- polynomial MLP head
@pytest.fixture(scope="module")
def mlp_setup(latents):
    from sklearn.neural_network import MLPClassifier

    Z, y = latents
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=1000, random_state=0)
    ).fit(Z[:300], y[:300])
    return pipe, PolyMLPHead.from_sklearn_mlp(pipe, Z[:300])


@pytest.fixture(scope="module")
def deep_ctx() -> ts.Context:
    params = HEParams.for_depth(3)
    assert params.poly_modulus_degree == 16384
    assert params.coeff_mod_bit_sizes == (60, 40, 40, 40, 60)
    return create_context(params)


def test_poly_mlp_head_is_the_folded_polynomial_network(mlp_setup, latents) -> None:
    pipe, head = mlp_setup
    Z, y = latents
    scaler, mlp = pipe[0], pipe[-1]
    c2, c1, c0 = head.approximation["coefficients"]
    pre = scaler.transform(Z) @ mlp.coefs_[0] + mlp.intercepts_[0]
    expected = (c2 * pre**2 + c1 * pre + c0) @ mlp.coefs_[1] + mlp.intercepts_[1]
    np.testing.assert_allclose(head.scores(Z), expected, atol=1e-8)
    report = head.approximation_report(pipe, Z[300:], y[300:])
    assert report["activation"] == "relu" and report["fit_rmse"] > 0
    assert report["prediction_agreement"] >= 0.9
    assert abs(report["accuracy_loss"]) <= 0.1
    assert report["accuracy_loss"] == report["exact_accuracy"] - report["poly_accuracy"]


@pytest.mark.slow
def test_poly_mlp_head_runs_encrypted(deep_ctx, mlp_setup, latents) -> None:
    _, head = mlp_setup
    Z, _ = latents
    public = load_public_context(public_context_bytes(deep_ctx, relin_keys=True))
    assert not public.has_secret_key() and public.has_relin_keys()
    scores = _server_scores(deep_ctx, public, head, Z)
    assert np.max(np.abs(scores - head.scores(Z))) <= 1e-3
    assert np.mean(head.predict_from_scores(scores) == head.predict(Z)) >= 0.999
    # a context too shallow, or without relinearization keys, is a clear error
    (shallow,) = encrypt_latents(ctx_depth1 := create_context(HEParams()), Z[:4])
    with pytest.raises(ConfigError, match="depth 3"):
        head.evaluate(shallow)
    assert available_depth(ctx_depth1) == 1
    no_relin = load_public_context(public_context_bytes(deep_ctx, relin_keys=False))
    (batch,) = encrypt_latents(no_relin, Z[:4])
    with pytest.raises(ConfigError, match="relinearization"):
        head.evaluate(batch)


def test_poly_mlp_head_from_a_saved_probe(tmp_path: Path, latents) -> None:
    Z, y = latents
    labels = np.array([f"class-{v}" for v in y])
    write_probe(FittedProbe.fit(Z, labels, head="mlp", task="classification"), tmp_path, "deep")
    probe = FittedProbe.from_saved(read_probe(tmp_path, "deep"))
    head = head_from_probe(probe)
    assert isinstance(head, PolyMLPHead)
    assert set(head.classes) == set(labels)
    assert {"prediction_agreement", "accuracy_loss", "fit_rmse"} <= set(head.approximation)
    assert np.mean(head.predict(Z) == probe.predict(Z)) >= 0.8
    again = head_from_dict(json.loads(json.dumps(head.to_dict())))
    np.testing.assert_allclose(again.scores(Z), head.scores(Z))
    assert isinstance(head_from_probe(FittedProbe.fit(Z, labels, head="logistic")), LinearHead)
