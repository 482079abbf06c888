"""Account governance and injected faults, applied around every NetSuite API request.

``SimConfig`` is mutable at runtime (``POST /__sim/config``). Faults are small objects
with ``before``/``after`` hooks so later work can add error rates, outages or
commit-then-timeout without touching the routes.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from .errors import concurrency_exceeded


@dataclass
class SimConfig:
    """Runtime knobs of the simulated account."""

    concurrency_limit: int = 15  # in-flight cap; NetSuite dev accounts are 5, premium 15
    latency_ms: float = 0.0  # fixed extra latency per request, spent while holding a slot
    upsert_location: bool = False  # send Location on PUT eid: upserts (unconfirmed in docs)

    def update(self, values: dict[str, Any]) -> None:
        """Apply known keys with type coercion; unknown keys raise ``KeyError``."""
        kinds = {f.name for f in fields(self)}
        for key, value in values.items():
            if key not in kinds:
                raise KeyError(key)
            current = getattr(self, key)
            if isinstance(current, bool) and isinstance(value, str):
                value = value.strip().lower() in ("1", "true", "yes", "t")
            setattr(self, key, type(current)(value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Fault(Protocol):
    """A hook around request handling; returning a response short-circuits the request."""

    async def before(self, request: Request) -> Response | None: ...

    async def after(self, request: Request, response: Response) -> Response: ...


class ConcurrencyGate:
    """Semaphore semantics without queueing: over the cap -> immediate 429 (NetSuite's rule)."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self.in_flight = 0
        self.peak = 0

    def try_acquire(self) -> bool:
        # Single event loop: no await between check and increment, so this is atomic.
        if self.in_flight >= self._config.concurrency_limit:
            return False
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def rejection(self) -> Response:
        return concurrency_exceeded().response()


class FixedLatency:
    """Adds ``latency_ms`` before the handler runs, while the request holds its slot."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config

    async def before(self, request: Request) -> Response | None:
        if self._config.latency_ms > 0:
            await asyncio.sleep(self._config.latency_ms / 1000)
        return None

    async def after(self, request: Request, response: Response) -> Response:
        return response
