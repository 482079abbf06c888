"""The NetSuite sink agent: routed records posted, their outcomes produced, then what was
parked waiting on them released.

Batches bound the wait; distinct keys post concurrently (NetSuite latency dominates), one
key's records stay in order. When a batch holds many sales (the sink is behind) they go as
async batch jobs (``flows/drain.py``). A batch is acked only after every outcome of it is
produced — or, for a record with none (the guard's hold, or the worker stopping), after
its event was held so it is never acked.

NetSuite down or saturated (``NetSuiteUnavailable``) is not a failure of the record: it is
held and tried again after the breaker's cool-down, never dead-lettered; its offset is not
committed meanwhile (the batch is not acked), so a worker killed during an outage loses
nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tillbridge.connectors.netsuite.batch import BatchWriter
from tillbridge.connectors.netsuite.breaker import BreakerState
from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable
from tillbridge.streams.flows import drain
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import events, metrics
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.runtime.guard import Failed, Guard
from tillbridge.streams.runtime.parking import Parking
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.messages import Outbound, Source

log = logging.getLogger(__name__)

#: The HTTP pool caps in-flight requests at the concurrency share; a batch several times
#: larger keeps every slot busy instead of waiting on the slowest of a few.
SINK_BATCH_PER_SLOT = 8
SINK_WITHIN_S = 0.01

Item = tuple[Any, Source]  # (event, routed record)
#: A record's outcomes to produce; None when the guard already took the record.
Done = tuple[Any, Source, list[Outbound] | None]


@dataclass(frozen=True)
class SinkConfig:
    batch: int
    drain_threshold: int  # sales in a batch from which they are drained; 0: never
    within_s: float = SINK_WITHIN_S

    @classmethod
    def from_settings(cls, s: Settings) -> SinkConfig:
        batch = SINK_BATCH_PER_SLOT * max(1, s.netsuite_max_concurrency)
        draining = s.drain_threshold > 0 and s.netsuite_write_mode == "create"
        return cls(max(batch, s.drain_batch) if draining else batch,
                   s.drain_threshold if draining else 0)


class SinkAgent:
    """``run(stream)`` is the Faust agent body; also the ``Outlet`` parking releases
    through. ``posted`` is the dedupe table (a Faust table; a dict in tests)."""

    def __init__(self, pipe: Pipeline, posted: Any, emitter: EmitterLike, guard: Guard,
                 parking: Parking, *, owned: Callable[[], set[int]], config: SinkConfig,
                 source: Callable[[Any], Source] = events.source,
                 bind: Callable[[Any], None] = events.bind,
                 hold: Callable[[Any], None] = events.hold) -> None:
        self.pipe = pipe
        self.posted = posted
        self.emitter = emitter
        self.guard = guard
        self.parking = parking
        self.owned = owned
        self.config = config
        self._source = source
        self._bind = bind
        self._hold = hold
        self._writer: BatchWriter | None = None
        self.running = False

    async def run(self, stream: Any) -> None:
        """Starts once reference data and the parking table are loaded."""
        await self.pipe.ready.wait()
        await self.parking.ready.wait()
        self.start()
        async for batch in stream.take_events(self.config.batch, within=self.config.within_s):
            await self.handle(batch)

    def start(self) -> None:
        if self.config.drain_threshold:
            self._writer = drain.batch_writer(self.pipe)
        self.running = True

    async def handle(self, batch: Sequence[Any]) -> None:
        """Outcomes of every event produced before it returns; an event without one (its
        dead letter failed, or the worker stops midway) is held, so it is never acked."""
        pending = {id(e): e for e in batch}
        try:
            written: list[str] = []
            for event, src, outs in await self._outcomes(batch):
                if outs is not None and await self.emit_outcome(outs, src, event) is None:
                    written.extend(x for out in outs for x in out.written)
                pending.pop(id(event), None)
            await self.parking.release_waiting_on(written)
        except asyncio.CancelledError:
            self._hold_all(pending.values())
            raise
        except Exception:  # noqa: BLE001 - a bug of ours, not of one record: hold, go on
            log.exception("sink batch failed; %d records held (not acked)", len(pending))
            self._hold_all(pending.values())

    def _hold_all(self, evts: Any) -> None:
        for event in evts:
            self._hold(event)

    async def _outcomes(self, batch: Sequence[Any]) -> list[Done]:
        items: list[Item] = []
        done: list[Done] = []
        for event in batch:
            try:
                items.append((event, self._source(event)))
            except Exception as exc:  # noqa: BLE001 - never skip a record silently
                bare = events.bare_source(event)
                await self.guard.failed("sink", bare, exc, event)
                done.append((event, bare, None))
        if self._writer is not None:
            items = await self._drain_sales(items, done)
        return done + await self._by_key(items)

    async def _drain_sales(self, items: list[Item], done: list[Done]) -> list[Item]:
        """Behind (many sales in one batch): the sales go as async batch jobs, appended to
        ``done`` (as are records the split failed on); the rest (returns, payments wait on
        sales, never the other way round) is returned for the usual path. Not behind:
        every item is returned, in order."""
        kept: list[Item] = []
        sales: list[Item] = []
        rest: list[Item] = []
        for item in items:
            split = await self.guard.call("drain", item[1], self.pipe.drainable, item[1],
                                          handle=item[0])
            if isinstance(split, Failed):
                done.append((*item, None))
                continue
            kept.append(item)
            (sales if split else rest).append(item)
        assert self._writer is not None
        if len(sales) < self.config.drain_threshold:
            return kept
        done += await self._drain(sales, self._writer)
        metrics.DRAINS.inc()
        return rest

    async def _drain(self, sales: list[Item], writer: BatchWriter) -> list[Done]:
        """Held (not dead-lettered) while NetSuite is unavailable: everything in it is
        idempotent, so the whole drain is simply tried again (without the sales whose
        partition moved meanwhile). Any other error: one record at a time through the
        guarded path (sales the drain wrote come out as duplicates)."""
        moved: list[Done] = []

        def at(i: int) -> None:
            self._bind(sales[i][0])

        while sales:
            try:
                outs = await drain.drain_batch(self.pipe, writer, [s for _, s in sales],
                                               self.posted, at)
            except NetSuiteUnavailable as err:
                await self.pipe.wait_for_netsuite(err)
                gone = {id(e) for e, _ in sales if self._moved(e)}
                moved += [(e, s, None) for e, s in sales if id(e) in gone]
                sales = [item for item in sales if id(item[0]) not in gone]
            except Exception:  # noqa: BLE001 - fall back to one record at a time
                log.exception("drain of %d sales failed; posting them one by one", len(sales))
                return moved + await self._by_key(sales)
            else:
                return moved + [(e, s, o) for (e, s), o in zip(sales, outs, strict=True)]
        return moved

    async def _by_key(self, items: list[Item]) -> list[Done]:
        """Distinct keys concurrently, one key's records in order (a duplicate sees its
        original's table entry)."""
        groups: dict[bytes | None, list[Item]] = defaultdict(list)
        for item in items:
            groups[item[1].key].append(item)
        done = await asyncio.gather(*(self._key_group(g) for g in groups.values()))
        return [d for group in done for d in group]

    async def _key_group(self, group: list[Item]) -> list[Done]:
        out: list[Done] = []
        for event, src in group:
            # Each gathered task runs in its own context copy: point Faust's current event
            # at this record so table writes land in its partition's changelog.
            self._bind(event)
            out.append((event, src, await self.sink_record(src, event)))
        return out

    async def sink_record(self, src: Source, handle: object = None) -> list[Outbound] | None:
        """One routed record's outcomes; ``[]`` when it was dead-lettered by the guard (the
        dead letter is out already), None when it is held (no outcome here: never acked)."""
        while True:
            try:
                return await self.pipe.sink_all(src, self.posted)
            except NetSuiteUnavailable as err:
                await self.pipe.wait_for_netsuite(err)
                if self._moved(handle):
                    return None
            except Exception as exc:  # noqa: BLE001 - never skip a record silently
                failed = await self.guard.failed("sink", src, exc, handle)
                return [] if failed is Failed.DEAD_LETTERED else None

    def _moved(self, handle: object) -> bool:
        """While the record was held, a rebalance gave its partition to another worker,
        which reads it again from the committed offset: it is held here for good (never
        acked) instead of posted twice. (Mid-rebalance nothing looks owned: held too, and
        read again here if the partition comes back.)"""
        if handle is None:  # a parked entry: the table is its hold
            return False
        try:
            moved = handle.message.partition not in self.owned()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - unknown: carry on as before
            return False
        if moved:
            metrics.HELD_AFTER_REBALANCE.inc()
            self._hold(handle)
        return moved

    async def emit_outcome(self, outs: list[Outbound], src: Source,
                           handle: object = None) -> Failed | None:
        """Produce one record's outcomes; None when all went, else what the guard did with
        the record (its later outcomes are not produced: its dead letter replaces them)."""
        emit = self.emitter.emit
        for out in outs:
            try:
                if not emit(out.topic, out.key, out.value, out.headers):
                    await self.emitter.send(out)
            except Exception as exc:  # noqa: BLE001 - e.g. ProduceRefused: dead-letter it
                return await self.guard.failed("emit", src, exc, handle)
            self.parking.note(out)
        return None

    def on_breaker(self, state: BreakerState) -> None:
        """Open: the sink's partitions are paused — by holding, not by
        ``consumer.pause_partitions``. Every record in hand waits for the probe and the
        agent takes no new batch, so its stream buffer fills and Faust stops fetching
        those partitions (its own flow control); nothing is acked or committed meanwhile.
        Faust's ``pause_partitions``/``resume_partitions`` were tried first and lost
        records: after a resume, 13 to 27 of 400 held sales never reached the agent
        (3 runs of 3 on Tansu), so they are not used. Closed: held records go on."""
        if state is BreakerState.OPEN:
            held = len(self.owned())
            metrics.PAUSED_PARTITIONS.set(held)
            log.warning("NetSuite unavailable: %d sink partitions held", held)
        elif state is BreakerState.CLOSED:
            metrics.PAUSED_PARTITIONS.set(0)
            log.warning("NetSuite back: sink partitions resumed")
