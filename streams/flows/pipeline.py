"""The worker's collaborators (codec, mappings, reference data, NetSuite) and the per-record
handlers the Faust agents call.

Handlers never raise for a record's content: every path ends in a produced message (routed,
result or dead letter) and a counter. Anything unexpected is dead-lettered as
``internal_error`` by the agent shell in ``app.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite.aio import AiohttpTransport
from tillbridge.connectors.netsuite.breaker import BreakerState, CircuitBreaker
from tillbridge.connectors.netsuite.client import NetSuiteClient
from tillbridge.connectors.netsuite.errors import NetSuiteError, NetSuiteUnavailable
from tillbridge.connectors.netsuite.governance import ConcurrencyLimiter
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.streams.flows.base import Flow
from tillbridge.streams.flows.park import ParkEntry, parked_source, tombstone
from tillbridge.streams.flows.sale import Posted, SalePoster, promotion_audit_records, rejection_for
from tillbridge.streams.ledger.lookup import find_any
from tillbridge.streams.ledger.types import Missing, Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.auth_config import authenticator
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import route
from tillbridge.streams.stages.deadletter import dead_letter, header
from tillbridge.streams.stages.decode import decode
from tillbridge.streams.stages.duplicates import (
    H_DOUBLE_SCAN,
    DoubleScanWindow,
    fingerprint,
    partial_entry,
    sync_state,
)
from tillbridge.streams.stages.enrich import Enrichment, enrich_sale
from tillbridge.streams.stages.messages import Headers, Outbound, Source
from tillbridge.streams.stages.records import Rejection, SaleRec
from tillbridge.streams.stages.validate import validate_sale

log = logging.getLogger(__name__)

#: Headers added for the hop to the sink, dropped again by ``Pipeline.origin``.
_HOP_HEADERS = frozenset({route.H_ENRICHMENT, route.H_SRC_TOPIC, route.H_SRC_PARTITION,
                          route.H_SRC_OFFSET, H_DOUBLE_SCAN})


def _int(text: str | None, default: int) -> int:
    """A coordinate header as int; a missing or malformed one falls back (``origin`` runs
    inside the agents' error handling, where it must not raise)."""
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def default_flows() -> dict[str, Flow]:
    """Every non-sale family the sink posts (imported late: the ledger modules are big)."""
    from tillbridge.streams.flows.registry import FLOWS

    return dict(FLOWS)


@dataclass
class PendingSale:
    """A routed sale that passed the sink's checks and still has to be written."""

    origin: Source
    sale: SaleRec
    enr: Enrichment
    flags: dict[str, Any]
    dedupe_key: str
    resume: str | None  # customer id written by an earlier partial attempt


class Pipeline:
    """Built once per worker; `start()` loads reference data before any record is handled."""

    def __init__(self, settings: Settings, *, codec: AvroCodec | None = None,
                 mappings: Mappings | None = None,
                 flows: dict[str, Flow] | None = None) -> None:
        self.settings = settings
        self.flows = default_flows() if flows is None else flows
        self.codec = codec or AvroCodec(cast(str, settings.schema_registry_url))
        self.mappings = mappings or Mappings.load(settings.mappings_path)
        self.refdata = ReferenceData()
        self.refdata_version = 0
        metrics.MAPPINGS_VERSION.set(self.mappings.version)
        self.ready = asyncio.Event()
        self.client: NetSuiteClient | None = None
        self.reliable: ReliableClient | None = None
        self.poster: SalePoster | None = None
        self.breaker = CircuitBreaker(settings.netsuite_breaker_failures,
                                      settings.netsuite_breaker_cooldown_s,
                                      on_state_change=self._breaker_changed)
        self.on_breaker: list[Callable[[BreakerState], None]] = []
        metrics.breaker_state(self.breaker.state.value)
        self.double_scans = DoubleScanWindow(settings.double_scan_window_s)
        #: The parking table's entry by id (the app plugs in its lot): a re-parked event
        #: keeps its first park time, so its timeout counts from then.
        self.parked_lookup: Callable[[str], ParkEntry | None] = lambda _id: None

    async def start(self) -> None:
        """Connect to NetSuite. Reference data arrives separately (``use_refdata``): the
        worker is not ready, and handles no record, until the first snapshot is in."""
        s = self.settings
        # One limiter for every request this worker makes (sink, reference data, batch
        # polls): the worker never holds more than its share of the account's slots.
        limiter = ConcurrencyLimiter(s.netsuite_max_concurrency,
                                     on_in_flight=metrics.in_flight_hook)
        metrics.NS_CONCURRENCY_LIMIT.set(s.netsuite_max_concurrency)
        self.client = NetSuiteClient(
            cast(str, s.netsuite_base_url), authenticator(s), timeout=s.netsuite_timeout_s,
            on_request=metrics.ns_request_hook, limiter=limiter,
            transport=AiohttpTransport(max_connections=s.netsuite_max_concurrency,
                                       timeout=s.netsuite_timeout_s))
        self.reliable = ReliableClient(
            self.client,
            RetryPolicy(max_attempts=s.netsuite_max_attempts,
                        throttle_budget_s=s.netsuite_throttle_budget_s),
            breaker=self.breaker, on_retry=metrics.retry_hook,
            on_throttled=metrics.throttled_hook)
        self.poster = SalePoster(self.reliable, discount_item=self.mappings.discount_item,
                                 write_mode=s.netsuite_write_mode,
                                 sale_records=self.mappings.document.get(
                                     "sale_record_types") or {})

    def _breaker_changed(self, old: BreakerState, new: BreakerState) -> None:
        log.warning("NetSuite circuit breaker %s -> %s", old.value, new.value)
        metrics.breaker_state(new.value)
        for hook in self.on_breaker:
            hook(new)

    async def wait_for_netsuite(self, err: NetSuiteUnavailable) -> None:
        """Sleep until the next call may go through (the breaker's probe time, or the
        throttling back-off): the record is held, not dead-lettered."""
        metrics.UNAVAILABLE_WAITS.inc()
        delay = max(self.breaker.seconds_until_probe(), err.retry_after, 0.05)
        await asyncio.sleep(min(delay, 60.0) * (1 + 0.2 * random.random()))

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
        """Hot-reload: new records use the new mappings; the poster's discount item too."""
        self.mappings = mappings
        if self.poster is not None:
            self.poster.discount_item = mappings.discount_item
            self.poster.sale_records = mappings.document.get("sale_record_types") or {}
        metrics.MAPPINGS_VERSION.set(mappings.version)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    # -- ingest: decode -> validate -> enrich -> route ------------------------------------
    def ingest(self, src: Source) -> Outbound:
        metrics.CONSUMED.labels(src.topic).inc()
        flow = self.flows.get(src.topic)
        if flow is not None:
            return self.ingest_flow(flow, src)
        sale = self._decode(src)
        if isinstance(sale, Outbound):
            return sale
        rejection = validate_sale(sale)
        if rejection is not None:
            return dead_letter(src, rejection)
        metrics.VALIDATED.labels(src.topic).inc()
        enriched = enrich_sale(sale, self.mappings, self.refdata,
                               tax_tolerance_cents=self.settings.tax_tolerance_cents)
        if isinstance(enriched, Rejection):
            return dead_letter(src, enriched)
        dest = route.destination(src.topic)
        if isinstance(dest, Rejection):
            return dead_letter(src, dest)
        metrics.ROUTED.labels(src.topic, dest).inc()
        headers = self._hop_headers(src, (route.H_ENRICHMENT, enriched.to_json()))
        earlier = self.double_scans.check(
            fingerprint(sale), f"{sale['store_id']}/{sale['pos_transaction_id']}",
            sale["completed_at"].timestamp())
        if earlier is not None:
            # Possibly the same basket scanned twice: still posted, flagged and counted.
            metrics.DOUBLE_SCANS.labels(src.topic).inc()
            headers.append((H_DOUBLE_SCAN, earlier.encode()))
        return Outbound(dest, src.key, src.value, headers)

    def _decode(self, src: Source) -> Any | Outbound:
        return decode(self.codec, src)

    @staticmethod
    def _hop_headers(src: Source, *extra: tuple[str, bytes]) -> Headers:
        """The routed record's headers: the input's, ``extra``, then its coordinates."""
        return [*((k, v) for k, v in src.headers if v is not None), *extra,
                (route.H_SRC_TOPIC, src.topic.encode()),
                (route.H_SRC_PARTITION, str(src.partition).encode()),
                (route.H_SRC_OFFSET, str(src.offset).encode())]

    def ingest_flow(self, flow: Flow, src: Source) -> Outbound:
        """Decode, resolve (the family's validate + enrich rules), route under the key of
        the record the event depends on."""
        event = self._decode(src)
        if isinstance(event, Outbound):
            return event
        refs = flow.resolve(event, self.mappings, self.refdata)
        if isinstance(refs, Rejection):
            return dead_letter(src, refs)
        metrics.VALIDATED.labels(src.topic).inc()
        dest = route.destination(src.topic)
        if isinstance(dest, Rejection):
            return dead_letter(src, dest)
        metrics.ROUTED.labels(src.topic, dest).inc()
        return Outbound(dest, flow.route_key(event), src.value, self._hop_headers(src))

    async def sink_flow(self, flow: Flow, origin: Source, src: Source) -> list[Outbound]:
        """Post one routed non-sale event: records, a parking entry, or a skip note."""
        event = self._decode(origin)
        if isinstance(event, Outbound):
            return [event]
        # Resolved again: reference data may have changed since ingest (cheap, pure).
        refs = flow.resolve(event, self.mappings, self.refdata)
        if isinstance(refs, Rejection):
            return [dead_letter(origin, refs)]
        assert self.reliable is not None, "Pipeline.start() not awaited"
        ids = flow.ids(event)
        try:
            outcome = await flow.post(self.reliable, event, refs)
        except NetSuiteError as err:
            where = str(err.url_path or "").rsplit("/record/v1/", 1)[-1].split("/", 1)[0]
            rejection = rejection_for(err, where or flow.kind, ids.get("external_id", ""))
            return [dead_letter(origin, rejection, details=err.details)]
        if isinstance(outcome, Missing):
            return self._park(flow, event, origin, src, ids, outcome)
        if isinstance(outcome, Skipped):
            metrics.SKIPPED.labels(origin.topic).inc()
            audit = [Outbound(t, k, v) for t, k, v in (flow.audit(event, outcome)
                                                        if flow.audit else [])]
            return [self._flow_result(flow, event, ids, "skipped", why=outcome.why), *audit]
        for written in outcome.records:
            if written.created:
                metrics.POSTED.labels(written.record_type).inc()
        label = "posted" if outcome.created else "updated" if outcome.updated else "duplicate"
        if label == "duplicate":
            metrics.DUPLICATES.labels(origin.topic).inc()
        elif outcome.created:
            when = flow.event_time(event)
            if when is not None:
                metrics.EVENT_TO_RECORD.observe(max(0.0, time.time() - when.timestamp()))
        result = self._flow_result(
            flow, event, ids, label,
            records=[{"record_type": w.record_type, "netsuite_id": w.netsuite_id,
                      "external_id": w.external_id, "created": w.created, **w.links}
                     for w in outcome.records])
        result.written = tuple(w.external_id for w in outcome.records)
        return [result]

    def _park(self, flow: Flow, event: Any, origin: Source, src: Source,
              ids: dict[str, Any], missing: Missing) -> list[Outbound]:
        now = time.time()
        entry_id = f"{origin.topic}/{origin.partition}/{origin.offset}"
        # Parked before (a replay after a restart, or a release that is still missing
        # something): keep the first park time, so the timeout counts from it.
        first = self.parked_lookup(entry_id)
        since = first.parked_at if first is not None else now
        entry = ParkEntry(entry_id, missing.dependency, missing.record_types,
                          since, since + self.settings.park_timeout_s,
                          src.partition, src.key, src.value, tuple(src.headers),
                          missing.detail)
        metrics.PARK_OUTCOMES.labels("parked").inc()
        return [Outbound(topics.PARKED, entry_id.encode(), entry.to_json(), parked=entry),
                self._flow_result(flow, event, ids, "parked", waiting_for=missing.dependency)]

    def expire(self, entry: ParkEntry, now: float) -> list[Outbound]:
        """A parked event whose dependency never came: its dead letter, off the table."""
        metrics.PARK_OUTCOMES.labels("expired").inc()
        return [self.orphan(entry, now), Outbound(*tombstone(entry.id))]

    def orphan(self, entry: ParkEntry, now: float) -> Outbound:
        """The dead letter for a parked event whose dependency never came."""
        src = self.origin(parked_source(entry))
        waited = int(now - entry.parked_at)
        rejection = Rejection(
            "sink", "orphan_dependency", "park.dependency_timeout",
            f"waited {waited} s for NetSuite record {entry.dependency} "
            f"({'/'.join(entry.record_types)}); {entry.detail}".strip("; "),
            {"dependency": entry.dependency, "record_types": ",".join(entry.record_types),
             "parked_at": datetime.fromtimestamp(entry.parked_at, UTC).isoformat(),
             "waited_s": str(waited)})
        return dead_letter(src, rejection)

    async def dependency_exists(self, entry: ParkEntry) -> bool:
        """Is the record a parked event waits for in NetSuite by now (any of its types)?"""
        assert self.reliable is not None, "Pipeline.start() not awaited"
        return await find_any(self.reliable, entry.dependency, entry.record_types) is not None

    @staticmethod
    def _flow_result(flow: Flow, event: Any, ids: dict[str, Any], outcome: str,
                     **extra: Any) -> Outbound:
        when = flow.event_time(event)
        doc = {"event_type": flow.kind, **ids, "outcome": outcome, **extra,
               "event_time": when.isoformat() if when is not None else None,
               "result_time": datetime.now(UTC).isoformat(timespec="milliseconds")}
        key = str(ids.get("pos_transaction_id") or ids.get("external_id") or "").encode()
        return Outbound(topics.RESULTS, key, json.dumps(doc).encode(),
                        [("tillbridge.outcome", outcome.encode())])

    # -- sink: post to NetSuite -----------------------------------------------------------
    @staticmethod
    def origin(src: Source) -> Source:
        """The record as it was on its input topic (for DLQ coordinates after the hop)."""
        hdr = src.headers
        return Source(header(hdr, route.H_SRC_TOPIC) or src.topic,
                      _int(header(hdr, route.H_SRC_PARTITION), src.partition),
                      _int(header(hdr, route.H_SRC_OFFSET), src.offset),
                      src.key, src.value, [(k, v) for k, v in hdr if k not in _HOP_HEADERS])

    async def sink_all(self, src: Source, posted: Any) -> list[Outbound]:
        """Post one routed sale; ``posted`` is the dedupe table (POS txn key -> state).

        Returns the result (or dead letter) first, then, for a newly created cashSale, one
        message per discount/promotion for ``tillbridge.audit.promotions.v1``.
        """
        origin = self.origin(src)
        flow = self.flows.get(origin.topic)
        if flow is not None:
            return await self.sink_flow(flow, origin, src)
        pending = self.prepare_sale(origin, src, posted)
        if not isinstance(pending, PendingSale):
            return pending
        assert self.poster is not None, "Pipeline.start() not awaited"
        outcome = await self.poster.post(pending.sale, pending.enr, customer_id=pending.resume)
        return self.settle_sale(pending, outcome, posted)

    def drainable(self, src: Source) -> bool:
        """A routed record that came from the sales topic (the drain's business)."""
        topic = header(src.headers, route.H_SRC_TOPIC) or src.topic
        return topic == topics.SALE.name

    def prepare_sale(self, origin: Source, src: Source,
                     posted: Any) -> PendingSale | list[Outbound]:
        """Decode, enrichment (from the routed header), dedupe: a sale ready to post, or
        its outcome already (dead letter, or a duplicate of a completed sale)."""
        sale = cast(SaleRec, self.codec.decode(src.value or b"", origin.topic))
        raw = header(src.headers, route.H_ENRICHMENT)
        enr = Enrichment.from_json(raw.encode()) if raw else enrich_sale(
            sale, self.mappings, self.refdata,
            tax_tolerance_cents=self.settings.tax_tolerance_cents)
        if isinstance(enr, Rejection):
            return [dead_letter(origin, enr)]
        flags: dict[str, Any] = {"double_scan_of": header(src.headers, H_DOUBLE_SCAN)}
        dedupe_key = f"{sale['store_id']}/{sale['pos_transaction_id']}"
        previous = posted.get(dedupe_key)
        state = sync_state(previous)
        if state == "complete":
            metrics.DUPLICATES.labels(origin.topic).inc()
            dup = self._result(sale, "duplicate", previous, None, flags)
            dup.written = (previous["external_id"],)
            return [dup]
        resume = previous["customer_id"] if state == "partial" else None
        return PendingSale(origin, sale, enr, flags, dedupe_key, resume)

    def settle_sale(self, p: PendingSale, outcome: Posted | tuple[Rejection, object],
                    posted: Any) -> list[Outbound]:
        """The outbound messages for a sale's NetSuite outcome; records it for dedupe."""
        if isinstance(outcome, tuple):
            rejection, details = outcome
            written = rejection.inputs.get("customer_id")
            if written:
                # Customer written, cashSale not: a partial sync, completed on the next try.
                posted[p.dedupe_key] = partial_entry(written, p.enr.customer.external_id)
            return [dead_letter(p.origin, rejection, details=details)]
        posted[p.dedupe_key] = {"netsuite_id": outcome.netsuite_id,
                                "record_type": outcome.record_type,
                                "external_id": outcome.external_id}
        if p.resume is not None:
            metrics.PARTIAL_COMPLETED.inc()
            p.flags["completed_partial"] = True
        if not outcome.created:
            # NetSuite already held this externalId: an earlier attempt (before a restart,
            # or a duplicate our table had not seen) landed. Nothing new was created.
            metrics.DUPLICATES.labels(p.origin.topic).inc()
            dup = self._result(p.sale, "duplicate", posted[p.dedupe_key], outcome, p.flags)
            dup.written = (outcome.external_id,)
            return [dup]
        metrics.POSTED.labels(outcome.record_type).inc()
        metrics.EVENT_TO_RECORD.observe(
            max(0.0, time.time() - p.sale["completed_at"].timestamp()))
        result = self._result(p.sale, "posted", posted[p.dedupe_key], outcome, p.flags)
        result.written = (outcome.external_id,)  # releases what waits on this sale
        return [result, *self._promotion_audit(p.sale, outcome)]

    @staticmethod
    def _promotion_audit(sale: SaleRec, outcome: Posted) -> list[Outbound]:
        key = outcome.external_id.encode()
        return [Outbound(topics.AUDIT_PROMOTIONS, key, json.dumps(rec).encode(),
                         [("tillbridge.record", b"promotion")])
                for rec in promotion_audit_records(sale, outcome.external_id,
                                                   outcome.netsuite_id)]

    @staticmethod
    def _result(sale: SaleRec, outcome: str, record: dict[str, str],
                posted: Posted | None, flags: dict[str, Any] | None = None) -> Outbound:
        doc = {
            "pos_transaction_id": sale["pos_transaction_id"],
            "store_id": sale["store_id"],
            "register_id": sale["register_id"],
            "outcome": outcome,
            **record,
            "customer_id": posted.customer_id if posted else None,
            "customer_rule": posted.customer_rule if posted else None,
            "customer_enriched": posted.customer_enriched if posted else False,
            **{k: v for k, v in (flags or {}).items() if v},
            "event_time": sale["completed_at"].isoformat(),
            "result_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        return Outbound(topics.RESULTS, sale["pos_transaction_id"].encode(),
                        json.dumps(doc).encode(), [("tillbridge.outcome", outcome.encode())])
