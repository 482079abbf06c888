"""The window agent: routed events of the windowed flows (inventory) gathered into
event-time windows per key, each closed window posted once.

At-least-once without losing a window: an event that joins an open window is held (not
acked) until its window is posted, so the input offset is committed only past events whose
windows are done; a restart, a rebalance, or Tansu's restarted worker joining as a new
group reads them again and rebuilds the open windows (``streams/windows/book.py`` says why
this, and not a Faust windowed table). Closing a window is: its content into the window
book (produced and delivered) -> the NetSuite post by externalId -> the members' outcomes ->
the book's final state -> the members acked. A crash at any point repeats the same window:
the book fixes its members, NetSuite's externalId its record.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.errors import NetSuiteError, NetSuiteUnavailable
from tillbridge.streams.flows import sink
from tillbridge.streams.flows.base import Flow
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.flows.stock import post_window
from tillbridge.streams.flows.window_results import posted_results
from tillbridge.streams.ledger.stock import body_lines, revive
from tillbridge.streams.ledger.types import Posting, Skipped, Written
from tillbridge.streams.runtime import control, events, metrics
from tillbridge.streams.runtime.acks import AckQueue
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.runtime.guard import Failed, Guard
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection
from tillbridge.streams.windows.book import WindowBook, WindowRecord, digest
from tillbridge.streams.windows.engine import Window, WindowEngine, WindowSpec

log = logging.getLogger(__name__)

WINDOW_BATCH = 1000
#: A partly filled batch waits this long for more. Short: adding to a window costs ~20 µs
#: an event and a fetch brings a few hundred, so a longer wait only idles the agent (at
#: 50 ms it lagged the ingest agent by seconds in ``make bench``'s window part).
WINDOW_WITHIN_S = 0.005
LOAD_TIMEOUT_S = 60.0


class Member:
    """What a window keeps of one event: enough to build its line and its outcome."""

    __slots__ = ("event", "flow", "handle", "origin", "refs", "routed")

    def __init__(self, flow: Flow, origin: Source, routed: Source, event: Any, refs: Any,
                 handle: Any) -> None:
        self.flow, self.origin, self.routed = flow, origin, routed
        self.event, self.refs, self.handle = event, refs, handle


class WindowAgent:
    """``run(stream)`` is the Faust agent body; ``tick`` the wall-clock timer."""

    def __init__(self, pipe: Pipeline, emitter: EmitterLike, guard: Guard, spec: WindowSpec,
                 *, book: WindowBook | None = None, owned: Callable[[], set[int]] = set,
                 clock: Callable[[], float] = time.time,
                 source: Callable[[Any], Source] = events.source,
                 hold: Callable[[Any], None] = events.hold) -> None:
        self.pipe, self.emitter, self.guard, self.spec = pipe, emitter, guard, spec
        self.book = book or WindowBook()
        self.owned = owned
        self._clock, self._source = clock, source
        self.acks = AckQueue(hold, lambda e: e.ack())
        self.flows = {f.kind: f for f in pipe.flows.values() if f.windowed}
        self.engines: dict[str, WindowEngine[Member]] = {}
        self.ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._follower: control.TopicFollower | None = None
        self._relearn = False
        self.windows_posted = 0

    # -- start -------------------------------------------------------------------------
    async def load(self, bootstrap: str, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Read the window book to its end (and follow it), then finish any window closed
        but not confirmed before a crash; only then are events taken."""
        self._follower = control.TopicFollower(bootstrap, topics.WINDOWS, self._apply,
                                               name="windows-follower")
        self._follower.start()
        await self._caught_up(timeout_s)
        self.start_engines()
        log.info("window book read: %d windows", len(self.book.records))
        await self.pipe.ready.wait()
        for kind in self.flows:
            for record in self.book.unfinished(kind):
                await self._post(record, [])
        self.ready.set()

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
        for kind in self.flows:
            self.engines[kind] = WindowEngine(kind, self.spec, known=self.book.known(kind),
                                              frontiers=self.book.frontiers(kind))

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
            for kind, engine in self.engines.items():
                engine.learn(self.book.known(kind), self.book.frontiers(kind))
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
        ready = self.pipe.prepare(src)
        if isinstance(ready, Outbound):
            return [ready]
        flow, origin, event, refs = ready
        skipped = flow.skip(event)  # type: ignore[attr-defined]
        if isinstance(skipped, Skipped):
            return self.pipe.messages(flow, event, origin, src, skipped)
        engine = self.engines[flow.kind]
        member = Member(flow, origin, src, event, refs, handle)
        added = engine.add(flow.window_key(event), flow.member_id(event),  # type: ignore[attr-defined]
                           flow.event_time(event) or datetime.fromtimestamp(now),
                           member, None, now)
        if added.verdict == "expired":
            return [dead_letter(origin, expired(flow.member_id(event),  # type: ignore[attr-defined]
                                                flow.event_time(event), engine))]
        if added.verdict == "late":
            log.info("late event %s (%s) into window %s", flow.member_id(event),  # type: ignore[attr-defined]
                     flow.event_time(event), added.wid)
        if added.verdict in ("added", "late"):
            return None
        if added.verdict == "duplicate":
            return sink.posting_messages(flow, event, origin, Posting(()))
        record = self.book.get(added.wid)
        if record is not None and record.state == "posted" and record.netsuite_id:
            written = Written("inventoryAdjustment", record.netsuite_id, record.external_id,
                              False)
            return sink.posting_messages(flow, event, origin, Posting((written,), replay=True))
        return []  # counted in a window that posted nothing or was dead-lettered before

    async def tick(self) -> None:
        """Wall clock: a quiet store's windows close too."""
        if not self.ready.is_set():
            return
        for engine in self.engines.values():
            engine.tick(self._clock())
        await self.close_ready()

    # -- closing -----------------------------------------------------------------------
    async def close_ready(self) -> None:
        async with self._lock:
            for kind, engine in self.engines.items():
                ready = engine.take_ready()
                for window in ready:
                    await self.close(kind, window)
                if ready:
                    await self._retain(engine)

    async def _retain(self, engine: WindowEngine[Member]) -> None:
        """Forget the final windows retention lets go: in memory and, by a tombstone, on
        the book's topic (memory and the topic stay bounded)."""
        gone = engine.expire(self.book.closed(engine.flow))
        if not gone:
            return
        self.book.forget(gone)
        for wid in gone:
            await self.emitter.send(Outbound(topics.WINDOWS, wid.encode(), None))
        log.info("window retention: %d %s windows forgotten", len(gone), engine.flow)

    async def close(self, kind: str, window: Window[Member]) -> None:
        members = [m.item for m in window.members.values()]
        partitions = {m.routed.partition for m in members}
        if partitions - self.owned():
            log.warning("window %s not posted here: its partition moved", window.wid)
            return  # never acked: the new owner reads these events again
        flow = self.flows[kind]
        body = flow.window_body(  # type: ignore[attr-defined]
            window.key, window.start, window.end,
            [(m.item.event, m.item.refs, m.event_time, m.late) for m in window.members.values()],
            self.pipe.lookups)
        eid = body["externalId"] if body is not None else ""
        record = WindowRecord(
            window.wid, kind, window.key, window.start.isoformat(), window.end.isoformat(),
            eid, "closing" if body is not None else "empty",
            {mid: [m.event_time.isoformat(), m.late] for mid, m in window.members.items()},
            digest(body_lines(body)) if body is not None else "",
            body=json.loads(json.dumps(body, default=str)) if body is not None else None)
        await self._book(record)
        await self._post(record, members)

    async def _book(self, record: WindowRecord) -> None:
        self.book.put(record)
        await self.emitter.send(Outbound(topics.WINDOWS, record.wid.encode(), record.to_json()))
        await self.emitter.flush()

    async def _post(self, record: WindowRecord, members: list[Member]) -> None:
        """NetSuite, then the members' outcomes, then the book's final state, then acks."""
        outcome: Written | Rejection | None = None
        if record.body is not None:
            outcome = await self._write(record)
        outs: list[Outbound] = []
        if isinstance(outcome, Written):
            if outcome.created:
                metrics.POSTED.labels(outcome.record_type).inc()  # once: one record
            if members:
                outs += posted_results(members[0].flow, [(m.event, m.origin) for m in members],
                                       outcome)
        for m in members:
            if isinstance(outcome, Rejection):
                outs.append(dead_letter(m.origin, outcome))
            elif outcome is None:
                outs += self.pipe.messages(m.flow, m.event, m.origin, m.routed,
                                           Skipped(f"window {record.wid}: no net change"))
        await emit_all(self.emitter, outs)
        if isinstance(outcome, Written):
            final = record.with_state("posted", outcome.netsuite_id)
            self.windows_posted += 1
            log.info("window %s posted: %s %s (members %s%s)", record.wid,
                     outcome.external_id, outcome.netsuite_id, ",".join(record.members),
                     "" if outcome.created else ", already in NetSuite")
        elif isinstance(outcome, Rejection):
            final = record.with_state("conflict" if outcome.reason == "window_conflict"
                                      else "refused")
            log.error("window %s not posted: %s", record.wid, outcome.message)
        else:
            final = record.with_state("empty")
        await self._book(final)
        for m in members:
            self.acks.done(m.handle)

    async def _write(self, record: WindowRecord) -> Written | Rejection:
        assert record.body is not None and self.pipe.reliable is not None
        body = revive(record.body)
        while True:
            try:
                return await post_window(self.pipe.reliable, body)
            except NetSuiteUnavailable as err:
                await self.pipe.wait_for_netsuite(err)
            except NetSuiteError as err:
                return sink.rejection_for(err, "inventoryAdjustment", record.external_id)

    def stop(self) -> None:
        if self._follower is not None:
            self._follower.stop()


async def emit_all(emitter: EmitterLike, outs: Sequence[Outbound]) -> None:
    """Queue a window's outcomes in one synchronous run (librdkafka queues each in a few
    µs); only a full queue makes it wait, then go on in order."""
    emit = emitter.emit
    for out in outs:
        if not emit(out.topic, out.key, out.value, out.headers):
            await emitter.send(out)


def expired(member_id: str, when: datetime | None, engine: WindowEngine[Any]) -> Rejection:
    """The dead letter of an event older than its key's retention horizon."""
    return Rejection(Stage.SINK, ReasonCode.WINDOW_EXPIRED, "window.retention",
                     f"{member_id} at {when.isoformat() if when else '?'} is older than "
                     f"the {engine.flow} window retention ({engine.spec.retain_s:.0f} s) and "
                     "not known to the window book", {"member_id": member_id,
                                                      "event_time": str(when or "")})
