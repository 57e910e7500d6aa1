"""Fuzzing the encrypted-inference service's readers (Hypothesis): whatever bytes, header fields or
corrupted ciphertexts and contexts arrive, the reply is a success or a 4xx with one JSON line,
never a 500, and the server logs no error.

The suite runs a bounded number of examples; `FDS_FUZZ_EXAMPLES=2000` runs more locally."""

from __future__ import annotations

import json
import logging
import os
import struct
import warnings

import numpy as np
import pytest
import tenseal as ts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.exceptions import StarletteDeprecationWarning

from fds.privacy.he import HEParams, LinearHead, create_context, encrypt_latents, key_id
from fds.privacy.he import public_context_bytes as public_bytes
from fds.privacy.service import create_app

with warnings.catch_warnings():  # it warns that it runs on httpx, not httpx2: irrelevant here
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

DIM = 3
MAGIC = b"FDSHE1\n"
OCTET = {"content-type": "application/octet-stream"}
FUZZ = settings(
    max_examples=int(os.environ.get("FDS_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OWNER = create_context(HEParams())
KID = key_id(OWNER)
(_BATCH,) = encrypt_latents(OWNER, np.random.default_rng(0).normal(size=(5, DIM)))
BLOBS = [v.serialize() for v in _BATCH.vectors]
PUBLIC = public_bytes(OWNER)


@pytest.fixture(scope="module")
def served():
    head = LinearHead(np.ones((DIM, 2)), np.zeros(2), classes=["no", "yes"])
    app = create_app(
        head, max_request_bytes=4 << 20, max_contexts=4096, max_contexts_per_client=4096
    )
    with TestClient(app) as client:
        token = client.post("/v1/contexts", content=PUBLIC, headers=OCTET).json()["token"]
        yield client, {**OCTET, "authorization": f"Bearer {token}"}


def _assert_handled(reply) -> None:
    assert reply.status_code < 500, reply.text
    if reply.status_code >= 400:
        assert "\n" not in reply.text.strip()
        assert isinstance(reply.json()["detail"], str)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=6,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["latents", "scores"]) | json_values,
        "n_records": st.integers(-3, 10**10) | json_values,
        "key_id": st.just(KID) | st.text(alphabet="0123456789abcdef", max_size=40) | json_values,
        "width": st.integers(-1, 2 * DIM) | json_values,
        "lengths": st.lists(
            st.sampled_from([len(b) for b in BLOBS]) | st.integers(-5, 10**6), max_size=5
        )
        | json_values,
    },
)


VALID_HEADER = {
    "kind": "latents",
    "n_records": 5,
    "key_id": KID,
    "width": DIM,
    "lengths": [len(b) for b in BLOBS],
}


@st.composite
def batches(draw) -> bytes:
    """Fuzzed header fields (all, or one of a valid header) over real ciphertexts, some of them
    corrupted or cut."""
    if draw(st.booleans()):
        header = draw(headers)
        body = b"".join(BLOBS[i] for i in draw(st.lists(st.integers(0, DIM - 1), max_size=DIM + 1)))
    else:
        field = draw(st.sampled_from(sorted(VALID_HEADER)))
        header = {**VALID_HEADER, field: draw(headers).get(field, VALID_HEADER[field])}
        body = b"".join(BLOBS)
    if body and draw(st.booleans()):
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + draw(st.binary(min_size=1, max_size=64)) + body[at + 1 :]
    if body and draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    raw = json.dumps(header).encode()
    return MAGIC + struct.pack("<I", len(raw)) + raw + body


@FUZZ
@given(payload=batches() | st.binary(max_size=2048) | st.binary(max_size=64).map(MAGIC.__add__))
def test_no_batch_gets_a_500(served, payload, caplog) -> None:
    client, auth = served
    with caplog.at_level(logging.WARNING):
        _assert_handled(client.post("/v1/infer", content=payload, headers=auth))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@st.composite
def corrupted_contexts(draw) -> bytes:
    """The owner's public context with a few bytes replaced, cut short, or random bytes."""
    data = bytearray(PUBLIC)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]
    return bytes(data)


@FUZZ
@given(payload=corrupted_contexts() | st.binary(min_size=1, max_size=2048))
def test_no_context_gets_a_500(served, payload, caplog) -> None:
    client, _ = served
    with caplog.at_level(logging.WARNING):
        reply = client.post("/v1/contexts", content=payload, headers=OCTET)
    _assert_handled(reply)
    if reply.status_code == 201:  # the corruption missed everything that matters
        ctx = ts.context_from(payload)
        assert reply.json()["key_id"] == key_id(ctx) and not ctx.has_secret_key()
        client.delete("/v1/contexts", headers={"authorization": f"Bearer {reply.json()['token']}"})
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
