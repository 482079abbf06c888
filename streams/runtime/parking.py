"""The runtime side of the parking table (``flows/park.py``): load it, keep this worker's
view current, and move entries out of it — released when their dependency landed,
expired (dead-lettered as ``orphan_dependency``) past their deadline.

Every step on one entry runs under the sink's guard. What becomes of an entry a step failed
on: dead-lettered (the guard produced ``internal_error`` of its original record) means it
leaves the table (a tombstone); held (even the dead letter failed) means it stays parked,
unclaimed, and the next sweep tries again — the table itself is its durable hold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol, cast

from tillbridge.connectors.kafka import topics
from tillbridge.streams.flows.park import ParkEntry, ParkingLot, parked_source, released
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import control, metrics
from tillbridge.streams.runtime.guard import Failed, Guard
from tillbridge.streams.stages.messages import Outbound, Source

log = logging.getLogger(__name__)

#: How long the sink waits for the parking table to be read before it starts without it.
LOAD_TIMEOUT_S = 60.0


class Outlet(Protocol):
    """What parking needs from the sink: run a record through it, produce outcomes."""

    running: bool

    async def sink_record(self, src: Source, handle: object = None
                          ) -> list[Outbound] | None: ...

    async def emit_outcome(self, outs: list[Outbound], src: Source,
                           handle: object = None) -> Failed | None: ...


def _tombstone(entry: ParkEntry) -> Outbound:
    """Takes an entry off the table (the compacted topic's key is the entry id)."""
    return Outbound(topics.PARKED, entry.id.encode(), None)


class Parking:
    """``ready`` is set once the table is loaded; ``outlet`` is the sink, once it runs."""

    def __init__(self, pipe: Pipeline, lot: ParkingLot, guard: Guard,
                 owned: Callable[[], set[int]], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.pipe = pipe
        self.lot = lot
        self.guard = guard
        self.owned = owned
        self.outlet: Outlet | None = None
        self.ready = asyncio.Event()
        self._clock = clock

    async def load(self, bootstrap: str, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Read the table's topic from the start; follow it from then on. The sink starts
        only once it is loaded: a replayed event that parks again must find its first
        entry (and keep its deadline)."""
        follower = control.TopicFollower(bootstrap, topics.PARKED,
                                         lambda k, v, _ts: self.lot.apply_record(k, v),
                                         name="parked-follower")
        follower.start()
        follower.mark()
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, follower.caught_up.wait, timeout_s):
            log.error("parking table not loaded after %.0f s; the sink starts without it",
                      timeout_s)
        metrics.PARKED.set(len(self.lot))
        self.ready.set()

    def note(self, out: Outbound) -> None:
        """An outcome produced by the sink: a parking record updates this worker's view at
        once (the follower applies it again when it reads it back: idempotent)."""
        if out.topic != topics.PARKED or out.key is None:
            return
        try:
            self.lot.apply(out.key.decode(), cast(ParkEntry | None, out.parked))
            metrics.PARKED.set(len(self.lot))
        except Exception:  # noqa: BLE001 - the follower applies it when it reads it back
            log.exception("parking record %r not applied locally", out.key)

    async def tick(self) -> None:
        """The periodic sweep, once the sink runs (it produces what the sweep decides)."""
        if self.outlet is None or not self.outlet.running or not len(self.lot):
            return
        try:
            await self.sweep()
        except Exception:  # noqa: BLE001 - a timer must never stop the worker
            log.exception("parking sweep failed")

    async def sweep(self) -> None:
        """Expire overdue entries (orphan_dependency), release those whose dependency is in
        NetSuite by now (written by another worker, or before this worker loaded the
        table)."""
        now = self._clock()
        entries = self.lot.claim_due(self.owned())
        due: list[ParkEntry] = []
        done = 0
        try:
            for entry in entries:
                if now >= entry.deadline:
                    await self.expire(entry, now)
                elif await self._landed(entry):
                    due.append(entry)
                else:
                    self.lot.unclaim(entry.id)
                done += 1
        finally:
            for entry in entries[done:]:  # cancelled midway: the rest are not left busy
                self.lot.unclaim(entry.id)
        await self.release(due)
        metrics.PARKED.set(len(self.lot))

    async def _landed(self, entry: ParkEntry) -> bool:
        try:
            return await self.pipe.dependency_exists(entry)
        except Exception as exc:  # noqa: BLE001 - unclaimed, checked again next sweep
            log.info("parked %s: dependency check failed: %s", entry.id, exc,
                     extra={"event_id": entry.id, "dependency": entry.dependency})
            return False

    async def release_waiting_on(self, written: Iterable[str]) -> None:
        """Entries waiting on what the sink just wrote go right away (their dependency
        shares this routed partition, by the routing key)."""
        if not len(self.lot):
            return
        owned = self.owned()
        await self.release([e for x in written for e in self.lot.claim_waiting_on(x, owned)])

    async def release(self, entries: list[ParkEntry]) -> None:
        """Run claimed entries through the sink again (``released``: off the table unless
        parked again). Cancelled midway, the rest are unclaimed, not left busy."""
        done = 0
        try:
            for entry in entries:
                await self._release_one(entry)
                done += 1
        finally:
            for entry in entries[done:]:
                self.lot.unclaim(entry.id)

    async def _release_one(self, entry: ParkEntry) -> None:
        outlet = self.outlet
        assert outlet is not None, "parking releases only once the sink runs"
        src = parked_source(entry)
        outs = await outlet.sink_record(src)
        self.lot.unclaim(entry.id)
        if outs is None:  # held: stays parked, tried again next sweep
            return
        final = await self.guard.call("release", src, released, entry, outs)
        await self._finish(entry, src, final)

    async def expire(self, entry: ParkEntry, now: float) -> None:
        src = parked_source(entry)
        outs = await self.guard.call("expire", src, self.pipe.expire, entry, now)
        await self._finish(entry, src, outs)
        self.lot.unclaim(entry.id)  # off the table, or back for the next sweep

    async def _finish(self, entry: ParkEntry, src: Source,
                      outs: list[Outbound] | Failed) -> None:
        """Produce an entry's outcome. A step that failed with the record dead-lettered
        still takes it off the table: the dead letter is its outcome now."""
        outlet = cast(Outlet, self.outlet)
        if outs is Failed.HELD:
            return
        if outs is Failed.DEAD_LETTERED:
            outs = [_tombstone(entry)]
        failed = await outlet.emit_outcome(outs, src)
        if failed is Failed.DEAD_LETTERED:
            await outlet.emit_outcome([_tombstone(entry)], src)

