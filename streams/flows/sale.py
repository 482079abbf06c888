"""The sale flow: a POS sale becomes a cashSale (or salesOrder), once.

Ingest runs the sale rules (``stages/validate.py``, then ``stages/enrich.py``) and hands
the enrichment to the sink in a hop header, with a double-scan flag when the same basket
came in under another transaction id within ``TILLBRIDGE_DOUBLE_SCAN_WINDOW_S``. The sink
checks the dedupe table (``stages/duplicates.py``: POS transaction -> NetSuite record) first:

- complete: a ``duplicate`` outcome, no request; unless the content differs from the
  posted version's (``stages/resend.py``): a ``conflicting_resend`` dead letter;
- partial (customer written, sale record not): only the sale record is posted now;
- new: customer (if any), then the sale record, through ``SalePoster``.

A backlog of sales goes through NetSuite's async batch jobs instead (``post_batch``, called by
``flows/drain.py``) with the same dedupe and never-twice guarantees.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.batch import BatchOutcome, BatchWriter
from tillbridge.connectors.netsuite.errors import NetSuiteError, Rejected
from tillbridge.streams.flows.base import Flow, Lookups, SinkContext
from tillbridge.streams.flows.loyalty import with_earned
from tillbridge.streams.flows.sale_writer import Posted, SalePoster, partial_rejection
from tillbridge.streams.flows.sink import rejection_for
from tillbridge.streams.ledger.sale_records import (
    CONTENT_FP_FIELD,
    SOURCE_FIELD,
    promotion_audit_records,
    sale_external_id,
)
from tillbridge.streams.ledger.types import Outcome, Posting, Refused, Written
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages import route
from tillbridge.streams.stages.business_day import mismatch_audit
from tillbridge.streams.stages.deadletter import header
from tillbridge.streams.stages.duplicates import (
    H_DOUBLE_SCAN,
    DoubleScanWindow,
    fingerprint,
    partial_entry,
    sync_state,
)
from tillbridge.streams.stages.enrich import Enrichment, enrich_sale
from tillbridge.streams.stages.messages import Outbound, RawHeaders
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection, SaleRec
from tillbridge.streams.stages.resend import content_diff, content_fingerprint, content_summary
from tillbridge.streams.stages.validate import validate_sale


@dataclass(frozen=True, slots=True)
class SaleRefs:
    """What the sink needs beside the sale: its enrichment and the double-scan flag."""

    enrichment: Enrichment
    double_scan_of: str | None = None
    #: the event's input coordinates, topic/partition/offset: its identity across replays
    source: str = ""


@dataclass(slots=True)
class _Pending:
    """A sale past the dedupe check that still has to be written."""

    key: str
    sale: SaleRec
    refs: SaleRefs
    resume: str | None  # customer id written by an earlier partial attempt


def dedupe_key(sale: SaleRec) -> str:
    return f"{sale['store_id']}/{sale['pos_transaction_id']}"


class SaleFlow(Flow):
    kind = "sale"
    topic = topics.SALE.name
    drainable = True
    checks_replays = True  # the dedupe table knows the source; a write that finds its
    # externalId taken reads the stamp itself (real time and batch alike)

    def __init__(self, double_scan_window_s: float = 600.0) -> None:
        self.double_scans = DoubleScanWindow(double_scan_window_s)

    # -- ingest ------------------------------------------------------------------------------
    def resolve(self, event: SaleRec, lookups: Lookups) -> Enrichment | Rejection:
        rejection = validate_sale(event)
        if rejection is not None:
            return rejection
        return enrich_sale(event, lookups.mappings, lookups.refdata,
                           tax_tolerance_cents=lookups.tax_tolerance_cents)

    def route_key(self, event: SaleRec) -> bytes:
        # Payments and returns route under their sale's POS transaction id: same partition.
        return event["pos_transaction_id"].encode()

    def hop_headers(self, event: SaleRec, refs: Enrichment) -> list[tuple[str, bytes]]:
        headers = [(route.H_ENRICHMENT, refs.to_json())]
        earlier = self.double_scans.check(
            fingerprint(event), f"{event['store_id']}/{event['pos_transaction_id']}",
            event["completed_at"].timestamp())
        if earlier is not None:
            # Possibly the same basket scanned twice: still posted, flagged and counted.
            metrics.DOUBLE_SCANS.labels(self.topic).inc()
            headers.append((H_DOUBLE_SCAN, earlier.encode()))
        return headers

    # -- sink --------------------------------------------------------------------------------
    def sink_refs(self, event: SaleRec, headers: RawHeaders,
                  lookups: Lookups) -> SaleRefs | Rejection:
        raw = header(headers, route.H_ENRICHMENT)
        enr = Enrichment.from_json(raw.encode()) if raw else enrich_sale(
            event, lookups.mappings, lookups.refdata,
            tax_tolerance_cents=lookups.tax_tolerance_cents)
        if isinstance(enr, Rejection):
            return enr
        return SaleRefs(enr, header(headers, H_DOUBLE_SCAN), routed_source(headers))

    async def post(self, ctx: SinkContext, event: SaleRec, refs: SaleRefs) -> Outcome:
        ready = self._check(ctx, event, refs)
        if not isinstance(ready, _Pending):
            return await with_earned(ctx.client, event, ready,
                                     ctx.lookups.mappings.guest_customer)
        poster = _poster(ctx)
        outcome = await poster.post(event, refs.enrichment, customer_id=ready.resume,
                                    source=refs.source)
        held = await _held(poster, outcome)
        settled = self._settle(ctx, ready, outcome, held)
        return await with_earned(ctx.client, event, settled, ctx.lookups.mappings.guest_customer)

    async def post_batch(self, ctx: SinkContext, writer: BatchWriter,
                         items: Sequence[tuple[SaleRec, Any, RawHeaders]]) -> list[Outcome]:
        """Sales written through async batch jobs: customers first (one upsert each, only
        for new shoppers: a sale cannot name a customer that does not exist yet), then the
        sale records by type in jobs of up to 100."""
        poster = _poster(ctx)
        outcomes: list[Outcome | None] = [None] * len(items)
        pending: list[tuple[int, _Pending]] = []
        for i, (sale, refs, _) in enumerate(items):
            ctx.at(i)
            ready = self._check(ctx, sale, refs)
            if isinstance(ready, _Pending):
                pending.append((i, ready))
            else:
                outcomes[i] = ready
        customers = await asyncio.gather(*(_customer(poster, p) for _, p in pending))
        by_type: dict[str, list[tuple[int, _Pending, tuple[str, bool, bool]]]] = {}
        for (i, p), cust in zip(pending, customers, strict=True):
            if isinstance(cust, NetSuiteError):
                ext = p.refs.enrichment.customer.external_id or ""
                outcomes[i] = Refused(rejection_for(cust, "customer", ext), cust.details)
                continue
            if not poster.simple(p.sale):  # split tenders, gift cards: several records
                ctx.at(i)
                outcome = await poster.post(p.sale, p.refs.enrichment, customer_id=cust[0],
                                            source=p.refs.source)
                outcomes[i] = self._settle(ctx, p, outcome, await _held(poster, outcome))
                continue
            by_type.setdefault(poster.record_type(p.sale), []).append((i, p, cust))
        for record_type, group in by_type.items():
            records = [(sale_external_id(p.sale),
                        poster.body(p.sale, p.refs.enrichment, c[0], p.refs.source))
                       for _, p, c in group]
            results = await writer.write(record_type, records)
            posted = [_batch_posted(record_type, p, cust, res)
                      for (_, p, cust), res in zip(group, results, strict=True)]
            helds = await asyncio.gather(*(_held(poster, o) for o in posted))
            for (i, p, _), outcome, held in zip(group, posted, helds, strict=True):
                ctx.at(i)
                outcomes[i] = self._settle(ctx, p, outcome, held)
        guest = ctx.lookups.mappings.guest_customer
        return list(await asyncio.gather(*(
            with_earned(ctx.client, sale, o, guest)
            for (sale, _, _), o in zip(items, outcomes, strict=True) if o is not None)))

    def _check(self, ctx: SinkContext, sale: SaleRec,
               refs: SaleRefs) -> _Pending | Posting | Refused:
        """The dedupe table's word: already complete (a duplicate, or a conflicting re-send
        when the content differs from what was posted), or what to write."""
        key = dedupe_key(sale)
        previous = ctx.state.get(key)
        state = sync_state(previous)
        if state == "complete":
            assert previous is not None
            replay = bool(refs.source) and previous.get("source") == refs.source
            conflict = None if replay else conflicting_resend(previous, sale)
            if conflict is not None:
                return conflict
            record = {k: previous[k] for k in ("netsuite_id", "record_type", "external_id")}
            return Posting((Written(previous["record_type"], previous["netsuite_id"],
                                    previous["external_id"], created=False),),
                           result=_result_fields(record, None, refs.double_scan_of),
                           replay=replay)
        resume = previous["customer_id"] if previous is not None and state == "partial" else None
        return _Pending(key, sale, refs, resume)

    def _settle(self, ctx: SinkContext, p: _Pending, outcome: Posted | tuple[Rejection, object],
                held: dict[str, Any] | None = None) -> Outcome:
        """Record the sale's NetSuite outcome in the dedupe table; say what happened.
        ``held``: the record NetSuite already held under the sale's externalId."""
        if isinstance(outcome, tuple):
            rejection, details = outcome
            written = rejection.inputs.get("customer_id")
            if written:
                # Customer written, sale record not: a partial sync, completed next time.
                ctx.state[p.key] = partial_entry(written, p.refs.enrichment.customer.external_id)
            return Refused(rejection, details)
        replay = held is not None and bool(p.refs.source) and \
            held.get(SOURCE_FIELD) == p.refs.source
        if held is not None and not replay:
            conflict = conflicting_resend(stamped_previous(outcome, held), p.sale)
            if conflict is not None:
                return conflict
        entry = {"netsuite_id": outcome.netsuite_id, "record_type": outcome.record_type,
                 "external_id": outcome.external_id}
        summary = content_summary(p.sale)
        stored = {**entry, "content_fp": content_fingerprint(summary), "content": summary}
        ctx.state[p.key] = {**stored, "source": p.refs.source} if p.refs.source else stored
        completed_partial = p.resume is not None
        if completed_partial:
            metrics.PARTIAL_COMPLETED.inc()
        fields = _result_fields(entry, outcome, p.refs.double_scan_of, completed_partial)
        # created=False: NetSuite already held this externalId (an earlier attempt before a
        # restart, or a duplicate the table had not seen). Nothing new was created.
        audit = (*_promotion_audit(p.sale, outcome), *_business_date_audit(ctx, p.sale)) \
            if outcome.created else ()
        return Posting((Written(outcome.record_type, outcome.netsuite_id, outcome.external_id,
                                created=outcome.created), *outcome.tenders),
                       result=fields, audit=audit, replay=replay)

    def ids(self, event: SaleRec) -> dict[str, Any]:
        return {"pos_transaction_id": event["pos_transaction_id"],
                "store_id": event["store_id"], "register_id": event["register_id"]}

    def event_time(self, event: SaleRec) -> datetime | None:
        return event["completed_at"]


def conflicting_resend(previous: dict[str, Any], sale: SaleRec) -> Refused | None:
    """A ``conflicting_resend`` dead letter when this re-send's content differs from the
    posted version's (table entries written before fingerprints existed cannot tell: None)."""
    posted_fp = previous.get("content_fp")
    if not posted_fp:
        return None
    summary = content_summary(sale)
    fp = content_fingerprint(summary)
    if fp == posted_fp:
        return None
    metrics.CONFLICTING_RESENDS.labels(store=sale["store_id"]).inc()
    diff = content_diff(previous.get("content") or {}, summary)
    if previous.get("lines_unknown"):  # known from NetSuite's record: totals only
        diff = {k: v for k, v in diff.items() if k in ("total", "tax_total")}
        diff["lines"] = ("not known: the dedupe table had no entry for the posted version "
                         "(rebuilt or lost); NetSuite's record holds its fingerprint")
    inputs = {"pos_transaction_id": sale["pos_transaction_id"],
              "posted_record": {k: previous.get(k)
                                for k in ("record_type", "netsuite_id", "external_id")},
              "posted_fingerprint": posted_fp, "resent_fingerprint": fp, "differences": diff}
    msg = (f"transaction {sale['pos_transaction_id']} was posted as "
           f"{previous.get('record_type')} {previous.get('netsuite_id')} with other content "
           f"({', '.join(diff) or 'fingerprint'} differ); the posted record is unchanged")
    return Refused(Rejection(Stage.SINK, ReasonCode.CONFLICTING_RESEND, "sale.resend_same_content",
                             msg, inputs))


def routed_source(headers: RawHeaders) -> str:
    """topic/partition/offset of a routed record's input record ("" when not routed)."""
    topic = header(headers, route.H_SRC_TOPIC)
    if topic is None:
        return ""
    return (f"{topic}/{header(headers, route.H_SRC_PARTITION)}/"
            f"{header(headers, route.H_SRC_OFFSET)}")


async def _held(poster: SalePoster, outcome: Posted | tuple[Rejection, object]
                ) -> dict[str, Any] | None:
    """The record NetSuite already held when the write found the externalId taken (None
    when this write created it): its source tells a crash replay of this very event from
    another event with the same transaction id, its stamped fingerprint a duplicate from a
    conflicting re-send."""
    if not isinstance(outcome, Posted) or outcome.created:
        return None
    return await poster.held(outcome.record_type, outcome.netsuite_id)


def stamped_previous(outcome: Posted, held: dict[str, Any]) -> dict[str, Any]:
    """What NetSuite's record says about the posted version, shaped like a dedupe entry:
    its fingerprint and totals (the lines it was posted with are not kept in NetSuite)."""
    totals = {"total": held.get("total"), "tax_total": held.get("taxTotal")}
    return {"record_type": outcome.record_type, "netsuite_id": outcome.netsuite_id,
            "external_id": outcome.external_id, "content_fp": held.get(CONTENT_FP_FIELD),
            "content": {k: format(Decimal(str(v)).normalize(), "f")
                        for k, v in totals.items() if v is not None},
            "lines_unknown": True}


def _poster(ctx: SinkContext) -> SalePoster:
    """The sale writer for this record, under the current mappings (hot-reloadable)."""
    maps = ctx.lookups.mappings
    return SalePoster(ctx.client, discount_item=maps.discount_item, write_mode=ctx.write_mode,
                      sale_records=maps.document.get("sale_record_types") or {},
                      tax=maps.document.get("tax") or {})


async def _customer(poster: SalePoster, p: _Pending) -> tuple[str, bool, bool] | NetSuiteError:
    try:
        return await poster.customer_for(p.refs.enrichment, p.resume)
    except NetSuiteError as err:
        return err


def _batch_posted(record_type: str, p: _Pending, cust: tuple[str, bool, bool],
                  res: BatchOutcome) -> Posted | tuple[Rejection, object]:
    customer_id, wrote, enriched = cust
    if res.error is not None or res.netsuite_id is None:
        err = res.error or Rejected(None, "NO_ID", detail="the batch job gave no id")
        rejection = rejection_for(err, record_type, res.external_id)
        return partial_rejection(rejection, customer_id if wrote else None), err.details
    return Posted(record_type, res.netsuite_id, res.external_id, customer_id,
                  p.refs.enrichment.customer.rule, res.created, enriched)


def _result_fields(record: dict[str, str], posted: Posted | None, double_scan_of: str | None,
                   completed_partial: bool = False) -> dict[str, Any]:
    """The sale's own results fields (beside the generic ones): the record, the customer."""
    fields: dict[str, Any] = {
        **record,
        "customer_id": posted.customer_id if posted else None,
        "customer_rule": posted.customer_rule if posted else None,
        "customer_enriched": posted.customer_enriched if posted else False,
    }
    if double_scan_of:
        fields["double_scan_of"] = double_scan_of
    if completed_partial:
        fields["completed_partial"] = True
    return fields


def _business_date_audit(ctx: SinkContext, sale: SaleRec) -> tuple[Outbound, ...]:
    """Flag (metric + audit record), never refuse, a till date beyond the store's cut-off."""
    store = ctx.lookups.mappings.stores.get(sale["store_id"])
    record = mismatch_audit(sale, store) if store is not None else None
    if record is None:
        return ()
    metrics.BUSINESS_DATE_MISMATCH.labels(store=sale["store_id"]).inc()
    return (Outbound(topics.AUDIT_BUSINESS_DATES, sale["pos_transaction_id"].encode(),
                     json.dumps(record).encode(), [("tillbridge.record", b"business_date")]),)


def _promotion_audit(sale: SaleRec, posted: Posted) -> tuple[Outbound, ...]:
    key = posted.external_id.encode()
    return tuple(Outbound(topics.AUDIT_PROMOTIONS, key, json.dumps(rec).encode(),
                          [("tillbridge.record", b"promotion")])
                 for rec in promotion_audit_records(sale, posted.external_id,
                                                    posted.netsuite_id))
