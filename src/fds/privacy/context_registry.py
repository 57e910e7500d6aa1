"""Who may use which public context on the inference server: bearer tokens, capacity, idle expiry.

The policy `fds serve` enforces (docs/privacy.md, "Encrypted inference"):

- every registration gets its own random token (`secrets.token_urlsafe`); only its holder can use,
  replace or delete that registration. Only the sha256 of a token is kept.
- at most `max_total` live registrations on the server and `max_per_client` per client (the peer
  address that registered them); a further registration is refused with `CapacityError` (HTTP 429)
  saying when a slot frees. A live registration is never evicted to make room.
- a registration unused for `ttl` seconds expires; expiry frees those and only those.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CapacityError", "ContextRegistry", "Registration"]


class CapacityError(Exception):
    """No room for another registration (the server's or this client's cap is reached)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Registration:
    """A public context registered by `client`, with the time it was last used."""

    context: Any
    key_id: str
    client: str
    last_used: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ContextRegistry:
    """Registrations by token under a global and a per-client cap, expiring after `ttl` idle
    seconds. Thread-safe; `clock` is the monotonic time source."""

    def __init__(
        self,
        *,
        max_total: int = 16,
        max_per_client: int = 4,
        ttl: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_total < 1 or max_per_client < 1 or not ttl > 0:
            raise ValueError("max_total, max_per_client and ttl must be positive")
        self.max_total, self.max_per_client, self.ttl = max_total, max_per_client, float(ttl)
        self._clock = clock
        self._lock = threading.Lock()
        self._by_digest: dict[str, Registration] = {}

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._by_digest)

    def registrations(self) -> list[Registration]:
        """The live registrations (for inspection; tokens are not kept)."""
        with self._lock:
            self._expire()
            return list(self._by_digest.values())

    def check_room(self, client: str) -> None:
        """Raise CapacityError unless `client` may register one more context now."""
        with self._lock:
            self._expire()
            self._check_room(client)

    def register(self, context: Any, key_id: str, client: str) -> str:
        """Keep `context` for `client` and return the new token (CapacityError when full)."""
        with self._lock:
            self._expire()
            self._check_room(client)
            token = secrets.token_urlsafe(32)
            self._by_digest[_digest(token)] = Registration(context, key_id, client, self._clock())
            return token

    def get(self, token: str) -> Registration | None:
        """The live registration of `token` (marked used now), or None."""
        with self._lock:
            self._expire()
            registration = self._by_digest.get(_digest(token))
            if registration is not None:
                registration.last_used = self._clock()
            return registration

    def replace(self, token: str, context: Any, key_id: str) -> bool:
        """Put `context` in place of the one `token` holds; False when the token is not live."""
        with self._lock:
            self._expire()
            registration = self._by_digest.get(_digest(token))
            if registration is None:
                return False
            registration.context, registration.key_id = context, key_id
            registration.last_used = self._clock()
            return True

    def remove(self, token: str) -> bool:
        """Forget the registration of `token`; False when it was not live."""
        with self._lock:
            self._expire()
            return self._by_digest.pop(_digest(token), None) is not None

    def _check_room(self, client: str) -> None:
        live = list(self._by_digest.values())
        mine = [r for r in live if r.client == client]
        if len(mine) >= self.max_per_client:
            raise CapacityError(
                f"this client already holds {len(mine)} registered contexts (the per-client "
                f"limit): DELETE /v1/contexts with a token you hold, or wait for one to expire",
                self._seconds_until_free(mine),
            )
        if len(live) >= self.max_total:
            raise CapacityError(
                f"the server holds {len(live)} registered contexts (its limit); retry later",
                self._seconds_until_free(live),
            )

    def _seconds_until_free(self, registrations: list[Registration]) -> int:
        soonest = min(r.last_used for r in registrations) + self.ttl - self._clock()
        return max(1, math.ceil(soonest))

    def _expire(self) -> None:
        now = self._clock()
        for digest in [d for d, r in self._by_digest.items() if now - r.last_used >= self.ttl]:
            del self._by_digest[digest]
