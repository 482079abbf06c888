"""Backlog drain: a full sink batch of routed events written through NetSuite's async batch jobs.

In real time every event costs at least one request, and at a 15-slot account that is
~75 sales/s at 200 ms per request; a backlog (after an outage, or a burst above that rate)
would take minutes to clear. When the sink's batch comes back full (it is behind), the
events of a ``drainable`` family go through ``flow.post_batch``: async batch jobs of up to
100 records (``connectors/netsuite/batch.py``), a few requests per hundred records. Then,
as batches stop being full, it is back to one request each.

Same guarantees per record as in real time, since the flow's own dedupe and the batch
writer's externalId pre-check and deterministic idempotency keys hold there too:

- never twice (``created=False`` for what an earlier attempt wrote);
- a refused record is dead-lettered with NetSuite's ``o:errorDetails``; the others post;
- an outage raises ``NetSuiteUnavailable`` for the whole drain, which the sink holds and
  retries (everything in it is idempotent), never a dead letter.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from tillbridge.connectors.netsuite.batch import BatchWriter, PollPolicy
from tillbridge.streams.flows.base import Flow
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages.messages import Outbound, RawHeaders, Source

#: the order flows are written in, in a drain and among the windows closing in one pass:
#: a sale before the payments and returns that depend on it (what still misses its sale
#: parks and is released after)
CLOSE_ORDER = {"sale": 0, "order": 1, "payment": 2, "return": 3}


def close_rank(name: str) -> int:
    """A flow kind's (or a window plan name's, ``return.batch/60s``) place in that order."""
    return CLOSE_ORDER.get(name.partition(".")[0], len(CLOSE_ORDER))


def batch_writer(pipe: Pipeline) -> BatchWriter:
    assert pipe.reliable is not None, "Pipeline.start() not awaited"
    # First poll soon (the simulator's jobs finish in ~50 ms; a real account's take longer
    # and the delay doubles from there), never more than every 5 s.
    return BatchWriter(pipe.reliable, poll=PollPolicy(first_s=0.2, factor=2.0, max_s=5.0),
                       on_job=lambda state: metrics.BATCH_JOBS.labels(state).inc(),
                       on_record=lambda o: metrics.BATCH_RECORDS.labels(o.kind).inc())


async def drain_batch(pipe: Pipeline, writer: BatchWriter, srcs: list[Source],
                      state: MutableMapping[str, Any],
                      on_record: Callable[[int], None] = lambda _i: None,
                      ) -> list[list[Outbound]]:
    """Outbound messages per routed event (same order as ``srcs``), written through async
    batch jobs family by family. Raises ``NetSuiteUnavailable`` (hold and retry).

    ``on_record(i)`` runs before the worker's state is read or written for ``srcs[i]`` (the
    Faust shell points its current-event context at that record, so table writes land in
    the record's own changelog partition)."""
    outs: list[list[Outbound]] = [[] for _ in srcs]
    groups: dict[str, tuple[Flow, list[tuple[int, Source, Source, Any, Any]]]] = {}
    for i, src in enumerate(srcs):
        ready = pipe.prepare(src)
        if isinstance(ready, Outbound):
            outs[i] = [ready]
            continue
        flow, origin, event, refs = ready
        groups.setdefault(flow.kind, (flow, []))[1].append((i, origin, src, event, refs))
    # a sale before what depends on it (its payments, its returns)
    for flow, members in sorted(groups.values(), key=lambda g: close_rank(g[0].kind)):
        index = [m[0] for m in members]
        items: list[tuple[Any, Any, RawHeaders]] = [(m[3], m[4], m[2].headers) for m in members]
        ctx = pipe.context(state, at=_remap(index, on_record))
        outcomes = await flow.post_batch(ctx, writer, items)
        for (i, origin, src, event, _), outcome in zip(members, outcomes, strict=True):
            on_record(i)
            outs[i] = pipe.messages(flow, event, origin, src, outcome)
    return outs


def _remap(index: list[int], on_record: Callable[[int], None]) -> Callable[[int], None]:
    """A flow numbers its items from 0; the caller knows them by their place in ``srcs``."""
    return lambda j: on_record(index[j])
