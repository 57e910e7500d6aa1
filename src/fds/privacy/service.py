"""The encrypted-inference service (`fds serve`) and its client (`fds infer-remote`).

The server holds a head (linear, or a polynomial-activation MLP) and public CKKS contexts only; it
never sees latents or scores in the clear. Bodies are raw bytes, `application/octet-stream`
(anything else: 415); every refusal is a one-line JSON `{"detail": …}`, never a traceback.

- `GET /v1/head`: what the owner needs to encrypt and read results: `kind`, `n_features`,
  `n_outputs`, `classes` (null for regression), `depth`.
- `POST /v1/contexts`: a public CKKS context (`public.ctx`) → 201 `{"key_id", "token",
  "ttl_seconds"}`. A context holding a secret key, a non-CKKS (e.g. BFV) context or bytes that are
  not a context: 400. With `Authorization: Bearer <token>` it replaces that token's context (200);
  an unknown or expired token: 403. Capacity (see `fds.privacy.context_registry`): 429 with
  `Retry-After` when the server or this client holds its limit of contexts; nothing is evicted.
- `POST /v1/infer` (bearer token required: 401 without, 403 unknown): an encrypted latent batch
  (`EncryptedBatch.to_bytes`) → encrypted scores. 400 for a malformed batch, 409 when it was
  encrypted under another key than the token's context, 422 when its width or its context's depth
  does not fit the head, 413 above the size limit.
- `DELETE /v1/contexts` (bearer token): frees that registration → 204.

Request bodies are read up to the limit and never logged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from fds.errors import ConfigError, DataError, KeyMismatchError
from fds.privacy.context_registry import CapacityError, ContextRegistry, Registration
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
_log = logging.getLogger("fds.serve")


def _one_line(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _OneLineErrors:
    """ASGI guard: an unexpected exception becomes a 500 with a one-line JSON body and one log
    line naming its type, never a traceback (Starlette's own handler logs one and re-raises)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            _log.error(
                "internal error on %s %s: %s: %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                _one_line(exc),
            )
            if not started:
                reply = JSONResponse({"detail": "internal server error"}, status_code=500)
                await reply(scope, receive, send)


def _refuse(status: int, detail: str, **headers: str) -> HTTPException:
    return HTTPException(status, _one_line(detail), headers=headers or None)


def _bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None without the header)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _refuse(
            401,
            "the Authorization header must be `Bearer <token>`",
            **{"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def _client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _load_context(data: bytes) -> tuple[Any, str]:
    """The public context in `data` and its key id (400 when it is not one)."""
    try:
        ctx = load_public_context(data)
    except DataError as exc:
        raise _refuse(400, str(exc)) from None
    return ctx, key_id(ctx)


def create_app(
    head: LinearHead | PolyMLPHead,
    *,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    max_contexts: int = 16,
    max_contexts_per_client: int = 4,
    context_ttl: float = 900.0,
) -> FastAPI:
    """A FastAPI app serving `head` (linear or polynomial MLP) on encrypted batches; at most
    `max_contexts` registered contexts (`max_contexts_per_client` per client address), each
    expiring after `context_ttl` idle seconds."""
    app = FastAPI(title="FDS encrypted inference", docs_url=None, redoc_url=None)
    app.add_middleware(_OneLineErrors)
    registry = ContextRegistry(
        max_total=max_contexts, max_per_client=max_contexts_per_client, ttl=context_ttl
    )
    app.state.registry = registry
    app.state.head = head

    async def body(request: Request) -> bytes:
        kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind != OCTET:
            raise _refuse(415, f"send the body as {OCTET}")
        too_large = f"request body above the limit of {max_request_bytes} bytes"
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_request_bytes:
            raise _refuse(413, too_large)
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_request_bytes:
                    raise _refuse(413, too_large)
                chunks.append(chunk)
        except ClientDisconnect:
            raise _refuse(400, "the client disconnected before sending the whole body") from None
        if size == 0:
            raise _refuse(400, "empty request body")
        return b"".join(chunks)

    def registration_of(request: Request) -> tuple[str, Registration]:
        token = _bearer_token(request)
        if token is None:
            raise _refuse(
                401,
                "this endpoint needs the token returned by POST /v1/contexts "
                "(Authorization: Bearer <token>)",
                **{"WWW-Authenticate": "Bearer"},
            )
        registration = registry.get(token)
        if registration is None:
            raise _refuse(
                403, "unknown or expired token: POST the public context to /v1/contexts again"
            )
        return token, registration

    def full(exc: CapacityError) -> HTTPException:
        return _refuse(429, str(exc), **{"Retry-After": str(exc.retry_after)})

    def score(data: bytes, ctx: Any) -> bytes:
        """Parse, evaluate and serialize one batch (off the event loop)."""
        try:
            batch = EncryptedBatch.from_bytes(data, ctx, kind="latents")
            return head.evaluate(batch).to_bytes()
        except ConfigError as exc:  # the context's depth or keys do not fit the head
            raise _refuse(422, str(exc)) from None
        except DataError as exc:
            raise _refuse(400, str(exc)) from None
        except (ValueError, RuntimeError) as exc:  # TenSEAL refusing what the batch asks of it
            raise _refuse(400, f"the batch cannot be evaluated under its context ({exc})") from None

    @app.get("/v1/head")
    async def head_info() -> dict[str, Any]:
        return {
            "kind": "poly_mlp" if isinstance(head, PolyMLPHead) else "linear",
            "n_features": head.n_features,
            "n_outputs": head.n_outputs,
            "classes": None if head.classes is None else head.classes.tolist(),
            "depth": head.depth,
        }

    @app.post("/v1/contexts", status_code=201)
    async def register_context(request: Request, response: Response) -> dict[str, Any]:
        token, client = _bearer_token(request), _client_of(request)
        if token is None:
            try:
                registry.check_room(client)  # before reading and parsing megabytes
            except CapacityError as exc:
                raise full(exc) from None
        elif registry.get(token) is None:
            raise _refuse(403, "unknown or expired token: register without one to get a new token")
        ctx, kid = await run_in_threadpool(_load_context, await body(request))
        if token is None:
            try:
                token = registry.register(ctx, kid, client)
            except CapacityError as exc:  # filled up while this context was parsed
                raise full(exc) from None
        elif registry.replace(token, ctx, kid):
            response.status_code = 200
        else:
            raise _refuse(403, "the token expired while its context was being replaced")
        return {"key_id": kid, "token": token, "ttl_seconds": registry.ttl}

    @app.delete("/v1/contexts", status_code=204)
    async def delete_context(request: Request) -> Response:
        token, _ = registration_of(request)
        registry.remove(token)
        return Response(status_code=204)

    @app.post("/v1/infer")
    async def infer(request: Request) -> Response:
        _, registration = registration_of(request)
        data = await body(request)
        try:
            header = parse_batch_header(data)
        except DataError as exc:
            raise _refuse(400, str(exc)) from None
        if header["kind"] != "latents":
            raise _refuse(400, f"expected an encrypted batch of latents, got {header['kind']}")
        if header["key_id"] != registration.key_id:
            raise _refuse(
                409,
                f"the batch was encrypted under key {header['key_id']}, this token's context is "
                f"key {registration.key_id}: register the public context of the batch's keys",
            )
        if header["width"] != head.n_features:
            raise _refuse(
                422, f"the batch has {header['width']} features, the head expects {head.n_features}"
            )
        reply = await run_in_threadpool(score, data, registration.context)
        return Response(reply, media_type=OCTET)

    return app


def _check(response: Any, what: str) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except (ValueError, AttributeError):
            detail = response.text
        raise DataError(f"the server refused {what} ({response.status_code}): {_one_line(detail)}")
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


@contextlib.contextmanager
def _registered(client: Any, public_context: bytes, url: str) -> Iterator[tuple[str, dict]]:
    """Register `public_context` for the duration of the block: yields its key id and the
    headers (with the bearer token) every batch is sent with; frees the slot afterwards."""
    import httpx

    registered = _check(
        client.post("/v1/contexts", content=public_context, headers={"content-type": OCTET}),
        "the public context",
    ).json()
    if not isinstance(registered, dict) or not isinstance(registered.get("token"), str):
        raise DataError(f"the server at {url} returned no token for the public context")
    headers = {"content-type": OCTET, "authorization": f"Bearer {registered['token']}"}
    try:
        yield str(registered.get("key_id")), headers
    finally:
        with contextlib.suppress(httpx.HTTPError):  # it also expires on its own
            client.delete("/v1/contexts", headers=headers)


def infer_remote(
    url: str,
    secret_ctx: Any,
    Z: Any,
    *,
    public_context: bytes,
    client: Any = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """The owner's side: register `public_context` (the server returns a token, sent with every
    batch), encrypt `Z` in packed batches, POST them, decrypt the replies, then free the
    registration. `Z` may be `SealedLatents`: their sealed private block is sent as it is (see
    `SealedLatents.inference_batches`). Returns `scores` (n × c), `predictions`, `classes`,
    `key_id`, `batches`, `bytes_sent`, `bytes_received`, `seconds`."""
    import httpx

    started = time.perf_counter()
    own = client is None
    client = client or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
    try:
        info = _check(client.get("/v1/head"), "the head request").json()
        batches = _encrypted(secret_ctx, Z, info["n_features"])
        kid = key_id(secret_ctx)
        with _registered(client, public_context, url) as (registered_kid, headers):
            if registered_kid != kid:
                raise KeyMismatchError(
                    f"the public context is key {registered_kid}, the secret context is key "
                    f"{kid}: use public.ctx and secret.ctx from the same `fds keys new`"
                )
            sent, received, replies = len(public_context), 0, []
            for batch in batches:
                payload = batch.to_bytes()
                sent += len(payload)
                reply = _check(
                    client.post("/v1/infer", content=payload, headers=headers),
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
