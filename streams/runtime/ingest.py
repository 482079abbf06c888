"""The ingest agent: every input record decoded, validated, enriched and routed (one
``Pipeline.ingest`` call) and its one outcome emitted — the routed record or a dead letter.

The throughput bottleneck of the worker, so the per-record loop is two plain ``try``
blocks around two synchronous calls; it awaits only when something is wrong (a record's
step failed: the guard reports it) or the producer's queue is full (back-pressure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import events
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.runtime.guard import Guard, ingest_stage
from tillbridge.streams.stages.messages import Outbound, Source

#: Batch: large enough to amortise the per-batch delivery wait, and `within` caps the
#: latency a partly filled batch adds.
INGEST_BATCH = 1000
INGEST_WITHIN_S = 0.01


class IngestAgent:
    """``run(stream)`` is the Faust agent body; ``handle(batch)`` one batch of events."""

    def __init__(self, pipe: Pipeline, emitter: EmitterLike, guard: Guard, *,
                 source: Callable[[Any], Source] = events.source,
                 hold: Callable[[Any], None] = events.hold,
                 batch: int = INGEST_BATCH, within_s: float = INGEST_WITHIN_S,
                 after: Sequence[asyncio.Event] = ()) -> None:
        self.pipe = pipe
        #: the worker's other agents that must be ready first (the window agent's book)
        self.after = after
        self.emitter = emitter
        self.guard = guard
        self._source = source
        self._hold = hold
        self._batch = batch
        self._within_s = within_s

    async def run(self, stream: Any) -> None:
        """Handles no record before the first reference snapshot is in, nor before the
        worker's downstream agents are ready (what it routes is then taken at once)."""
        await self.pipe.ready.wait()
        for ready in self.after:
            await ready.wait()
        async for batch in stream.take_events(self._batch, within=self._within_s):
            await self.handle(batch)

    async def handle(self, batch: Sequence[Any]) -> None:
        """Every event's outcome queued on the emitter (or the event held) before it returns,
        so the batch acked after it is acked only past produced outcomes."""
        source, ingest, emit = self._source, self.pipe.ingest, self.emitter.emit
        for event in batch:
            try:
                src = source(event)
                out = ingest(src)
            except Exception as exc:  # noqa: BLE001 - never skip a record silently
                await self._rare(batch, event, self._failed(event, exc))
                continue
            try:
                if emit(out.topic, out.key, out.value, out.headers):
                    continue
            except Exception as exc:  # noqa: BLE001 - e.g. ProduceRefused: dead-letter it
                await self._rare(batch, event, self.guard.failed("emit", src, exc, event))
                continue
            await self._rare(batch, event, self._send(out, src, event))

    async def _failed(self, event: Any, exc: Exception) -> None:
        try:
            src = self._source(event)
        except Exception:  # noqa: BLE001 - the bytes must still reach the DLQ
            src = events.bare_source(event)
        await self.guard.failed(ingest_stage(exc), src, exc, event)

    async def _send(self, out: Outbound, src: Source, event: Any) -> None:
        """The queue was full: wait for room, then emit (the record's order is kept)."""
        try:
            await self.emitter.send(out)
        except Exception as exc:  # noqa: BLE001 - never skip a record silently
            await self.guard.failed("emit", src, exc, event)

    async def _rare(self, batch: Sequence[Any], event: Any, step: Awaitable[object]) -> None:
        """Await a slow-path step. Cancelled meanwhile (the worker stops): this event and
        the ones after it have no outcome, so they are held, not acked with the batch."""
        try:
            await step
        except asyncio.CancelledError:
            for rest in batch[batch.index(event):]:
                self._hold(rest)
            raise
