"""The worker's collaborators (codec, mappings, reference data, NetSuite) and the two per-record
handlers the Faust agents call, for every event family alike:

- ``ingest(src)``: decode -> the family's rules (``flow.resolve``) -> route under the key of
  the record it depends on (``flows/ingest.py``);
- ``sink_all(src, state)``: decode -> ``flow.sink_refs`` -> ``flow.post`` -> what the outcome
  becomes on Kafka (``flows/sink.py``).

Handlers never raise for a record's content: every path ends in a produced message (routed,
result or dead letter) and a counter. Anything unexpected is dead-lettered as
``internal_error`` by the agent shell's guard (``runtime/``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, cast

from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite.aio import AiohttpTransport
from tillbridge.connectors.netsuite.breaker import BreakerState, CircuitBreaker
from tillbridge.connectors.netsuite.client import NetSuiteClient
from tillbridge.connectors.netsuite.errors import NetSuiteError, NetSuiteUnavailable
from tillbridge.connectors.netsuite.governance import ConcurrencyLimiter
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.streams.flows import sink
from tillbridge.streams.flows.base import Flow, Lookups, SinkContext
from tillbridge.streams.flows.ingest import ingest
from tillbridge.streams.flows.park import ParkEntry, parked_source, tombstone
from tillbridge.streams.flows.registry import default_flows
from tillbridge.streams.flows.stamp import StampedClient, confirm_replay, source_ref
from tillbridge.streams.ledger.lookup import dependency_exists
from tillbridge.streams.ledger.types import Posting
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.runtime import health, metrics
from tillbridge.streams.runtime.auth_config import authenticator
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import route
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.decode import decode
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection

log = logging.getLogger(__name__)


class Pipeline:
    """Built once per worker; `start()` connects to NetSuite, and no record is handled before
    the first reference snapshot is in (``ready``)."""

    def __init__(self, settings: Settings, *, codec: AvroCodec | None = None,
                 mappings: Mappings | None = None,
                 flows: dict[str, Flow] | None = None) -> None:
        self.settings = settings
        self.flows = default_flows(settings.double_scan_window_s,
                                   settings.reconcile_drift_threshold_cents) \
            if flows is None else flows
        self.codec = codec or AvroCodec(cast(str, settings.schema_registry_url))
        self.mappings = mappings or Mappings.load(settings.mappings_path)
        self.refdata = ReferenceData()
        self.refdata_version = 0
        self._lookups = Lookups(self.mappings, self.refdata, settings.tax_tolerance_cents)
        metrics.MAPPINGS_VERSION.set(self.mappings.version)
        self.ready = asyncio.Event()
        self.client: NetSuiteClient | None = None
        self.reliable: ReliableClient | None = None
        self.breaker = CircuitBreaker(settings.netsuite_breaker_failures,
                                      settings.netsuite_breaker_cooldown_s,
                                      probe_max_s=max(0.5, settings.netsuite_breaker_probe_max_s),
                                      on_state_change=self._breaker_changed)
        #: set while the breaker is closed: held records wake the moment a probe succeeds
        self._netsuite_up = asyncio.Event()
        self._netsuite_up.set()
        self.on_breaker: list[Callable[[BreakerState], None]] = []
        metrics.breaker_state(self.breaker.state.value)
        #: The parking table's entry by id (the app plugs in its lot): a re-parked event
        #: keeps its first park time, so its timeout counts from then.
        self.parked_lookup: Callable[[str], ParkEntry | None] = lambda _id: None

    async def start(self) -> None:
        """Connect to NetSuite. Reference data arrives separately (``use_refdata``)."""
        s = self.settings
        # One limiter for every request this worker makes (sink, reference data, batch
        # polls): the worker never holds more than its share of the account's slots.
        limiter = ConcurrencyLimiter(s.netsuite_max_concurrency,
                                     on_in_flight=metrics.in_flight_hook)
        metrics.NS_CONCURRENCY_LIMIT.set(s.netsuite_max_concurrency)
        self.client = NetSuiteClient(
            cast(str, s.netsuite_base_url), authenticator(s), timeout=s.netsuite_timeout_s,
            on_request=health.ns_request_hook, limiter=limiter,
            transport=AiohttpTransport(max_connections=s.netsuite_max_concurrency,
                                       timeout=s.netsuite_timeout_s))
        self.reliable = ReliableClient(
            self.client,
            RetryPolicy(max_attempts=s.netsuite_max_attempts,
                        throttle_budget_s=s.netsuite_throttle_budget_s),
            breaker=self.breaker, on_retry=metrics.retry_hook,
            on_throttled=metrics.throttled_hook)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    def _breaker_changed(self, old: BreakerState, new: BreakerState) -> None:
        log.warning("NetSuite circuit breaker %s -> %s", old.value, new.value)
        metrics.breaker_state(new.value)
        if new is BreakerState.CLOSED:
            self._netsuite_up.set()
        else:
            self._netsuite_up.clear()
        for hook in self.on_breaker:
            hook(new)

    async def wait_for_netsuite(self, err: NetSuiteUnavailable) -> None:
        """Wait until the next call may go through (the breaker's probe time, or the
        throttling back-off), or until a probe closes the breaker, whichever comes first:
        the record is held, not dead-lettered, and goes on as soon as NetSuite is back."""
        metrics.UNAVAILABLE_WAITS.inc()
        delay = max(self.breaker.seconds_until_probe(), err.retry_after, 0.05)
        delay = min(delay, 60.0) * (1 + 0.2 * random.random())
        if self._netsuite_up.is_set():  # throttled, not broken: just back off
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._netsuite_up.wait(), delay)

    # -- reference data and mappings ---------------------------------------------------------
    @property
    def lookups(self) -> Lookups:
        """Mappings and snapshot as one consistent view (rebuilt only when either is
        swapped: by a refresh, a hot reload, or a test assigning them)."""
        lk = self._lookups
        if lk.mappings is not self.mappings or lk.refdata is not self.refdata:
            lk = self._lookups = Lookups(self.mappings, self.refdata,
                                         self.settings.tax_tolerance_cents)
        return lk

    def use_refdata(self, ref: ReferenceData, version: int) -> None:
        """Swap in a new reference snapshot (whole object: a record sees one snapshot)."""
        if not ref.ready:
            return
        self.refdata = ref
        self.refdata_version = version
        metrics.REFDATA_ITEMS.set(len(ref.items))
        metrics.REFDATA_VERSION.set(version)
        if not self.ready.is_set():
            metrics.READY.set(1)
            log.info("reference data v%d: %d items, %d customers; mappings v%s", version,
                     len(ref.items), len(ref.customers), self.mappings.version)
            self.ready.set()

    def use_mappings(self, mappings: Mappings) -> None:
        """Hot reload: records from now on use the new mappings."""
        self.mappings = mappings
        metrics.MAPPINGS_VERSION.set(mappings.version)

    # -- the two handlers --------------------------------------------------------------------
    def ingest(self, src: Source) -> Outbound:
        """Decode, the family's rules, route: the routed record or a dead letter."""
        return ingest(self.flows, self.codec, self.lookups, src)

    @staticmethod
    def origin(src: Source) -> Source:
        """The record as it was on its input topic (for DLQ coordinates after the hop)."""
        return route.origin(src)

    def drainable(self, src: Source) -> bool:
        """A routed record whose family can be written by async batch jobs (the drain)."""
        flow = self.flows.get(route.origin(src).topic)
        return flow is not None and flow.drainable

    def context(self, state: MutableMapping[str, Any],
                at: Callable[[int], None] = lambda _i: None, source: str = "") -> SinkContext:
        """What a flow's post may use; with ``source`` (the event's input coordinates) the
        transactions it writes are stamped with them (``flows/stamp.py``)."""
        assert self.reliable is not None, "Pipeline.start() not awaited"
        client = StampedClient(self.reliable, source) if source else self.reliable
        return SinkContext(client, state, self.lookups, self.settings.netsuite_write_mode, at)

    def prepare(self, src: Source) -> tuple[Flow, Source, Any, Any] | Outbound:
        """The sink's first steps for one routed record: its flow, its origin, the decoded
        event and the flow's refs; or the dead letter that ends it here."""
        origin = route.origin(src)
        flow = self.flows.get(origin.topic)
        if flow is None:
            dest = route.destination(origin.topic)
            assert isinstance(dest, Rejection), "a routed topic has a flow"
            return dead_letter(origin, dest)
        event = decode(self.codec, origin)
        if isinstance(event, Outbound):
            return event
        refs = flow.sink_refs(event, src.headers, self.lookups)
        if isinstance(refs, Rejection):
            return dead_letter(origin, refs)
        return flow, origin, event, refs

    async def sink_all(self, src: Source, state: MutableMapping[str, Any]) -> list[Outbound]:
        """Post one routed event; ``state`` is the worker's dedupe table. Raises
        ``NetSuiteUnavailable`` when the caller should hold the record and try again."""
        ready = self.prepare(src)
        if isinstance(ready, Outbound):
            return [ready]
        flow, origin, event, refs = ready
        source = source_ref(origin.topic, origin.partition, origin.offset)
        ctx = self.context(state, source=source)
        try:
            outcome = await flow.post(ctx, event, refs)
            if isinstance(outcome, Posting) and not flow.checks_replays:
                outcome = await confirm_replay(ctx.client, outcome, source)
        except NetSuiteError as err:
            outcome = sink.refused(flow, event, err)
        return self.messages(flow, event, origin, src, outcome)

    def messages(self, flow: Flow, event: Any, origin: Source, src: Source,
                 outcome: Any) -> list[Outbound]:
        return sink.messages(flow, event, origin, src, outcome,
                             parked_lookup=self.parked_lookup,
                             park_timeout_s=self.settings.park_timeout_s)

    # -- parking -----------------------------------------------------------------------------
    def expire(self, entry: ParkEntry, now: float) -> list[Outbound]:
        """A parked event whose dependency never came: its dead letter, off the table."""
        metrics.PARK_OUTCOMES.labels("expired").inc()
        return [self.orphan(entry, now), Outbound(*tombstone(entry.id))]

    def orphan(self, entry: ParkEntry, now: float) -> Outbound:
        """The dead letter for a parked event whose dependency never came."""
        waited = int(now - entry.parked_at)
        rejection = Rejection(
            Stage.SINK, ReasonCode.ORPHAN_DEPENDENCY, "park.dependency_timeout",
            f"waited {waited} s for NetSuite record {entry.dependency} "
            f"({'/'.join(entry.record_types)}); {entry.detail}".strip("; "),
            {"dependency": entry.dependency, "record_types": ",".join(entry.record_types),
             "parked_at": datetime.fromtimestamp(entry.parked_at, UTC).isoformat(),
             "waited_s": str(waited)})
        return dead_letter(route.origin(parked_source(entry)), rejection)

    async def dependency_exists(self, entry: ParkEntry) -> bool:
        """Is the record a parked event waits for in NetSuite by now (any of its types)?"""
        assert self.reliable is not None, "Pipeline.start() not awaited"
        return await dependency_exists(self.reliable, entry.dependency, entry.record_types)
