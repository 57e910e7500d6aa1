"""The encrypted-inference service on 127.0.0.1: encrypted batches in, encrypted scores out,
predictions equal to plaintext ones, and a server that holds no secret key."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import tenseal as ts
import uvicorn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from fds.cli import app as cli_app
from fds.errors import DataError, KeyMismatchError
from fds.privacy.he import (
    EncryptedBatch,
    HEParams,
    LinearHead,
    create_context,
    encrypt_latents,
    key_id,
    load_secret_context,
    public_context_bytes,
    save_keys,
)
from fds.privacy.service import create_app, infer_remote

DIM, N_CLASSES, LIMIT = 16, 10, 8 << 20
OCTET = {"content-type": "application/octet-stream"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, N_CLASSES, size=600)
    centers = rng.normal(scale=2.0, size=(N_CLASSES, DIM))
    return centers[y] + rng.normal(size=(600, DIM)), y


@pytest.fixture(scope="module")
def head(data) -> LinearHead:
    Z, y = data
    labels = np.array([f"c{v}" for v in y])
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(Z, labels)
    return LinearHead.from_sklearn(pipe)


@contextlib.contextmanager
def _serving(service):
    """Run `service` with uvicorn on a free 127.0.0.1 port in a thread; yields its URL."""
    port = _free_port()
    # log_config=None: uvicorn keeps its loggers propagating, so caplog sees what it logs
    config = uvicorn.Config(
        service, host="127.0.0.1", port=port, log_level="warning", log_config=None
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(head):
    service = create_app(head, max_request_bytes=LIMIT)
    with _serving(service) as url:
        yield service, url


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("he") / "keys"
    params = HEParams()
    save_keys(create_context(params), out, params)
    return out


def test_remote_predictions_match_plaintext(server, keys, head, data) -> None:
    service, url = server
    Z, _ = data
    secret = load_secret_context(keys)
    public = (keys / "public.ctx").read_bytes()
    result = infer_remote(url, secret, Z, public_context=public)
    assert result["scores"].shape == (len(Z), N_CLASSES)
    assert np.max(np.abs(result["scores"] - head.scores(Z))) <= 1e-3
    assert np.mean(result["predictions"] == head.predict(Z)) >= 0.999
    assert result["batches"] == 1
    assert result["bytes_sent"] > (keys / "public.ctx").stat().st_size
    assert len(service.state.registry) == 0  # the client freed its registration
    # the server side holds public contexts only: it cannot decrypt
    reply = httpx.post(f"{url}/v1/contexts", content=public, headers=OCTET, timeout=60)
    assert reply.status_code == 201
    (registration,) = service.state.registry.registrations()
    ctx = registration.context
    assert not ctx.has_secret_key()
    (batch,) = encrypt_latents(ctx, Z[:3])
    with pytest.raises(ValueError, match="secret"):
        service.state.head.evaluate(batch).vectors[0].decrypt()
    token = {"authorization": f"Bearer {reply.json()['token']}"}
    assert httpx.delete(f"{url}/v1/contexts", headers=token, timeout=60).status_code == 204


def test_hostile_requests_leave_no_traceback_in_the_log(server, keys, data, caplog) -> None:
    """Over a real socket: each hostile request gets its 4xx and the server logs no traceback."""
    _, url = server
    Z, _ = data
    secret = load_secret_context(keys)
    caplog.set_level(logging.DEBUG)
    with httpx.Client(base_url=url, timeout=60) as client:
        registered = client.post(
            "/v1/contexts", content=(keys / "public.ctx").read_bytes(), headers=OCTET
        )
        auth = {**OCTET, "authorization": f"Bearer {registered.json()['token']}"}
        unequal = EncryptedBatch(
            "latents",
            5,
            key_id(secret),
            [ts.ckks_vector(secret, Z[: 5 - (j % 2), j]) for j in range(DIM)],
        )
        bfv = ts.context(ts.SCHEME_TYPE.BFV, 4096, plain_modulus=1032193)
        hostile = [
            ("/v1/contexts", secret.serialize(save_secret_key=True), OCTET, 400),
            ("/v1/contexts", bfv.serialize(save_secret_key=False), OCTET, 400),
            ("/v1/contexts", b"junk", OCTET, 400),
            ("/v1/infer", unequal.to_bytes(), auth, 400),
            ("/v1/infer", b"junk", auth, 400),
            ("/v1/infer", b"", auth, 400),
            ("/v1/infer", b"junk", {**auth, "content-type": "text/plain"}, 415),
            ("/v1/infer", b"junk", OCTET, 401),
            ("/v1/infer", b"junk", {**OCTET, "authorization": "Bearer nope"}, 403),
            ("/v1/infer", b"x" * (LIMIT + 1), auth, 413),
        ]
        for path, body, headers, status in hostile:
            reply = client.post(path, content=body, headers=headers)
            assert reply.status_code == status, (path, reply.text)
            assert isinstance(reply.json()["detail"], str)
        client.delete("/v1/contexts", headers=auth)
    logged = [r for r in caplog.records if r.name.startswith(("uvicorn", "fds"))]
    assert not [r for r in logged if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text


def test_client_errors_are_clear(server, keys, data) -> None:
    _, url = server
    Z, _ = data
    secret = load_secret_context(keys)
    other = create_context(HEParams())
    with pytest.raises(KeyMismatchError, match="same `fds keys new`"):
        infer_remote(url, secret, Z[:5], public_context=public_context_bytes(other))
    with pytest.raises(DataError, match="expects 16 features"):
        infer_remote(url, secret, Z[:5, :3], public_context=(keys / "public.ctx").read_bytes())
    with pytest.raises(DataError, match="cannot reach"):
        infer_remote(
            f"http://127.0.0.1:{_free_port()}",
            secret,
            Z[:5],
            public_context=(keys / "public.ctx").read_bytes(),
            timeout=5,
        )


def test_cli_infer_remote(server, keys, head, data, tmp_path: Path) -> None:
    _, url = server
    Z, _ = data
    np.save(tmp_path / "z.npy", Z.astype(np.float32))
    out = tmp_path / "pred.csv"
    args = ["infer-remote", "--url", url, "--keys", str(keys), "--latents", str(tmp_path / "z.npy")]
    result = CliRunner().invoke(cli_app, [*args, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == len(Z) and summary["batches"] == 1
    table = pd.read_csv(out)
    assert list(table.columns) == ["prediction", *[f"score_{k}" for k in range(N_CLASSES)]]
    expected = head.predict(Z.astype(np.float32))
    assert np.mean(table["prediction"].to_numpy() == expected) >= 0.999
    again = CliRunner().invoke(cli_app, [*args, "--out", str(out)])
    assert again.exit_code == 2


@pytest.mark.slow
def test_fds_serve_runs_a_saved_probe_end_to_end(tmp_path: Path, keys: Path) -> None:
    """`fds serve --model RUN --probe NAME` in its own process; `fds infer-remote --model --data`
    predicts what `fds probe apply` predicts in the clear."""
    import subprocess
    import sys

    from fds.data.datasets import make_census

    runner = CliRunner()
    make_census(n=300, seed=0).to_csv(tmp_path / "census.csv", index=False)
    (tmp_path / "fast.yaml").write_text("latent_dim: 3\nhidden_dims: [32]\nepochs: 2\n")
    run, csv = tmp_path / "run", str(tmp_path / "census.csv")
    trained = runner.invoke(
        cli_app,
        ["train", "--data", csv, "--config", str(tmp_path / "fast.yaml"), "--out", str(run), "-q"],
    )
    assert trained.exit_code == 0, trained.output
    probe = ["probe", "run", "--model", str(run), "--data", csv, "--target", "high_income"]
    saved = runner.invoke(cli_app, [*probe, "--heads", "logistic", "--save", "income"])
    assert saved.exit_code == 0, saved.output
    port = _free_port()
    serve = [sys.executable, "-m", "fds.cli", "serve", "--model", str(run), "--probe", "income"]
    process = subprocess.Popen(
        [*serve, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/head", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "fds serve did not start"
            time.sleep(0.2)
        out = tmp_path / "pred.csv"
        remote_args = ["infer-remote", "--url", f"http://127.0.0.1:{port}", "--keys", str(keys)]
        remote = runner.invoke(
            cli_app,
            [*remote_args, "--model", str(run), "--data", csv, "--out", str(out), "--json"],
        )
        assert remote.exit_code == 0, remote.output
    finally:
        process.terminate()
        process.wait(timeout=10)
    plain = tmp_path / "plain.csv"
    applied = runner.invoke(
        cli_app,
        [
            "probe",
            "apply",
            "--model",
            str(run),
            "--probe",
            "income",
            "--data",
            csv,
            "--out",
            str(plain),
        ],
    )
    assert applied.exit_code == 0, applied.output
    encrypted, clear = pd.read_csv(out)["prediction"], pd.read_csv(plain)["prediction"]
    assert np.mean(encrypted.to_numpy() == clear.to_numpy()) >= 0.999


@pytest.mark.slow
def test_service_runs_a_polynomial_mlp_head(data) -> None:
    from sklearn.neural_network import MLPClassifier

    from fds.privacy.he import EncryptedBatch as Batch
    from fds.privacy.he import PolyMLPHead, decrypt_scores

    Z, y = data
    pipe = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=1000, random_state=0)
    ).fit(Z, y)
    head = PolyMLPHead.from_sklearn_mlp(pipe, Z)
    deep = create_context(HEParams.for_depth(3))
    shallow = create_context(HEParams())
    with _serving(create_app(head)) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/v1/head").json()["kind"] == "poly_mlp"
        tokens = {}
        for ctx in (deep, shallow):
            relin = ctx is deep
            blob = public_context_bytes(ctx, relin_keys=relin)
            reply = client.post("/v1/contexts", content=blob, headers=OCTET)
            assert reply.status_code == 201
            tokens[relin] = {**OCTET, "authorization": f"Bearer {reply.json()['token']}"}
        (batch,) = encrypt_latents(deep, Z[:100])
        reply = client.post("/v1/infer", content=batch.to_bytes(), headers=tokens[True])
        assert reply.status_code == 200
        scores = decrypt_scores(deep, Batch.from_bytes(reply.content, deep, kind="scores"))
        assert np.max(np.abs(scores - head.scores(Z[:100]))) <= 1e-3
        (too_shallow,) = encrypt_latents(shallow, Z[:5])
        refused = client.post("/v1/infer", content=too_shallow.to_bytes(), headers=tokens[False])
        assert refused.status_code == 422
        assert "depth 3" in refused.json()["detail"]


def test_a_fusion_models_saved_probe_is_served_on_its_encrypted_fused_codes(
    tmp_path: Path, keys: Path
) -> None:
    """Probes and `fds serve` work on the fused code unchanged: the head of a fusion model's
    saved probe scores CKKS-encrypted codes fused from a subset of modalities as it scores them
    in the clear."""
    from fds import FDS
    from fds.data.datasets.shapes_mm import make_shapes_mm
    from fds.privacy.he import head_from_probe
    from fds.workflows.probe import load_model_probe

    X, _ = make_shapes_mm(64, seed=0)
    model = FDS(hidden_dims=(8,), latent_dim=3, epochs=1, batch_size=16, verbose=False).fit(X)
    model_dir = model.save(tmp_path / "model")
    probe = ["probe", "run", "--model", str(model_dir), "--data", "shapes-mm"]
    saved = CliRunner().invoke(
        cli_app, [*probe, "--target", "factor:shape", "--heads", "logistic", "--save", "shape"]
    )
    assert saved.exit_code == 0, saved.output
    head = head_from_probe(load_model_probe(model_dir, "shape"))
    Z = model.transform(X, modalities=["image", "text"])
    with _serving(create_app(head, max_request_bytes=LIMIT)) as url:
        public = (keys / "public.ctx").read_bytes()
        result = infer_remote(url, load_secret_context(keys), Z, public_context=public)
    assert np.max(np.abs(result["scores"] - head.scores(Z))) <= 1e-3
    assert np.mean(result["predictions"] == head.predict(Z)) >= 0.999
