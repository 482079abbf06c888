"""Injected faults: the ways a real NetSuite account misbehaves under an integration.

Each fault is a small ``before``/``after`` hook (see ``governance.Fault``). Apart from
latency they only touch the record and query services (``/record/``, ``/query/``), so
async job polling stays reliable while the thing under test is the write path. Every
firing is counted under ``faults`` in ``/__sim/stats``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tillbridge.devstack.netsuite_sim.errors import service_unavailable, unexpected
from tillbridge.devstack.netsuite_sim.governance import SimConfig

Count = Callable[[str], None]
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def is_service_call(request: Request) -> bool:
    """Record and query service requests (the ones faults apply to)."""
    path = request.url.path
    return path.startswith(("/services/rest/record/", "/services/rest/query/"))


class Latency:
    """``latency_ms`` plus jitter drawn from the configured distribution, never negative."""

    def __init__(self, config: SimConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng

    def sample_ms(self) -> float:
        c = self._config
        base, jitter = c.latency_ms, c.latency_jitter_ms
        if jitter <= 0:
            return base
        if c.latency_distribution == "normal":
            return max(0.0, self._rng.gauss(base, jitter))
        if c.latency_distribution == "exponential":
            return base + self._rng.expovariate(1.0 / jitter)
        return max(0.0, base + self._rng.uniform(-jitter, jitter))

    async def before(self, request: Request) -> Response | None:
        delay = self.sample_ms()
        if is_service_call(request) and request.url.path.endswith("/suiteql"):
            delay += self._config.slow_suiteql_ms
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        return None

    async def after(self, request: Request, response: Response) -> Response:
        return response


class Outage:
    """A window during which every record/query request gets 503 (maintenance, incident)."""

    def __init__(self, count: Count) -> None:
        self._count = count
        self._until = 0.0

    def start(self, seconds: float) -> None:
        self._until = time.monotonic() + max(0.0, seconds)

    def stop(self) -> None:
        self._until = 0.0

    def remaining(self) -> float:
        return max(0.0, self._until - time.monotonic())

    def describe(self) -> dict[str, Any]:
        left = self.remaining()
        return {"active": left > 0, "remaining_s": round(left, 3)}

    async def before(self, request: Request) -> Response | None:
        left = self.remaining()
        if left > 0 and is_service_call(request):
            self._count("outage")
            return service_unavailable(int(left + 0.999)).response()
        return None

    async def after(self, request: Request, response: Response) -> Response:
        return response


class ErrorRate:
    """A seeded share of record/query requests fails with 500 UNEXPECTED_ERROR, unprocessed."""

    def __init__(self, config: SimConfig, rng: random.Random, count: Count) -> None:
        self._config = config
        self._rng = rng
        self._count = count

    async def before(self, request: Request) -> Response | None:
        rate = self._config.error_rate
        if rate > 0 and is_service_call(request) and self._rng.random() < rate:
            self._count("error_rate")
            return unexpected(secrets.token_hex(10)).response()
        return None

    async def after(self, request: Request, response: Response) -> Response:
        return response


class CommitThenTimeout:
    """The write is committed, but the client never gets the answer.

    Fires on successful writes only (2xx POST/PATCH/PUT/DELETE to the record service,
    async submissions included): by count first, then by rate.
    """

    def __init__(self, config: SimConfig, rng: random.Random, count: Count) -> None:
        self._config = config
        self._rng = rng
        self._count = count

    def _fires(self) -> bool:
        c = self._config
        if c.commit_then_timeout_count > 0:
            c.commit_then_timeout_count -= 1
            return True
        return c.commit_then_timeout_rate > 0 and self._rng.random() < c.commit_then_timeout_rate

    async def before(self, request: Request) -> Response | None:
        return None

    async def after(self, request: Request, response: Response) -> Response:
        if (request.method in WRITES and request.url.path.startswith("/services/rest/record/")
                and 200 <= response.status_code < 300 and self._fires()):
            self._count("commit_then_timeout")
            return DroppedResponse(self._config.timeout_after_commit_s)
        return response


class DroppedResponse(Response):
    """Hold the connection silently, then abandon it mid-response.

    Runs after the endpoint returned, so the concurrency slot is already free (the work
    is done; only the answer is lost). If the client gives up first (its timeout), we
    stop at its disconnect. Otherwise we send a status line and close without a body,
    which a client sees as a broken connection (httpx: ``RemoteProtocolError``), not as
    an HTTP status. In-process ASGI transports have no timeouts: there the wait runs its
    full length and ends in that half-sent response, so use ``SimServer`` for this fault.
    """

    def __init__(self, wait_s: float) -> None:
        super().__init__(status_code=500)
        self.wait_s = wait_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await asyncio.wait_for(_disconnected(receive), self.wait_s)
            return
        except TimeoutError:
            pass
        headers: list[tuple[bytes, bytes]] = [(b"content-length", b"64"),
                                              (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        # Returning without the body makes the server close the connection.


async def _disconnected(receive: Receive) -> None:
    while True:
        message: dict[str, Any] = dict(await receive())
        if message.get("type") == "http.disconnect":
            return
