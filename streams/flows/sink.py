"""The one sink path: what a flow's outcome becomes on Kafka, for every family alike.

- ``Posting``: a results record (``posted``, ``updated`` or ``duplicate``) listing the
  NetSuite records, the externalIds it wrote (parked events waiting on one of them are
  released right after), and the flow's audit messages;
- ``Missing``: a parking-table entry (``flows/park.py``) and a ``parked`` results record;
- ``Skipped``: a ``skipped`` results record and the flow's audit trace;
- ``Refused``: a dead letter with NetSuite's ``o:errorDetails`` verbatim.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.errors import AuthFailed, NetSuiteError, RetryableError
from tillbridge.streams.flows.base import Event, Flow
from tillbridge.streams.flows.park import ParkEntry
from tillbridge.streams.ledger.types import Missing, Outcome, Posting, Refused, Skipped
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.messages import Outbound, Source, log_ids
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection

log = logging.getLogger(__name__)

#: The parking table's entry by id: a re-parked event keeps its first park time.
ParkedLookup = Callable[[str], ParkEntry | None]


def rejection_for(err: NetSuiteError, record_type: str, external_id: str) -> Rejection:
    """The dead-letter verdict for a NetSuite error on one record (``o:errorDetails`` go
    separately, verbatim, into the DLQ headers)."""
    if isinstance(err, AuthFailed):
        reason = ReasonCode.NETSUITE_AUTH
    elif isinstance(err, RetryableError):  # attempts spent while NetSuite answered others
        reason = ReasonCode.NETSUITE_UNAVAILABLE
    else:  # Rejected, NotFound, AlreadyExists
        reason = ReasonCode.NETSUITE_REJECTED
    return Rejection(Stage.SINK, reason, f"netsuite.{record_type}",
                     f"NetSuite {err.status} {err.code}: {err.detail}",
                     {"record_type": record_type, "external_id": external_id,
                      "status": str(err.status), "error_code": err.code or "",
                      "error_path": err.error_path or ""})


async def post_in_order(flow: Flow, ctx: Any, items: Any,
                        order: Callable[[Event], Any] | None = None) -> list[Outcome]:
    """Each ``(event, refs, headers)`` through ``flow.post``, one after the other in window
    order, or sorted by ``order`` (an order's events by their sequence); the outcomes come
    back in the items' order. A record NetSuite refuses is that event's outcome;
    ``NetSuiteUnavailable`` propagates: the whole window is written again, idempotently."""
    turn = list(range(len(items)))
    if order is not None:
        turn.sort(key=lambda i: order(items[i][0]))
    outcomes: dict[int, Outcome] = {}
    for i in turn:
        event, refs, _headers = items[i]
        ctx.at(i)
        try:
            outcomes[i] = await flow.post(ctx, event, refs)
        except NetSuiteError as err:
            outcomes[i] = refused(flow, event, err)
    return [outcomes[i] for i in range(len(items))]


def refused(flow: Flow, event: Event, err: NetSuiteError) -> Refused:
    """A NetSuite error a flow's post raised, as its outcome (the record type is read from
    the request path: a flow writes several kinds)."""
    where = str(err.url_path or "").rsplit("/record/v1/", 1)[-1].split("/", 1)[0]
    external_id = str(flow.ids(event).get("external_id") or "")
    return Refused(rejection_for(err, where or flow.kind, external_id), err.details)


def result(flow: Flow, event: Event, origin: Source, outcome: str, **extra: Any) -> Outbound:
    """The event's one results record (``tillbridge.results.v1``), keyed by its POS id.
    ``source`` (its input coordinates) is the event's identity: a replay after a crash
    re-emits the same outcome under the same source, so counting by source is exact."""
    ids = flow.ids(event)
    when = flow.event_time(event)
    doc = {"event_type": flow.kind, **ids, "outcome": outcome, **extra,
           "source": f"{origin.topic}/{origin.partition}/{origin.offset}",
           "event_time": when.isoformat() if when is not None else None,
           "result_time": datetime.now(UTC).isoformat(timespec="milliseconds")}
    key = str(ids.get("pos_transaction_id") or ids.get("external_id") or "").encode()
    return Outbound(topics.RESULTS, key, json.dumps(doc).encode(),
                    [("tillbridge.outcome", outcome.encode())])


def messages(flow: Flow, event: Event, origin: Source, routed: Source, outcome: Outcome, *,
             parked_lookup: ParkedLookup, park_timeout_s: float) -> list[Outbound]:
    """Everything to produce for one routed event's outcome, counted."""
    if isinstance(outcome, Refused):
        return [dead_letter(origin, outcome.rejection, details=outcome.details,
                            event_ids=flow.ids(event))]
    if isinstance(outcome, Missing):
        return park(flow, event, origin, routed, outcome, parked_lookup, park_timeout_s)
    if isinstance(outcome, Skipped):
        metrics.SKIPPED.labels(origin.topic).inc()
        return [result(flow, event, origin, "skipped", why=outcome.why),
                *flow.audit(event, outcome)]
    return posting_messages(flow, event, origin, outcome)


def posting_messages(flow: Flow, event: Event, origin: Source,
                     posting: Posting) -> list[Outbound]:
    for written in posting.records:
        if written.created:
            metrics.POSTED.labels(written.record_type).inc()
    label = ("posted" if posting.created or posting.replay else "updated" if posting.updated
             else "duplicate")
    if posting.replay:
        # The same event again (its earlier attempt wrote the records before a crash): its
        # outcome is re-emitted as it was, counted once per event, not as a duplicate.
        metrics.REPLAYED.labels(origin.topic).inc()
    elif label == "duplicate":
        metrics.DUPLICATES.labels(origin.topic).inc()
    elif posting.created and not posting.replay:
        when = flow.event_time(event)
        if when is not None:
            metrics.EVENT_TO_RECORD.observe(max(0.0, time.time() - when.timestamp()))
    extra = {**posting.result, "replayed": True} if posting.replay else posting.result
    out = result(flow, event, origin, label, **extra,
                 records=[{"record_type": w.record_type, "netsuite_id": w.netsuite_id,
                           "external_id": w.external_id, "created": w.created, **w.links}
                          for w in posting.records])
    out.written = tuple(w.external_id for w in posting.records)
    return [out, *posting.audit]


def park(flow: Flow, event: Event, origin: Source, routed: Source, missing: Missing,
         parked_lookup: ParkedLookup, park_timeout_s: float) -> list[Outbound]:
    """The parking-table entry for an event whose dependency is not in NetSuite yet."""
    now = time.time()
    entry_id = f"{origin.topic}/{origin.partition}/{origin.offset}"
    # Parked before (a replay after a restart, or a release that is still missing
    # something): keep the first park time, so the timeout counts from it.
    first = parked_lookup(entry_id)
    since = first.parked_at if first is not None else now
    entry = ParkEntry(entry_id, missing.dependency, missing.record_types,
                      since, since + park_timeout_s, routed.partition, routed.key,
                      routed.value, tuple(routed.headers), missing.detail)
    metrics.PARK_OUTCOMES.labels("parked").inc()
    if log.isEnabledFor(logging.INFO):
        log.info("%s parked until %s is in NetSuite", entry_id, missing.dependency,
                 extra=log_ids(origin, flow.ids(event), stage="sink", event_id=entry_id,
                               dependency=missing.dependency))
    return [Outbound(topics.PARKED, entry_id.encode(), entry.to_json(), parked=entry),
            result(flow, event, origin, "parked", waiting_for=missing.dependency)]
