"""Backlog drain: a full batch of routed sales posted through NetSuite's async batch jobs.

In real time every sale costs one request, and at a 15-slot account that is ~75 sales/s
at 200 ms per request; a backlog (after an outage, or a burst above that rate) would
take minutes to clear. When the sink's batch comes back full — it is behind — its sales
go as async batch jobs of up to 100 (``connectors/netsuite/batch.py``): a few requests
per hundred records. Then, as batches stop being full, it is back to one request each.

Same guarantees per record as in real time:

- never twice: each record carries its externalId; the batch writer pre-checks by
  externalId, submits with a deterministic idempotency key, and resolves ids from what
  NetSuite holds (``created=False`` for what an earlier attempt wrote);
- a refused record is dead-lettered with NetSuite's ``o:errorDetails``; the others post;
- an outage raises ``NetSuiteUnavailable`` for the whole drain, which the sink holds and
  retries (everything in it is idempotent) — never a dead letter.

Customers are written first, one request each (upserts by externalId; only new shoppers
need one), because a sale cannot name a customer that does not exist yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tillbridge.connectors.netsuite.batch import BatchOutcome, BatchWriter, PollPolicy
from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.streams.flows.pipeline import PendingSale, Pipeline
from tillbridge.streams.flows.sale import Posted, partial_rejection, rejection_for, sale_external_id
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.messages import Outbound, Source


def batch_writer(pipe: Pipeline) -> BatchWriter:
    assert pipe.reliable is not None, "Pipeline.start() not awaited"
    # First poll soon (the simulator's jobs finish in ~50 ms; a real account's take longer
    # and the delay doubles from there), never more than every 5 s.
    return BatchWriter(pipe.reliable, poll=PollPolicy(first_s=0.2, factor=2.0, max_s=5.0),
                       on_job=lambda state: metrics.BATCH_JOBS.labels(state).inc(),
                       on_record=lambda o: metrics.BATCH_RECORDS.labels(o.kind).inc())


async def drain_batch(pipe: Pipeline, writer: BatchWriter, srcs: list[Source],
                      posted: Any, on_record: Callable[[int], None] = lambda _i: None,
                      ) -> list[list[Outbound]]:
    """Outbound messages per routed sale (same order as ``srcs``), the sale records
    written through async batch jobs. Raises ``NetSuiteUnavailable`` (hold and retry).

    ``on_record(i)`` runs before the dedupe table is read or written for ``srcs[i]`` (the
    Faust shell points its current-event context at that record, so table writes land in
    the record's own changelog partition)."""
    poster = pipe.poster
    assert poster is not None, "Pipeline.start() not awaited"
    outs: list[list[Outbound]] = [[] for _ in srcs]
    pending: list[tuple[int, PendingSale]] = []
    for i, src in enumerate(srcs):
        on_record(i)
        ready = pipe.prepare_sale(pipe.origin(src), src, posted)
        if isinstance(ready, PendingSale):
            pending.append((i, ready))
        else:
            outs[i] = ready

    async def customer(p: PendingSale) -> tuple[str, bool, bool] | NetSuiteError:
        try:
            return await poster.customer_for(p.enr, p.resume)
        except NetSuiteError as err:
            return err

    customers = await asyncio.gather(*(customer(p) for _, p in pending))
    by_type: dict[str, list[tuple[int, PendingSale, tuple[str, bool, bool]]]] = {}
    for (i, p), cust in zip(pending, customers, strict=True):
        if isinstance(cust, NetSuiteError):
            rejection = rejection_for(cust, "customer", p.enr.customer.external_id or "")
            on_record(i)
            outs[i] = [dead_letter(p.origin, rejection, details=cust.details)]
            continue
        by_type.setdefault(poster.record_type(p.sale), []).append((i, p, cust))
    for record_type, items in by_type.items():
        records = [(sale_external_id(p.sale), poster.body(p.sale, p.enr, cust[0]))
                   for _, p, cust in items]
        results = await writer.write(record_type, records)
        for (i, p, cust), result in zip(items, results, strict=True):
            on_record(i)
            outs[i] = pipe.settle_sale(p, _outcome(record_type, p, cust, result), posted)
    return outs


def _outcome(record_type: str, p: PendingSale, cust: tuple[str, bool, bool],
             result: BatchOutcome) -> Posted | tuple[Any, object]:
    customer_id, wrote, enriched = cust
    if result.error is not None or result.netsuite_id is None:
        err = result.error or NetSuiteError(None, "NO_ID", detail="batch gave no id")
        rejection = rejection_for(err, record_type, result.external_id)
        return partial_rejection(rejection, customer_id if wrote else None), err.details
    return Posted(record_type, result.netsuite_id, result.external_id, customer_id,
                  p.enr.customer.rule, result.created, enriched)
