"""The encrypted-inference service (`fds serve`) and its client (`fds infer-remote`).

The server holds a head (linear, or a polynomial-activation MLP) and public CKKS contexts only; it never sees latents or scores in
the clear. Endpoints (bodies are raw bytes, `application/octet-stream`):

- `GET /v1/head`: what the owner needs to encrypt and read results: `kind`, `n_features`,
  `n_outputs`, `classes` (null for regression), `depth`.
- `POST /v1/contexts`: a public context (`public.ctx`). One that holds a secret key is refused
  (400) and never kept; returns `{"key_id"}`. The server keeps the last `max_contexts` contexts.
- `POST /v1/infer`: an encrypted latent batch (`EncryptedBatch.to_bytes`) → encrypted scores.
  400 for malformed bytes, 409 when its key's public context was not registered, 422 when its
  width does not match the head, 413 above the size limit.

Request bodies are read up to the limit and never logged.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from fds.errors import ConfigError, DataError, KeyMismatchError
from fds.privacy.he import (
    EncryptedBatch,
    LinearHead,
    PolyMLPHead,
    SealedLatents,
    decrypt_scores,
    encrypt_latents,
    key_id,
    load_public_context,
    parse_batch_header,
    predictions_from_scores,
)

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "create_app", "infer_remote"]

DEFAULT_MAX_REQUEST_BYTES = 64 << 20  # a packed 16-d batch is ~4 MB; a public context ≤ 18 MB
OCTET = "application/octet-stream"


class _TooLarge(Exception):
    pass


def create_app(
    head: LinearHead | PolyMLPHead,
    *,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_contexts: int = 16,
) -> Any:
    """A FastAPI app serving `head` (linear or polynomial MLP) on encrypted batches."""
    app = FastAPI(title="FDS encrypted inference", docs_url=None, redoc_url=None)
    contexts: OrderedDict[str, Any] = OrderedDict()
    app.state.contexts = contexts
    app.state.head = head

    async def body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_request_bytes:
            raise HTTPException(413, f"request body above the limit of {max_request_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_request_bytes:
                raise HTTPException(
                    413, f"request body above the limit of {max_request_bytes} bytes"
                )
            chunks.append(chunk)
        if size == 0:
            raise HTTPException(400, "empty request body")
        return b"".join(chunks)

    @app.get("/v1/head")
    async def head_info() -> dict[str, Any]:
        return {
            "kind": "poly_mlp" if isinstance(head, PolyMLPHead) else "linear",
            "n_features": head.n_features,
            "n_outputs": head.n_outputs,
            "classes": None if head.classes is None else head.classes.tolist(),
            "depth": head.depth,
        }

    @app.post("/v1/contexts")
    async def register_context(request: Request) -> dict[str, Any]:
        data = await body(request)
        try:
            ctx = load_public_context(data)
        except DataError as exc:
            raise HTTPException(400, str(exc)) from None
        kid = key_id(ctx)
        contexts[kid] = ctx
        contexts.move_to_end(kid)
        while len(contexts) > max_contexts:
            contexts.popitem(last=False)
        return {"key_id": kid}

    @app.post("/v1/infer")
    async def infer(request: Request) -> Response:
        data = await body(request)
        try:
            header = parse_batch_header(data)
        except DataError as exc:
            raise HTTPException(400, str(exc)) from None
        ctx = contexts.get(header["key_id"])
        if ctx is None:
            raise HTTPException(
                409,
                f"no public context for key {header['key_id']}: POST it to /v1/contexts first",
            )
        try:
            batch = EncryptedBatch.from_bytes(data, ctx, kind="latents")
        except KeyMismatchError as exc:  # pragma: no cover - the key id selected the context
            raise HTTPException(409, str(exc)) from None
        except DataError as exc:
            raise HTTPException(400, str(exc)) from None
        if batch.width != head.n_features:
            raise HTTPException(
                422, f"the batch has {batch.width} features, the head expects {head.n_features}"
            )
        try:
            scores = head.evaluate(batch)
        except ConfigError as exc:  # the context's depth or keys do not fit the head
            raise HTTPException(422, str(exc)) from None
        return Response(scores.to_bytes(), media_type=OCTET)

    return app


def _check(response: Any, what: str) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise DataError(f"the server refused {what} ({response.status_code}): {detail}")
    return response


def _encrypted(ctx: Any, Z: Any, n_features: int) -> list[EncryptedBatch]:
    """The batches to send for a head of `n_features` inputs: sealed latents as sealed, plain
    latents encrypted here."""
    if isinstance(Z, SealedLatents):
        return Z.inference_batches(ctx, n_features)
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[1] != n_features:
        raise DataError(
            f"latents of shape {Z.shape}: the server's head expects {n_features} features"
        )
    return encrypt_latents(ctx, Z)


def infer_remote(
    url: str,
    secret_ctx: Any,
    Z: Any,
    *,
    public_context: bytes,
    client: Any = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """The owner's side: register `public_context`, encrypt `Z` in packed batches, POST them,
    decrypt the replies. `Z` may be `SealedLatents`: their sealed private block is sent as it is
    (see `SealedLatents.inference_batches`). Returns `scores` (n × c), `predictions`, `classes`,
    `key_id`, `batches`, `bytes_sent`, `bytes_received`, `seconds`."""
    import httpx

    started = time.perf_counter()
    own = client is None
    client = client or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
    try:
        try:
            info = _check(client.get("/v1/head"), "the head request").json()
            batches = _encrypted(secret_ctx, Z, info["n_features"])
            registered = _check(
                client.post(
                    "/v1/contexts", content=public_context, headers={"content-type": OCTET}
                ),
                "the public context",
            ).json()
            kid = key_id(secret_ctx)
            if registered.get("key_id") != kid:
                raise KeyMismatchError(
                    f"the public context is key {registered.get('key_id')}, the secret context "
                    f"is key {kid}: use public.ctx and secret.ctx from the same `fds keys new`"
                )
            sent = len(public_context)
            received, replies = 0, []
            for batch in batches:
                payload = batch.to_bytes()
                sent += len(payload)
                reply = _check(
                    client.post("/v1/infer", content=payload, headers={"content-type": OCTET}),
                    "an encrypted batch",
                ).content
                received += len(reply)
                replies.append(EncryptedBatch.from_bytes(reply, secret_ctx, kind="scores"))
        except httpx.HTTPError as exc:
            raise DataError(f"cannot reach the inference server at {url}: {exc}") from None
    finally:
        if own:
            client.close()
    scores = decrypt_scores(secret_ctx, replies)
    return {
        "scores": scores,
        "predictions": predictions_from_scores(scores, info["classes"]),
        "classes": info["classes"],
        "key_id": kid,
        "batches": len(replies),
        "bytes_sent": sent,
        "bytes_received": received,
        "seconds": time.perf_counter() - started,
    }
