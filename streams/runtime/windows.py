"""The window agent: routed events of the windowed flows (inventory; sales in the ``batch``
or ``summary`` sync mode) gathered into event-time windows per key, each closed window
posted once.

At-least-once without losing a window: an event that joins an open window is held (not
acked) until its window is posted, so the input offset is committed only past events whose
windows are done; a restart, a rebalance, or Tansu's restarted worker joining as a new
group reads them again and rebuilds the open windows (``streams/windows/book.py`` says why
this, and not a Faust windowed table). How a window closes is ``runtime/window_close.py``;
which plan (engine, key, record) an event follows is ``flows/window_plans.py``: the
inventory's, or the one the event's ``tillbridge.mode`` tag names (the sync mode in force
when it was routed, so a switch never moves an event already routed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.streams.flows import sink
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.flows.window_plans import Plan, SharedPlan, inventory_plan, sale_plan
from tillbridge.streams.ledger.types import Posting, Skipped, Written
from tillbridge.streams.refdata.sync_modes import H_MODE
from tillbridge.streams.runtime import control, events
from tillbridge.streams.runtime.acks import AckQueue, Acks
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.runtime.guard import Failed, Guard
from tillbridge.streams.runtime.window_close import Member, WindowCloser, held_conflict
from tillbridge.streams.stages.deadletter import dead_letter, header
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection
from tillbridge.streams.windows.book import WindowBook
from tillbridge.streams.windows.engine import WindowEngine, WindowSpec

log = logging.getLogger(__name__)

WINDOW_BATCH = 1000
#: A partly filled batch waits this long for more. Short: adding to a window costs ~20 µs
#: an event and a fetch brings a few hundred, so a longer wait only idles the agent (at
#: 50 ms it lagged the ingest agent by seconds in ``make bench``'s window part).
WINDOW_WITHIN_S = 0.005
LOAD_TIMEOUT_S = 60.0


class WindowAgent:
    """``run(stream)`` is the Faust agent body; ``tick`` the wall-clock timer."""

    def __init__(self, pipe: Pipeline, emitter: EmitterLike, guard: Guard, spec: WindowSpec,
                 *, book: WindowBook | None = None, owned: Callable[[], set[int]] = set,
                 clock: Callable[[], float] = time.time,
                 source: Callable[[Any], Source] = events.source,
                 hold: Callable[[Any], None] = events.hold,
                 mine: Callable[[str], bool] = lambda _flow: True,
                 acks: Acks | None = None) -> None:
        self.pipe, self.emitter, self.guard, self.spec = pipe, emitter, guard, spec
        self.book = book or WindowBook()
        self.owned = owned
        self._clock, self._source = clock, source
        #: the window book flows this agent finishes after a crash (the inventory lane's
        #: agent and the Faust one split them: ``window_lane.py``)
        self.mine = mine
        #: Faust's events acked in offset order; the inventory lane gives its own (offsets
        #: it commits by hand)
        self.acks: Acks = acks if acks is not None else AckQueue(hold, lambda e: e.ack())
        self.plans: dict[str, Plan] = {f.kind: inventory_plan(f, spec)
                                       for f in pipe.flows.values() if f.windowed}
        self.engines: dict[str, WindowEngine[Member]] = {}
        self.closer = WindowCloser(pipe, emitter, self.book, self.acks)
        self.ready = asyncio.Event()
        self._follower: control.TopicFollower | None = None
        self._relearn = False
        #: the input's low watermark, set by the inventory lane before each batch (its
        #: location's records come from every partition); None: the Faust agent's input
        #: is keyed by its window key, one partition a key
        self.low: datetime | None = None

    @property
    def windows_posted(self) -> int:
        return self.closer.windows_posted

    # -- start -------------------------------------------------------------------------
    async def load(self, bootstrap: str, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Read the window book to its end (and follow it), then finish any window closed
        but not confirmed before a crash; only then are events taken."""
        self._follower = control.TopicFollower(bootstrap, topics.WINDOWS, self._apply,
                                               name="windows-follower")
        self._follower.start()
        # an assignment before this read is covered by it: no second read (~0.5 s) before
        # the first batch; one during or after it sets the flag again
        self._relearn = False
        await self._caught_up(timeout_s)
        await self.pipe.ready.wait()
        await self.finish_unfinished()
        self.start_engines()
        log.info("window book read: %d windows", len(self.book.records))
        self.ready.set()

    async def finish_unfinished(self) -> None:
        """Windows closed but not confirmed before a crash: a shared window is posted from
        the book; a batch window is forgotten (its members are read and written again)."""
        for name in sorted({r.flow for r in self.book.records.values() if self.mine(r.flow)}):
            plan = self.plan_named(name)
            for record in self.book.unfinished(name):
                if isinstance(plan, SharedPlan):
                    await self.closer.post(plan, record, [])
                else:
                    await self.closer.unbook(record)

    def _apply(self, key: bytes | None, value: bytes | None, _ts: int) -> None:
        self.book.apply(key, value)

    async def _caught_up(self, timeout_s: float) -> None:
        follower = self._follower
        if follower is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, follower.mark)
        if not await loop.run_in_executor(None, follower.caught_up.wait, timeout_s):
            log.error("window book not read to its end after %.0f s", timeout_s)

    def start_engines(self) -> None:
        for name in self.plans:
            self.engine(name)

    def engine(self, name: str) -> WindowEngine[Member]:
        found = self.engines.get(name)
        if found is None:
            plan = self.plan_named(name)
            found = self.engines[name] = WindowEngine(
                name, plan.spec, known=self.book.known(name),
                frontiers=self.book.frontiers(name),
                zone=lambda key: plan.zone(key.split(":", 1)[0]))
        return found

    def plan_named(self, name: str) -> Plan:
        """A plan by name: ``inventory``, or ``<kind>.<mode tag>`` (``sale.summary/4h``)."""
        plan = self.plans.get(name)
        if plan is None:
            kind, _, tag = name.partition(".")
            flow = next(f for f in self.pipe.flows.values() if f.kind == kind)
            stores = self.pipe.mappings.stores
            s = self.spec
            plan = self.plans[name] = sale_plan(
                flow, tag, s.size_s, s.grace_s, s.idle_s, s.retain_s,
                lambda store: stores[store].timezone if store in stores else "UTC")
        return plan

    def on_assigned(self) -> None:
        """A rebalance: windows other workers closed meanwhile are learnt before the next
        batch (their records may be read here again)."""
        self._relearn = True

    async def run(self, stream: Any) -> None:
        await self.ready.wait()
        async for batch in stream.take_events(WINDOW_BATCH, within=WINDOW_WITHIN_S):
            await self.handle(batch)

    # -- events ------------------------------------------------------------------------
    async def handle(self, batch: Sequence[Any]) -> None:
        if self._relearn:
            self._relearn = False
            await self._caught_up(LOAD_TIMEOUT_S)
            for name, engine in self.engines.items():
                engine.learn(self.book.known(name), self.book.frontiers(name))
        now = self._clock()
        for event in batch:
            self.acks.take(event)
            src = self._source(event)
            try:
                outs = self.add(src, event, now)
            except Exception as exc:  # noqa: BLE001 - never skip a record silently
                if await self.guard.failed("window", src, exc, event) is Failed.DEAD_LETTERED:
                    self.acks.done(event)
                continue
            if outs is None:
                continue  # in an open window: done when the window is posted
            for out in outs:
                await self.emitter.send(out)
            self.acks.done(event)
        await self.close_ready()

    def hold_to(self, low: datetime | None) -> None:
        """The input's low watermark (the inventory lane's, before each batch, an empty
        one too): a change releases every key's windows up to it at once."""
        if low == self.low:
            return
        self.low = low
        for engine in self.engines.values():
            engine.release(low)

    def revoked(self, partitions: set[int]) -> None:
        """Partitions gone to another worker: their open windows are dropped unposted and
        their records never acked here (the new owner reads them again)."""
        self.acks.drop(partitions)
        for engine in self.engines.values():
            for win in engine.open_windows:
                if {m.item.routed.partition for m in win.members.values()} & partitions:
                    engine.drop(win.wid)

    def add(self, src: Source, handle: Any, now: float) -> list[Outbound] | None:
        """One routed event into its window (None: it waits for its window's post); else
        what to produce for it at once (a skip, a duplicate, a dead letter, or the replayed
        outcome of a window posted before)."""
        # the inventory lane (``window_lane.py``) hands the event over already prepared
        ready = getattr(handle, "prepared", None) or self.pipe.prepare(src)
        if isinstance(ready, Outbound):
            return [ready]
        flow, origin, event, refs = ready
        tag = header(src.headers, H_MODE)
        plan = self.plan_named(flow.kind if flow.windowed or not tag else f"{flow.kind}.{tag}")
        skipped = plan.skip(event)
        if isinstance(skipped, Skipped):
            return self.pipe.messages(flow, event, origin, src, skipped)
        engine = self.engine(plan.name)
        member_id = plan.member_id(event)
        when = flow.event_time(event)
        added = engine.add(plan.key(event), member_id, when or datetime.fromtimestamp(now),
                           Member(flow, origin, src, event, refs, handle), None, now,
                           self.low)
        if added.verdict == "expired":
            return [dead_letter(origin, expired(member_id, when, engine))]
        if added.verdict == "late":
            log.info("late event %s (%s) into window %s", member_id, when, added.wid)
        if added.verdict in ("added", "late"):
            return None
        conflict = held_conflict(plan, engine, self.book, added, member_id, event)
        if conflict is not None:  # a changed re-send, never a quiet duplicate
            return self.pipe.messages(flow, event, origin, src, conflict)
        if added.verdict == "duplicate":
            return sink.posting_messages(flow, event, origin, Posting(()))
        record = self.book.get(added.wid)
        if isinstance(plan, SharedPlan) and record is not None and record.state == "posted" \
                and record.netsuite_id:
            written = Written(plan.record_type, record.netsuite_id, record.external_id, False)
            return sink.posting_messages(flow, event, origin, Posting((written,), replay=True))
        return []  # counted in a window that posted nothing, was dead-lettered, or wrote
        # its members one by one (a batch window: their outcomes went out then)

    async def tick(self) -> None:
        """Wall clock: a quiet store's windows close too."""
        if not self.ready.is_set():
            return
        for engine in list(self.engines.values()):
            engine.tick(self._clock())
        await self.close_ready()

    async def close_ready(self) -> None:
        await self.closer.close_all(self.plans, self.engines)

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()


def expired(member_id: str, when: datetime | None, engine: WindowEngine[Any]) -> Rejection:
    """The dead letter of an event older than its key's retention horizon."""
    return Rejection(Stage.SINK, ReasonCode.WINDOW_EXPIRED, "window.retention",
                     f"{member_id} at {when.isoformat() if when else '?'} is older than "
                     f"the {engine.flow} window retention ({engine.spec.retain_s:.0f} s) and "
                     "not known to the window book", {"member_id": member_id,
                                                      "event_time": str(when or "")})
