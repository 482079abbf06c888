"""One per-record guard for every agent step (in the spirit of Kafka Connect's
``RetryWithToleranceOperator`` with ``errors.tolerance=all`` and a dead-letter queue).

Faust acks the events of a batch in a ``finally`` when the agent moves on, so an exception
escaping an agent body silently skips every record of the batch in hand. Every step an agent
takes with one record (ingest, emit, sink, drain split, release, expiry) therefore runs
inside a plain ``try``; an exception goes to ``Guard.failed``, which never raises, and the
agent carries on with the next record. The happy path costs nothing but the ``try``.

On a failure the guard hands a ``Failure`` (step, original record, exception) to its
reporters, in order:

- ``MetricsReporter``: ``tillbridge_guard_failures_total{stage}``;
- ``LogReporter``: the traceback, rate-limited (a bug hit by every record must not flood
  the log); suppressed ones are counted in the next line;
- ``DeadLetterReporter``: ``internal_error(src, stage, exc)`` with the ORIGINAL key/value
  bytes, headers and input coordinates, produced like any other outcome (so it is on the
  broker before the input offset is committed).

The dead letter *is* the record's outcome. One too large for the DLQ is produced in its
``payload_too_large`` form (``emit.py``). If producing it fails even so, the agents' reporter
retries with backoff (``tillbridge_dlq_produce_retries``, /ready's ``dead_letters`` check);
a reporter with bounded ``attempts`` gives up, and the record has no outcome at all.
The guard then **holds** the record: the ``hold`` callback keeps its event from being
acked (``events.hold``: one extra reference on Faust's message), so its partition's
committed offset stops right before it. The agent still goes on with the other records
(their outcomes are produced; on a restart or rebalance they are read again and come out
as duplicates, which every path handles) and ``tillbridge_guard_held_total`` says an
operator must look. Chosen over retrying in place (the same bytes are refused again: the
partition would stall with nothing else processed) and over exiting (every restart would
hit the same record: a crash loop).

A ``NetSuiteUnavailable`` is not a record failure: the sink holds and retries it before
it ever reaches the guard. Should one reach it anyway (a path that does not wait for
NetSuite), the record is held, never dead-lettered for an outage.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.health import HEALTH
from tillbridge.streams.stages.deadletter import internal_error
from tillbridge.streams.stages.messages import Outbound, Source, log_ids

log = logging.getLogger(__name__)

T = TypeVar("T")


class Failed(enum.Enum):
    """What became of a record a step failed on."""

    DEAD_LETTERED = "dead_lettered"  # its dead letter is its outcome: go on
    HELD = "held"  # no outcome could be produced: it must not be acked


@dataclass(frozen=True, slots=True)
class Failure:
    """One step that failed on one record."""

    stage: str  # the step: a DLQ stage name (decode ... sink) or emit/drain/release/expire
    src: Source  # the record as consumed from its input topic
    exc: BaseException


class Reporter(Protocol):
    """Somewhere a failure goes. ``carries_outcome``: this reporter produces the record's
    outcome; if it fails, the record is held."""

    carries_outcome: bool

    async def report(self, failure: Failure) -> None: ...


class MetricsReporter:
    carries_outcome = False

    async def report(self, failure: Failure) -> None:
        metrics.GUARD_FAILURES.labels(failure.stage).inc()


class LogReporter:
    """Tracebacks for the first ``burst`` failures of each ``window_s``, then one line per
    window saying how many were left out."""

    carries_outcome = False

    def __init__(self, logger: logging.Logger = log, *, burst: int = 5,
                 window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._burst = burst
        self._window_s = window_s
        self._clock = clock
        self._window_start = float("-inf")
        self._logged = 0
        self.suppressed = 0

    async def report(self, failure: Failure) -> None:
        now = self._clock()
        if now - self._window_start >= self._window_s:
            if self.suppressed:
                self._log.error("%d more record failures not logged in the last %.0f s",
                                self.suppressed, self._window_s)
            self._window_start, self._logged, self.suppressed = now, 0, 0
        if self._logged >= self._burst:
            self.suppressed += 1
            return
        self._logged += 1
        src = failure.src
        self._log.error("%s failed on %s[%s]@%s; dead-lettering it as internal_error",
                        failure.stage, src.topic, src.partition, src.offset,
                        exc_info=failure.exc, extra=_ids(failure))


class DeadLetterReporter:
    """Produces ``internal_error`` of the original record through ``send`` (an emitter's).

    ``attempts``: how often a failing produce is tried (None: until it succeeds), waiting
    ``backoff_s`` doubled up to ``max_backoff_s`` in between. The agents' guard retries for
    ever: a DLQ that cannot be written is an outage of its own, and waiting (said in
    ``tillbridge_dlq_produce_retries`` and /ready) beats both skipping and a crash loop."""

    carries_outcome = True

    def __init__(self, send: Callable[[Outbound], Awaitable[None]], *,
                 attempts: int | None = 1, backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0) -> None:
        self._send = send
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s

    async def report(self, failure: Failure) -> None:
        letter = internal_error(failure.src, failure.stage, failure.exc)
        delay, attempt = self._backoff_s, 1
        while True:
            try:
                await self._send(letter)
            except Exception as exc:
                if self._attempts is not None and attempt >= self._attempts:
                    raise
                metrics.DLQ_PRODUCE_RETRIES.inc()
                HEALTH.set("dead_letters", False, f"cannot produce a dead letter: {exc}")
                log.error("dead letter for %s[%s]@%s not produced (attempt %d), retrying "
                          "in %.1f s: %s", failure.src.topic, failure.src.partition,
                          failure.src.offset, attempt, delay, exc,
                          extra=_ids(failure, attempt=attempt))
                await asyncio.sleep(delay)
                delay, attempt = min(delay * 2, self._max_backoff_s), attempt + 1
                continue
            if attempt > 1:
                HEALTH.set("dead_letters", True)
            return


def _ids(failure: Failure, **more: object) -> dict[str, object]:
    """A failed record's ids for a log line (its dead letter's reason is internal_error)."""
    return log_ids(failure.src, None, stage=failure.stage, reason="internal_error", **more)


def _identity(src: Source) -> Source:
    return src


def _no_hold(_handle: Any) -> None:
    """Nothing to hold (no Faust event): the caller keeps the record itself."""


class Guard:
    """``failed()`` is where every step's exception goes; ``call``/``acall`` run a step
    inside the ``try`` for call sites that are not per-record hot loops.

    ``origin`` maps what the step saw to the record as consumed from its input topic (the
    sink's routed records carry their input coordinates in headers: ``Pipeline.origin``).
    ``hold`` keeps a handle (a Faust event) from being acked.
    """

    def __init__(self, reporters: Sequence[Reporter], *,
                 origin: Callable[[Source], Source] = _identity,
                 hold: Callable[[Any], None] = _no_hold) -> None:
        self.reporters = list(reporters)
        self._origin = origin
        self._hold = hold

    async def failed(self, stage: str, src: Source, exc: BaseException,
                     handle: Any = None) -> Failed:
        """Report one record's failure; never raises (``CancelledError`` aside)."""
        try:
            original = self._origin(src)
        except Exception:  # noqa: BLE001 - the record as seen is the next best thing
            original = src
        if isinstance(exc, NetSuiteUnavailable):
            log.warning("%s: NetSuite unavailable for %s[%s]@%s: held, not dead-lettered",
                        stage, original.topic, original.partition, original.offset,
                        extra=log_ids(original, stage=stage))
            self._held(stage, original, handle)
            return Failed.HELD
        failure = Failure(stage, original, exc)
        outcome = Failed.DEAD_LETTERED
        for reporter in self.reporters:
            try:
                await reporter.report(failure)
            except Exception:  # noqa: BLE001 - a reporter must never stop the agent
                if reporter.carries_outcome:
                    outcome = Failed.HELD
                log.critical("%s: %s could not report %s on %s[%s]@%s",
                             stage, type(reporter).__name__, type(exc).__name__,
                             original.topic, original.partition, original.offset,
                             exc_info=True, extra=log_ids(original, stage=stage))
        if outcome is Failed.HELD:
            self._held(stage, original, handle)
        return outcome

    def _held(self, stage: str, src: Source, handle: Any) -> None:
        metrics.GUARD_HELD.labels(stage).inc()
        ids = log_ids(src, stage=stage)
        log.critical("%s[%s]@%s has no outcome: not acked, so its partition is not "
                     "committed past it", src.topic, src.partition, src.offset, extra=ids)
        try:
            self._hold(handle)
        except Exception:  # noqa: BLE001 - logged; nothing else can be done here
            log.exception("holding %s[%s]@%s failed", src.topic, src.partition, src.offset,
                          extra=ids)

    async def call(self, stage: str, src: Source, fn: Callable[..., T], *args: Any,
                   handle: Any = None) -> T | Failed:
        """``fn(*args)``, or what became of ``src`` when it raised."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - never skip a record silently
            return await self.failed(stage, src, exc, handle)

    async def acall(self, stage: str, src: Source, fn: Callable[..., Awaitable[T]],
                    *args: Any, handle: Any = None) -> T | Failed:
        """``await fn(*args)``, or what became of ``src`` when it raised."""
        try:
            return await fn(*args)
        except Exception as exc:  # noqa: BLE001 - never skip a record silently
            return await self.failed(stage, src, exc, handle)


def standard(send: Callable[[Outbound], Awaitable[None]], *,
             origin: Callable[[Source], Source] = _identity,
             hold: Callable[[Any], None] = _no_hold) -> Guard:
    """The agents' guard: metrics, rate-limited log, then the dead letter."""
    return Guard([MetricsReporter(), LogReporter(), DeadLetterReporter(send, attempts=None)],
                 origin=origin, hold=hold)


#: Module prefix -> the DLQ stage an exception raised inside it belongs to.
_STAGE_MODULES = (
    ("tillbridge.connectors.kafka.serde", "decode"),
    ("tillbridge.streams.stages.decode", "decode"),
    ("tillbridge.streams.stages.validate", "validate"),
    ("tillbridge.streams.stages.enrich", "enrich"),  # enrich, enrich_order, ...
    ("tillbridge.streams.stages.route", "route"),
)


def ingest_stage(exc: BaseException, default: str = "decode") -> str:
    """The ingest stage an exception came from, for its dead letter's topic and rule: the
    outermost traceback frame in a stage module (the stage the pipeline called; what that
    stage calls in turn is its business). ``default`` when no stage module is on the
    traceback (the pipeline's own code; ``decode`` is the first ingest stage)."""
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        for prefix, stage in _STAGE_MODULES:
            if module.startswith(prefix):
                return stage
        tb = tb.tb_next
    return default
