"""Retry, idempotency and fail-fast policy around ``NetSuiteClient`` (``ReliableClient``).

The policy dispatches on the error's class (``errors`` draws the tree); the label in
brackets is what ``on_retry`` and the retries metric report:

- ``Throttled`` (429, ``throttled``): NetSuite is busy, the event is fine. Back off with
  full-jitter exponential delays and retry; these retries do *not* use the event's failure
  attempts, they draw on a separate budget measured in time (``throttle_budget_s``). When
  that runs out the caller gets ``NetSuiteUnavailable`` (wait), never a dead-letter verdict.
- ``AmbiguousFailure`` (``ServerError``, ``TimedOut``, ``ConnectionFailed``: labels
  ``server_error``, ``timeout``, ``connection``): retried up to ``max_attempts`` with
  full-jitter backoff; they also feed the circuit breaker. When the attempts are spent the
  verdict depends on the rest of the traffic: if NetSuite answered any other request since
  this call began, this record is the problem (the error is raised, dead-lettered); if it
  answered nothing, NetSuite is down (``NetSuiteUnavailable``: wait, never dead-letter).
  On a write the attempt may have landed, so ``create_idempotent`` looks the record up by
  externalId before trying again.
- ``AuthFailed`` 401: with TBA usually a stale nonce/timestamp, with OAuth 2.0 an expired
  token; the request is re-authorized and sent once more (``auth_refresh``). A second 401,
  or a 403, is raised.
- ``AlreadyExists`` on create: an earlier attempt landed, the existing id is returned
  (``lookup``).
- ``Rejected``: raised at once; ``err.details`` holds ``o:errorDetails`` verbatim for the
  dead letter.

Delays use "full jitter" (uniform in ``[0, min(cap, base * 2**n))``) drawn from one shared
random source, so tasks and workers that were throttled together spread out instead of
returning in lock-step (Oracle: do not synchronise retries). Clock, sleep and random are
injected so tests are deterministic.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tillbridge.connectors.netsuite.breaker import CircuitBreaker
from tillbridge.connectors.netsuite.client import NetSuiteClient, eid
from tillbridge.connectors.netsuite.errors import (
    AlreadyExists,
    AmbiguousFailure,
    AuthFailed,
    Label,
    NetSuiteError,
    NetSuiteUnavailable,
    NotFound,
    Throttled,
)

T = TypeVar("T")
Reason = Label
"""Kept as an alias: the labels were called reasons here before they moved to the classes."""
RetryHook = Callable[[str, float], None]
"""``on_retry(reason, delay_s)``: an error class's ``label`` or ``auth_refresh`` / ``lookup``."""
ThrottleHook = Callable[[], None]
"""``on_throttled()``: once per 429 received."""


def classify(err: NetSuiteError) -> Reason:
    """The error's metrics label. Kept for callers of the old classifier: the class
    already decided, so this only reads ``err.label``."""
    return err.label


def full_jitter(attempt: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Uniform delay in ``[0, min(cap, base * 2**attempt))``; ``attempt`` counts from 0."""
    return rand() * min(cap, base * 2 ** min(attempt, 62))


@dataclass(frozen=True)
class RetryPolicy:
    """Knobs. Defaults follow Oracle's sample (5 attempts, growing, unsynchronised delays)."""

    max_attempts: int = 5  # failures (5xx/timeout/connection) an event may use, first try incl.
    base_delay_s: float = 0.2
    max_delay_s: float = 10.0
    throttle_base_s: float = 0.1
    throttle_max_s: float = 5.0
    throttle_budget_s: float = 300.0  # time one call may spend being throttled


def _noop_retry(reason: str, delay: float) -> None:
    return None


def _noop_throttle() -> None:
    return None


class _Call:
    """Per-call retry state (attempts used, throttle clock, whether re-authorized)."""

    def __init__(self, successes_before: int = 0) -> None:
        self.successes_before = successes_before  # breaker.successes when the call began
        self.failures = 0
        self.throttles = 0
        self.throttled_since: float | None = None
        self.reauthorized = False
        self.lookup_first = False
        self.must_exist: AlreadyExists | None = None
        self.found_existing = False  # answered by a look-up after "already exists"


class ReliableClient:
    """``NetSuiteClient`` plus retry, idempotent create, 401 refresh and a circuit breaker.

    Raises ``NetSuiteUnavailable`` when the caller should wait (breaker open, throttling
    budget spent) and a ``NetSuiteError`` when the event itself failed (``Rejected``,
    ``AuthFailed``, or ``max_attempts`` ``AmbiguousFailure``s in a row while NetSuite
    answered other requests).
    """

    def __init__(
        self,
        client: NetSuiteClient,
        policy: RetryPolicy | None = None,
        *,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        on_retry: RetryHook | None = None,
        on_throttled: ThrottleHook | None = None,
    ) -> None:
        self.client = client
        self.policy = policy or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._on_retry = on_retry or _noop_retry
        self._on_throttled = on_throttled or _noop_throttle

    def __repr__(self) -> str:
        return f"ReliableClient({self.client!r}, breaker={self.breaker.state.value})"

    # -- operations -----------------------------------------------------------------------

    async def create_idempotent(
        self, record_type: str, external_id: str, body: dict[str, Any]
    ) -> str:
        """POST a record carrying ``externalId``; never creates it twice.

        After an ambiguous failure (timeout, connection drop, 5xx: the server may have
        committed) the next step is ``GET {type}/eid:{X}``: found means created, so its id
        is returned. A 400 "already exists" is answered the same way. Relying on that 400
        alone is not enough: its wording for transactions is unconfirmed.
        """
        return (await self.create_or_find(record_type, external_id, body))[0]

    async def create_or_find(
        self, record_type: str, external_id: str, body: dict[str, Any]
    ) -> tuple[str, bool]:
        """``create_idempotent`` that also says whether *this* call created the record:
        ``(id, False)`` when NetSuite already held the externalId before it (a replay or a
        duplicate delivery). A look-up after an ambiguous timeout that finds the record
        counts as created: the timed-out attempt is what landed."""
        payload = {**body, "externalId": external_id}
        result, state = await self._run(
            lambda: self.client.create(record_type, payload),
            lambda: self.find_id(record_type, external_id))
        return result, not state.found_existing

    async def transform_or_find(
        self, from_type: str, from_id: str, to_type: str, external_id: str,
        body: dict[str, Any] | None = None,
    ) -> tuple[str, bool]:
        """``transform_idempotent`` plus whether this call created the record."""
        payload = {**(body or {}), "externalId": external_id}
        result, state = await self._run(
            lambda: self.client.transform(from_type, from_id, to_type, payload),
            lambda: self.find_id(to_type, external_id))
        return result, not state.found_existing

    async def transform_idempotent(
        self, from_type: str, from_id: str, to_type: str, external_id: str,
        body: dict[str, Any] | None = None,
    ) -> str:
        """``!transform`` carrying ``externalId``, under the same never-twice rule as
        ``create_idempotent``: an ambiguous failure or "already exists" is answered by a
        look-up of ``{to_type}/eid:{external_id}``."""
        return (await self.transform_or_find(from_type, from_id, to_type, external_id,
                                             body))[0]

    async def patch(self, record_type: str, id_or_eid: str, body: dict[str, Any], *,
                    replace: str | None = None) -> None:
        """PATCH under the policy (idempotent by nature: the same fields set again)."""
        await self.call(lambda: self.client.patch(record_type, id_or_eid, body,
                                                  replace=replace))

    async def upsert(
        self,
        record_type: str,
        external_id: str,
        body: dict[str, Any],
        *,
        replace: str | None = None,
    ) -> str:
        """PUT ``{type}/eid:{X}`` under the same policy; returns the internal id.

        A PUT by externalId is idempotent on the server, so an ambiguous failure is simply
        sent again rather than answered by a look-up: a look-up would find a record that
        already existed and report success for an update that may never have landed.
        Pass ``replace`` for sublists (e.g. ``"item"``) or a replay appends the lines.
        """

        async def op() -> str:
            internal_id = await self.client.upsert(record_type, external_id, body,
                                                   replace=replace)
            if internal_id is None:  # only with resolve_id=False, which is not used here
                raise RuntimeError(f"no id for {record_type} eid:{external_id}")
            return internal_id

        return await self.call(op)

    async def get(self, record_type: str, id_or_eid: str, expand: bool = False) -> dict[str, Any]:
        return await self.call(lambda: self.client.get(record_type, id_or_eid, expand))

    async def suiteql(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
        return await self.call(lambda: self.client.suiteql(query, **kwargs))

    async def find_id(self, record_type: str, external_id: str) -> str | None:
        """Internal id of the record with this externalId, ``None`` if there is none (404)."""
        try:
            record = await self.client.get(record_type, eid(external_id))
        except NotFound:
            return None
        return str(record["id"])

    # -- policy ---------------------------------------------------------------------------

    async def call(
        self,
        op: Callable[[], Awaitable[T]],
        *,
        lookup: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``op`` under the policy. ``lookup`` makes a write idempotent: it runs before
        any retry that follows an ambiguous failure, and after "already exists"."""
        result, _ = await self._run(op, lookup)
        return result

    async def _run(
        self,
        op: Callable[[], Awaitable[T]],
        lookup: Callable[[], Awaitable[T | None]] | None,
    ) -> tuple[T, _Call]:
        state = _Call(self.breaker.successes)
        while True:
            use_lookup = lookup is not None and (state.lookup_first or state.must_exist)
            try:
                if use_lookup:
                    assert lookup is not None
                    found = await self._attempt(lookup)
                    if found is not None:
                        state.found_existing = state.must_exist is not None
                        return found, state
                    if state.must_exist is not None:
                        # "already exists" but not under this type: the externalId is taken
                        # by another record of the same group. Nothing to retry.
                        raise state.must_exist
                    state.lookup_first = False
                    continue
                return await self._attempt(op), state
            except NetSuiteError as err:
                if err is state.must_exist:
                    raise
                await self._handle(err, state, lookup is not None)

    async def _handle(self, err: NetSuiteError, state: _Call, is_write: bool) -> None:
        """Sleep and return to retry, or raise: the whole decision table in one place."""
        if isinstance(err, Throttled):
            await self._throttled(err, state)
            return
        if isinstance(err, AuthFailed) and err.status == 401 and not state.reauthorized:
            state.reauthorized = True
            self.client.invalidate_auth()
            self._on_retry("auth_refresh", 0.0)
            return
        if isinstance(err, AlreadyExists) and is_write:
            state.must_exist = err
            self._on_retry("lookup", 0.0)
            return
        if isinstance(err, AmbiguousFailure):
            await self._ambiguous(err, state, is_write)
            return
        raise err

    async def _throttled(self, err: Throttled, state: _Call) -> None:
        """Back off on the call's time budget; past it the caller must wait, not fail."""
        self._on_throttled()
        now = self._clock()
        if state.throttled_since is None:
            state.throttled_since = now
        spent = now - state.throttled_since
        if spent >= self.policy.throttle_budget_s:
            raise NetSuiteUnavailable("throttled (429) beyond budget",
                                      self.policy.throttle_max_s) from err
        delay = full_jitter(state.throttles, self.policy.throttle_base_s,
                            self.policy.throttle_max_s, self._rand)
        delay = min(delay, self.policy.throttle_budget_s - spent)
        state.throttles += 1
        await self._pause(err.label, delay)

    async def _ambiguous(self, err: AmbiguousFailure, state: _Call, is_write: bool) -> None:
        """Use one of the event's attempts; when they are spent, decide between this
        record's fault (raise ``err``) and an outage (``NetSuiteUnavailable``)."""
        state.failures += 1
        if state.failures >= self.policy.max_attempts:
            if self.breaker.successes == state.successes_before:
                # Nothing NetSuite answered since this call began: an outage, not a
                # bad record. Wait (pause) rather than dead-letter the event.
                raise NetSuiteUnavailable(f"{err.label} x{state.failures}, no request "
                                          "answered meanwhile",
                                          self.breaker.seconds_until_probe()) from err
            raise err
        state.lookup_first = is_write
        delay = full_jitter(state.failures - 1, self.policy.base_delay_s,
                            self.policy.max_delay_s, self._rand)
        await self._pause(err.label, delay)

    async def _pause(self, reason: str, delay: float) -> None:
        self._on_retry(reason, delay)
        await self._sleep(delay)

    async def _attempt(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One HTTP step through the breaker (which may refuse it with NetSuiteUnavailable)."""
        self.breaker.before_call()
        try:
            result = await fn()
        except Throttled:
            self.breaker.record_neutral()  # up and busy: says nothing about health
            raise
        except AmbiguousFailure:
            self.breaker.record_failure()
            raise
        except NetSuiteError:
            self.breaker.record_success()  # NetSuite answered; the request was wrong
            raise
        except BaseException:
            self.breaker.record_neutral()
            raise
        self.breaker.record_success()
        return result
