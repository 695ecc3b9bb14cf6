"""Limits that keep one client from taking the service: body size, request rate, and CORS
only where browsers of other sites belong.

The per-request deadline lives with the route (:mod:`service.routes`) and the batcher, which
drops work whose caller gave up.
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/admin"
_BODYLESS = {"GET", "HEAD", "OPTIONS", "DELETE"}


class BodyLimitMiddleware:
    """Answers 413 to a body over the limit before anything parses it.

    A declared ``Content-Length`` is checked before a byte is read (the server holds the body
    to that length); a streamed body without one is read up to the limit, then replayed.

    Args:
        app: the app below.
        limit_for: the largest body, in bytes, for a request path.
        on_reject: told of each rejected request (for metrics).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str], int],
        on_reject: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _send_error(send, 400, "Content-Length must be a whole number of bytes")
            elif int(declared) > limit:
                self.on_reject()
                await _send_error(send, 413, _too_large(limit, f"{int(declared):,} bytes"))
            else:
                await self.app(scope, receive, send)
            return
        # Chunked: read it here, up to the limit, so that the app never sees a larger one.
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away; let the app see it
            size += len(message.get("body", b""))
            if size > limit:
                self.on_reject()
                await _send_error(send, 413, _too_large(limit, "more"))
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int, got: str) -> str:
    return f"request body too large: {got}; at most {limit:,} bytes are accepted"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1").strip()
    return None


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per client: ``burst`` requests at once, then ``rate`` a second.

    ``rate`` 0 turns it off. At most ``max_clients`` buckets are kept (the least recently
    seen are forgotten, which only gives those clients a full bucket again).

    Example:
        >>> clock = iter([0.0, 0.0, 0.0, 0.5]).__next__
        >>> limiter = RateLimiter(rate=2.0, burst=2, clock=clock)
        >>> [limiter.retry_after("10.0.0.1") for _ in range(4)]
        [0.0, 0.0, 0.5, 0.0]
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def retry_after(self, client: str) -> float:
        """0.0 if ``client`` may send a request now (which uses a token); else the seconds
        until it may."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        tokens, last = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, rounded up (a client waiting less would be refused)."""
    return str(max(1, math.ceil(seconds)))


class PublicCORSMiddleware(CORSMiddleware):
    """CORS for the public endpoints only: the admin endpoints answer no other site's browser
    (no CORS headers, and their preflight requests fail)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
