"""Account governance and injected faults, applied around every NetSuite API request.

``SimConfig`` is mutable at runtime (``POST /__sim/config``). Faults (``faults.py``) are
small objects with ``before``/``after`` hooks, so the routes know nothing about them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from tillbridge.devstack.netsuite_sim.errors import concurrency_exceeded

LATENCY_DISTRIBUTIONS = ("uniform", "normal", "exponential")


@dataclass
class SimConfig:
    """Runtime knobs of the simulated account (constructor flags and ``/__sim/config``)."""

    concurrency_limit: int = 15  # in-flight cap; NetSuite dev accounts are 5, premium 15
    latency_ms: float = 0.0  # extra latency per request, spent while holding a slot
    upsert_location: bool = False  # send Location on PUT eid: upserts (unconfirmed in docs)
    # Spread around latency_ms: uniform +/- jitter, normal with sigma = jitter, or an
    # exponential tail with mean = jitter (the long-tail shape real SuiteTalk calls show).
    latency_jitter_ms: float = 0.0
    latency_distribution: str = "uniform"
    error_rate: float = 0.0  # share of record/query requests failing 500 UNEXPECTED_ERROR
    seed: int = 0  # seeds the fault RNG (error rate, jitter, commit-then-timeout rate)
    # Commit the write, then withhold the response past the client's timeout: a share
    # of successful writes (rate) and/or the next N successful writes (count).
    commit_then_timeout_rate: float = 0.0
    commit_then_timeout_count: int = 0
    timeout_after_commit_s: float = 35.0  # > NetSuiteClient's 30 s default timeout
    slow_suiteql_ms: float = 0.0  # extra latency on SuiteQL only
    async_delay_ms: float = 50.0  # an async job completes this long after submission
    # OAuth 2.0 M2M access-token lifetime (NetSuite: 60 min); tests shorten it to see a
    # token expire and the client fetch a new one.
    oauth2_token_ttl_s: int = 3600

    def update(self, values: dict[str, Any]) -> None:
        """Apply known keys with type coercion; unknown keys raise ``KeyError``.

        ``commit_then_timeout`` is a shorthand: a JSON integer >= 1 is a count, a number
        in [0, 1) (or any float) is a rate. Values are checked before anything changes.
        """
        values = dict(values)
        shorthand = values.pop("commit_then_timeout", None)
        if shorthand is not None:
            key = "commit_then_timeout_count" if isinstance(shorthand, int) and not \
                isinstance(shorthand, bool) and shorthand >= 1 else "commit_then_timeout_rate"
            values[key] = shorthand
        kinds = {f.name for f in fields(self)}
        staged = SimConfig(**self.as_dict())
        for key, value in values.items():
            if key not in kinds:
                raise KeyError(key)
            current = getattr(staged, key)
            if isinstance(current, bool) and isinstance(value, str):
                value = value.strip().lower() in ("1", "true", "yes", "t")
            setattr(staged, key, type(current)(value))
        staged.check()
        for key in values:
            setattr(self, key, getattr(staged, key))

    def check(self) -> None:
        """Refuse values that make no sense (``ValueError``)."""
        for name in ("error_rate", "commit_then_timeout_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if self.latency_distribution not in LATENCY_DISTRIBUTIONS:
            raise ValueError(f"latency_distribution must be one of {LATENCY_DISTRIBUTIONS}")
        for name in ("latency_ms", "latency_jitter_ms", "timeout_after_commit_s",
                     "slow_suiteql_ms", "async_delay_ms", "commit_then_timeout_count"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.concurrency_limit < 1:
            raise ValueError("concurrency_limit must be at least 1")
        if not 1 <= self.oauth2_token_ttl_s <= 3600:
            raise ValueError("oauth2_token_ttl_s must be within 1..3600")

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
