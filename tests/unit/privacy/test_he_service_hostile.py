"""The encrypted-inference service under misuse: every malformed request is a 4xx with a one-line
JSON reason, a context is usable only with its registration's token, and no client can evict
another's context (capacity is refused with 429 instead)."""

from __future__ import annotations

import json
import logging
import struct
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import tenseal as ts
from starlette.exceptions import StarletteDeprecationWarning

from fds.errors import DataError
from fds.privacy.context_registry import CapacityError, ContextRegistry
from fds.privacy.he import (
    EncryptedBatch,
    HEParams,
    LinearHead,
    create_context,
    decrypt_scores,
    encrypt_latents,
    key_id,
    public_context_bytes,
)
from fds.privacy.service import create_app, infer_remote

with warnings.catch_warnings():  # it warns that it runs on httpx, not httpx2: irrelevant here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

DIM, LIMIT = 4, 2 << 20
OCTET = {"content-type": "application/octet-stream"}


@pytest.fixture(scope="module")
def head() -> LinearHead:
    rng = np.random.default_rng(0)
    return LinearHead(rng.normal(size=(DIM, 3)), rng.normal(size=3), classes=["a", "b", "c"])


@pytest.fixture(scope="module")
def owner() -> ts.Context:
    return create_context(HEParams())


@pytest.fixture(scope="module")
def intruder() -> ts.Context:
    return create_context(HEParams())


@pytest.fixture(scope="module")
def Z() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(6, DIM))


@pytest.fixture(scope="module")
def batch_bytes(owner, Z) -> bytes:
    (batch,) = encrypt_latents(owner, Z)
    return batch.to_bytes()


def _client(app, address: str = "10.0.0.1") -> TestClient:
    return TestClient(app, client=(address, 40000))


def _register(client: TestClient, ctx: ts.Context) -> str:
    reply = client.post("/v1/contexts", content=public_context_bytes(ctx), headers=OCTET)
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def _auth(token: str) -> dict[str, str]:
    return {**OCTET, "authorization": f"Bearer {token}"}


def _assert_refused(reply, status: int, match: str = "") -> None:
    """A refusal: the status, one line of JSON whose `detail` is a one-line string."""
    assert reply.status_code == status, reply.text
    assert "\n" not in reply.text.strip()
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "Traceback" not in detail
    assert match.lower() in detail.lower(), detail


@pytest.fixture
def server_log(caplog) -> Callable[[], list[logging.LogRecord]]:
    """The records the service and uvicorn log during a test."""
    caplog.set_level(logging.DEBUG)
    return lambda: [r for r in caplog.records if r.name.startswith(("fds", "uvicorn"))]


# --------------------------------------------------------------------------- tokens


def test_a_registration_returns_a_token_only_its_holder_can_use(
    head, owner, Z, batch_bytes
) -> None:
    with _client(create_app(head)) as client:
        reply = client.post("/v1/contexts", content=public_context_bytes(owner), headers=OCTET)
        assert reply.status_code == 201
        body = reply.json()
        assert body["key_id"] == key_id(owner) and body["ttl_seconds"] > 0
        token = body["token"]
        assert len(token) >= 40 and token != _register(client, owner)  # random per registration

        _assert_refused(client.post("/v1/infer", content=batch_bytes, headers=OCTET), 401, "token")
        assert (
            client.post("/v1/infer", content=batch_bytes, headers=OCTET).headers["www-authenticate"]
            == "Bearer"
        )
        basic = {**OCTET, "authorization": f"Basic {token}"}
        _assert_refused(client.post("/v1/infer", content=batch_bytes, headers=basic), 401)
        forged = _auth(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
        _assert_refused(client.post("/v1/infer", content=batch_bytes, headers=forged), 403)

        ok = client.post("/v1/infer", content=batch_bytes, headers=_auth(token))
        assert ok.status_code == 200
        scores = decrypt_scores(owner, EncryptedBatch.from_bytes(ok.content, owner, kind="scores"))
        assert np.max(np.abs(scores - head.scores(Z))) <= 1e-3

        assert client.delete("/v1/contexts", headers=_auth(token)).status_code == 204
        _assert_refused(client.post("/v1/infer", content=batch_bytes, headers=_auth(token)), 403)


def test_another_client_cannot_use_replace_or_delete_the_owners_context(
    head, owner, intruder, Z, batch_bytes
) -> None:
    app = create_app(head)
    with _client(app, "10.0.0.1") as alice, _client(app, "10.0.0.2") as mallory:
        token = _register(alice, owner)
        theirs = _register(mallory, intruder)
        # their own token does not reach the owner's context
        _assert_refused(
            mallory.post("/v1/infer", content=batch_bytes, headers=_auth(theirs)), 409, "key"
        )
        # a guessed token can neither replace nor delete it
        guessed = _auth("x" * 43)
        replace = mallory.post(
            "/v1/contexts", content=public_context_bytes(intruder), headers=guessed
        )
        _assert_refused(replace, 403)
        _assert_refused(mallory.delete("/v1/contexts", headers=guessed), 403)
        assert alice.post("/v1/infer", content=batch_bytes, headers=_auth(token)).status_code == 200

        # the holder replaces its context (same token, new key)
        again = alice.post(
            "/v1/contexts", content=public_context_bytes(intruder), headers=_auth(token)
        )
        assert again.status_code == 200 and again.json()["token"] == token
        assert again.json()["key_id"] == key_id(intruder)
        _assert_refused(alice.post("/v1/infer", content=batch_bytes, headers=_auth(token)), 409)


# --------------------------------------------------------------------------- capacity


def test_capacity_is_refused_with_429_and_never_evicts_the_owner(
    head, owner, intruder, batch_bytes
) -> None:
    app = create_app(head, max_contexts=3, max_contexts_per_client=2, context_ttl=600)
    public = public_context_bytes(intruder)
    with (
        _client(app, "10.0.0.1") as alice,
        _client(app, "10.0.0.2") as mallory,
        _client(app, "10.0.0.3") as carol,
    ):
        token = _register(alice, owner)
        _register(mallory, intruder)
        _register(mallory, intruder)
        per_client = mallory.post("/v1/contexts", content=public, headers=OCTET)
        _assert_refused(per_client, 429, "per-client")
        assert 1 <= int(per_client.headers["retry-after"]) <= 600
        server_full = carol.post("/v1/contexts", content=public, headers=OCTET)
        _assert_refused(server_full, 429, "server holds 3")
        # many more attempts from many addresses: the owner is still served
        for k in range(20):
            with _client(app, f"10.0.1.{k}") as other:
                assert other.post("/v1/contexts", content=public, headers=OCTET).status_code == 429
        assert alice.post("/v1/infer", content=batch_bytes, headers=_auth(token)).status_code == 200
        assert len(app.state.registry) == 3
        # the owner frees its slot: room for one more
        assert alice.delete("/v1/contexts", headers=_auth(token)).status_code == 204
        assert carol.post("/v1/contexts", content=public, headers=OCTET).status_code == 201


def test_idle_registrations_expire_and_only_they_are_freed() -> None:
    now = [0.0]
    registry = ContextRegistry(max_total=2, max_per_client=2, ttl=10.0, clock=lambda: now[0])
    busy = registry.register("ctx-busy", "k1", "10.0.0.1")
    now[0] = 5.0
    idle = registry.register("ctx-idle", "k2", "10.0.0.2")
    with pytest.raises(CapacityError) as full:
        registry.register("ctx-new", "k3", "10.0.0.3")
    assert full.value.retry_after == 5  # the busy one would expire first, at t = 10
    now[0] = 9.0
    assert registry.get(busy).context == "ctx-busy"  # used: its idle clock restarts
    now[0] = 15.0
    assert registry.get(idle) is None  # idle for 10 s: expired
    assert registry.get(busy) is not None  # used 6 s ago: live
    assert registry.register("ctx-new", "k3", "10.0.0.3")
    with pytest.raises(CapacityError):  # full again, and nothing live was evicted
        registry.register("ctx-more", "k4", "10.0.0.4")
    assert sorted(r.key_id for r in registry.registrations()) == ["k1", "k3"]


def test_an_expired_token_is_refused_over_http(head, owner, batch_bytes) -> None:
    app = create_app(head)
    with _client(app) as client:
        token = _register(client, owner)
        for registration in app.state.registry.registrations():
            registration.last_used -= app.state.registry.ttl
        _assert_refused(
            client.post("/v1/infer", content=batch_bytes, headers=_auth(token)), 403, "expired"
        )


def test_the_client_sends_the_token_and_frees_its_registration(head, owner, Z) -> None:
    app = create_app(head, max_contexts=1)
    with _client(app) as client:
        public = public_context_bytes(owner)
        result = infer_remote("http://testserver", owner, Z, public_context=public, client=client)
        assert np.array_equal(result["predictions"], head.predict(Z))
        assert len(app.state.registry) == 0  # its slot was freed
        _register(client, owner)  # the server is now full
        with pytest.raises(DataError, match="429"):
            infer_remote("http://testserver", owner, Z, public_context=public, client=client)


# --------------------------------------------------------------------------- malformed input


def _repack(data: bytes, **changes) -> bytes:
    """`data` (a serialized batch) with its JSON header fields changed."""
    magic = data[: data.index(b"\n") + 1]
    (n,) = struct.unpack("<I", data[len(magic) : len(magic) + 4])
    header = json.loads(data[len(magic) + 4 : len(magic) + 4 + n])
    header.update(changes)
    raw = json.dumps(header).encode()
    return magic + struct.pack("<I", len(raw)) + raw + data[len(magic) + 4 + n :]


def _batch(owner: ts.Context, vectors: list, n_records: int) -> bytes:
    return EncryptedBatch("latents", n_records, key_id(owner), vectors).to_bytes()


# case: (payload from the owner's context, latents and a good batch; what the refusal names)
MALFORMED: dict[str, tuple[Callable[[ts.Context, np.ndarray, bytes], bytes], str]] = {
    "unequal slot counts": (
        lambda o, z, b: _batch(o, [ts.ckks_vector(o, z[: 6 - (j % 2), j]) for j in range(DIM)], 6),
        "ciphertext 1 of the batch holds 5 slots",
    ),
    "fewer records than the header says": (
        lambda o, z, b: _repack(b, n_records=5),
        "holds 6 slots",
    ),
    "more records than slots": (
        lambda o, z, b: _repack(b, n_records=10**9),
        "above the 4096 slots",
    ),
    "width not the number of ciphertexts": (lambda o, z, b: _repack(b, width=DIM + 1), "width"),
    "zero width": (lambda o, z, b: _repack(b, width=0, lengths=[]), "lengths"),
    "boolean record count": (lambda o, z, b: _repack(b, n_records=True), "n_records"),
    "negative record count": (lambda o, z, b: _repack(b, n_records=-6), "n_records"),
    "string record count": (lambda o, z, b: _repack(b, n_records="6"), "n_records"),
    "float lengths": (
        lambda o, z, b: _repack(b, lengths=[float(x) for x in _lengths(b)]),
        "lengths",
    ),
    "lengths not summing to the body": (
        lambda o, z, b: _repack(b, lengths=[_lengths(b)[0] + 1, *_lengths(b)[1:]]),
        "length does not match",
    ),
    "key id with a newline": (lambda o, z, b: _repack(b, key_id=key_id(o)[:31] + "\n"), "key_id"),
    "unknown kind": (lambda o, z, b: _repack(b, kind="weights"), "kind"),
    "encrypted scores instead of latents": (
        lambda o, z, b: _repack(b, kind="scores"),
        "expected an encrypted batch of latents",
    ),
    "header not JSON": (
        lambda o, z, b: b[:7] + struct.pack("<I", 3) + b"{x]" + b[-10:],
        "not valid JSON",
    ),
    "header a JSON list": (
        lambda o, z, b: b[:7] + struct.pack("<I", 2) + b"[]",
        "not a JSON object",
    ),
    "header length beyond the body": (lambda o, z, b: b[:7] + struct.pack("<I", 2**31), "header"),
    "bad magic": (lambda o, z, b: b"FDSHE9\n" + b[7:], "bad magic"),
    "truncated": (lambda o, z, b: b[: len(b) // 2], "length does not match"),
    "trailing bytes": (lambda o, z, b: b + b"\x00" * 16, "length does not match"),
    "garbage ciphertext bytes": (
        lambda o, z, b: b[: len(b) - 5000] + bytes(5000),
        "malformed ciphertext 3",
    ),
    "random bytes": (lambda o, z, b: np.random.default_rng(0).bytes(4096), "bad magic"),
    "a ciphertext already multiplied": (
        lambda o, z, b: _batch(o, [ts.ckks_vector(o, z[:, j]) * 1.0 for j in range(DIM)], 6),
        "not a fresh encryption",
    ),
    "a ciphertext at another scale": (
        lambda o, z, b: _batch(
            o, [ts.ckks_vector(o, z[:, j], scale=2.0**55) for j in range(DIM)], 6
        ),
        "not a fresh encryption",
    ),
}


def _lengths(data: bytes) -> list[int]:
    """The ciphertext lengths in the header of serialized batch `data`."""
    (n,) = struct.unpack("<I", data[7:11])
    return json.loads(data[11 : 11 + n])["lengths"]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_batches_are_400_with_one_line(
    case, head, owner, Z, batch_bytes, server_log
) -> None:
    app = create_app(head, max_request_bytes=LIMIT)
    with _client(app) as client:
        token = _register(client, owner)
        make, match = MALFORMED[case]
        payload = make(owner, Z, batch_bytes)
        reply = client.post("/v1/infer", content=payload, headers=_auth(token))
        _assert_refused(reply, 400, match)
        # the same token still works afterwards
        ok = client.post("/v1/infer", content=batch_bytes, headers=_auth(token))
        assert ok.status_code == 200
    assert not [r for r in server_log() if r.exc_info or r.levelno >= logging.ERROR]


def test_bad_bodies_get_their_own_4xx(head, owner, intruder, Z, server_log) -> None:
    app = create_app(head, max_request_bytes=LIMIT)
    with _client(app) as client:
        token = _register(client, owner)
        auth = _auth(token)
        (batch,) = encrypt_latents(owner, Z)
        infer = lambda body, headers=auth: client.post("/v1/infer", content=body, headers=headers)  # noqa: E731
        _assert_refused(infer(b""), 400, "empty")
        _assert_refused(infer(batch.to_bytes(), {"authorization": auth["authorization"]}), 415)
        text = {"authorization": auth["authorization"], "content-type": "application/json"}
        _assert_refused(infer(batch.to_bytes(), text), 415, "octet-stream")
        _assert_refused(infer(b"x" * (LIMIT + 1)), 413, "limit")
        (narrow,) = encrypt_latents(owner, Z[:, :2])
        _assert_refused(infer(narrow.to_bytes()), 422, "the head expects 4")
        (foreign,) = encrypt_latents(intruder, Z)
        _assert_refused(infer(foreign.to_bytes()), 409, "encrypted under key")
        _assert_refused(client.get("/v1/infer"), 405)
    assert not [r for r in server_log() if r.exc_info or r.levelno >= logging.ERROR]


def _bfv_public() -> bytes:
    ctx = ts.context(ts.SCHEME_TYPE.BFV, 4096, plain_modulus=1032193)
    return ctx.serialize(save_secret_key=False)


def _no_scale_public() -> bytes:
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 60])
    return ctx.serialize(save_secret_key=False)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_bfv_public, "BFV context"),
        (lambda: create_context(HEParams()).serialize(save_secret_key=True), "secret key"),
        (_no_scale_public, "global scale"),
        (
            lambda: create_context(HEParams()).serialize(
                save_public_key=False, save_secret_key=False
            ),
            "no public key",
        ),
        (lambda: b"not a context", "not a TenSEAL context"),
        (lambda: np.random.default_rng(2).bytes(50_000), "not a TenSEAL context"),
        (lambda: b"\x00" * 10, "not a TenSEAL context"),
    ],
    ids=["bfv", "secret", "no-scale", "no-public-key", "text", "random", "zeros"],
)
def test_only_public_ckks_contexts_are_registered(head, make, match, server_log) -> None:
    app = create_app(head, max_request_bytes=LIMIT)
    with _client(app) as client:
        _assert_refused(client.post("/v1/contexts", content=make(), headers=OCTET), 400, match)
        assert len(app.state.registry) == 0
    assert not [r for r in server_log() if r.exc_info or r.levelno >= logging.ERROR]


def test_registration_bodies_are_checked_like_batches(head, owner) -> None:
    app = create_app(head, max_request_bytes=LIMIT)
    public = public_context_bytes(owner)
    with _client(app) as client:
        _assert_refused(client.post("/v1/contexts", content=b"", headers=OCTET), 400, "empty")
        _assert_refused(client.post("/v1/contexts", content=public), 415)
        big = client.post("/v1/contexts", content=b"x" * (LIMIT + 1), headers=OCTET)
        _assert_refused(big, 413)
        bad_auth = {**OCTET, "authorization": "Bearer"}
        _assert_refused(client.post("/v1/contexts", content=public, headers=bad_auth), 401)
        _assert_refused(client.delete("/v1/contexts"), 401)
        assert len(app.state.registry) == 0


def test_an_unexpected_failure_is_one_log_line_and_a_500(
    head, owner, batch_bytes, server_log, monkeypatch
) -> None:
    app = create_app(head)

    def broken(batch):
        raise KeyError("a bug")

    monkeypatch.setattr(head, "evaluate", broken)
    with _client(app) as client:
        token = _register(client, owner)
        reply = client.post("/v1/infer", content=batch_bytes, headers=_auth(token))
        _assert_refused(reply, 500, "internal server error")
    errors = [r for r in server_log() if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "KeyError" in errors[0].getMessage()
    assert not any(r.exc_info for r in server_log())
