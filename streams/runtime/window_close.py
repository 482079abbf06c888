"""Closing a window (the window agent's second half, ``runtime/windows.py``).

A window of a *shared* plan (one NetSuite record per window: inventory, summary sales) is:
its content into the window book (produced and delivered) -> the NetSuite post by
externalId -> the members' outcomes -> the book's final state -> the members acked. A crash
at any point repeats the same window: the book fixes its members, NetSuite's externalId
its record.

A window of a *batch* plan (each member its own record) is: its members into the book ->
their records through NetSuite's async batch jobs (``flows/drain.py``: <= 100 a request,
each record by its own externalId, pre-checked) -> their outcomes -> the book ``posted``
-> acks. A batch window found ``closing`` at start is forgotten instead of finished: its
members were never acked, so they are read again and written again, which the per-record
externalIds make idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import MutableMapping, Sequence
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.batch import BatchWriter
from tillbridge.connectors.netsuite.errors import NetSuiteError, NetSuiteUnavailable
from tillbridge.streams.flows import drain, sink
from tillbridge.streams.flows.base import Flow
from tillbridge.streams.flows.drain import close_rank
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.flows.window_plans import Plan, SharedPlan
from tillbridge.streams.flows.window_results import posted_results
from tillbridge.streams.ledger.types import Refused, Skipped, Written
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.acks import Acks
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.records import Rejection
from tillbridge.streams.windows.book import WindowBook, WindowRecord, page_key
from tillbridge.streams.windows.engine import Added, Window, WindowEngine

log = logging.getLogger(__name__)


class Member:
    """What a window keeps of one event: enough to build its line and its outcome."""

    __slots__ = ("event", "flow", "handle", "origin", "refs", "routed")

    def __init__(self, flow: Flow, origin: Source, routed: Source, event: Any, refs: Any,
                 handle: Any) -> None:
        self.flow, self.origin, self.routed = flow, origin, routed
        self.event, self.refs, self.handle = event, refs, handle


def held_conflict(plan: Plan, engine: WindowEngine[Member], book: WindowBook, added: Added,
                  member_id: str, event: Any) -> Refused | None:
    """A re-send of a window's member (open: the held event; closed: its book entry) whose
    content differs: ``conflicting_resend``, never a quiet duplicate."""
    if added.verdict == "duplicate":
        win = next((w for w in engine.open_windows if w.wid == added.wid), None)
        held = win.members[member_id].item.event if win and member_id in win.members else None
        where = {"record_type": "window", "netsuite_id": None, "external_id": None}
    else:
        record = book.get(added.wid)
        held = record.members.get(member_id) if record is not None else None
        where = {"record_type": plan.record_type if isinstance(plan, SharedPlan) else "cashSale",
                 "netsuite_id": record.netsuite_id if record is not None else None,
                 "external_id": (record.external_id if record is not None else None)
                 or plan.own_external_id(event)}
    return plan.resend_conflict(event, held, {**where, "window": added.wid})


async def emit_all(emitter: EmitterLike, outs: Sequence[Outbound]) -> None:
    """Queue a window's outcomes in one synchronous run (librdkafka queues each in a few
    µs); only a full queue makes it wait, then go on in order."""
    emit = emitter.emit
    for out in outs:
        if not emit(out.topic, out.key, out.value, out.headers):
            await emitter.send(out)


class WindowCloser:
    """Books, posts and acks closed windows; forgets old ones (retention)."""

    def __init__(self, pipe: Pipeline, emitter: EmitterLike, book: WindowBook,
                 acks: Acks) -> None:
        self.pipe, self.emitter, self.book, self.acks = pipe, emitter, book, acks
        self.windows_posted = 0
        #: the sale flow's dedupe table for batch windows: not durable, the batch writer's
        #: externalId pre-check is what keeps a record from being written twice
        self.state: MutableMapping[str, Any] = {}
        self._writer: BatchWriter | None = None
        self._lock = asyncio.Lock()

    async def close_all(self, plans: dict[str, Plan],
                        engines: dict[str, WindowEngine[Member]]) -> None:
        async with self._lock:
            for name, engine in sorted(engines.items(), key=lambda e: close_rank(e[0])):
                ready = engine.take_ready()
                for n, window in enumerate(ready):
                    try:
                        await self.close(plans[name], window)
                    except Exception:  # noqa: BLE001 - a window is never dropped
                        # its members stay held (not acked), so the input is not committed
                        # past them: tried again at the next tick (book and post are
                        # idempotent by window id and externalId), or read again after a
                        # restart
                        metrics.WINDOW_CLOSE_FAILURES.labels(name).inc()
                        log.exception("window %s could not be closed; tried again at the "
                                      "next tick", window.wid)
                        engine.give_back(ready[n:])
                        ready = ready[:n]
                        break
                if ready:
                    await self.retain(engine)

    async def retain(self, engine: WindowEngine[Member]) -> None:
        """Forget the final windows retention lets go: in memory and, by a tombstone, on
        the book's topic (memory and the topic stay bounded)."""
        gone = engine.expire(self.book.closed(engine.flow))
        if not gone:
            return
        for wid in gone:
            record = self.book.get(wid)
            if record is not None:
                await self.unbook(record)
        log.info("window retention: %d %s windows forgotten", len(gone), engine.flow)

    async def close(self, plan: Plan, window: Window[Member]) -> None:
        members = [m.item for m in window.members.values()]
        book_members = {mid: [m.event_time.isoformat(), m.late, *plan.member_book(m.item.event)]
                        for mid, m in window.members.items()}
        if not isinstance(plan, SharedPlan):
            await self._close_batch(plan, window, members, book_members)
            return
        body = plan.body(window.key, window.start, window.end,
                         [(m.item.event, m.item.refs, m.event_time, m.late)
                          for m in window.members.values()], self.pipe.lookups)
        record = WindowRecord(
            window.wid, plan.name, window.key, window.start.isoformat(),
            window.end.isoformat(), body["externalId"] if body is not None else "",
            "closing" if body is not None else "empty", book_members,
            plan.content(body) if body is not None else "",
            body=json.loads(json.dumps(body, default=str)) if body is not None else None)
        record = await self.book_record(record)
        await self.post(plan, record, members, body)

    async def _close_batch(self, plan: Plan, window: Window[Member], members: list[Member],
                           book_members: dict[str, list[Any]]) -> None:
        record = WindowRecord(window.wid, plan.name, window.key, window.start.isoformat(),
                              window.end.isoformat(), "", "closing", book_members)
        record = await self.book_record(record)
        if self._writer is None:
            self._writer = drain.batch_writer(self.pipe)
        while True:
            try:
                per_member = await drain.drain_batch(self.pipe, self._writer,
                                                     [m.routed for m in members], self.state)
                break
            except NetSuiteUnavailable as err:  # everything in it is idempotent: again
                await self.pipe.wait_for_netsuite(err)
        await emit_all(self.emitter, [out for outs in per_member for out in outs])
        self.windows_posted += 1
        log.info("batch window %s written: %d records", window.wid, len(members))
        await self.book_record(record.with_state("posted"))
        for m in members:
            self.acks.done(m.handle)

    async def book_record(self, record: WindowRecord) -> WindowRecord:
        """Into the book and delivered. A ``closing`` record is the window's first: its
        members go on pages when they are too many for one record (``book.py``), and
        the record as booked (``member_pages`` set) is returned for its later states."""
        pages: list[bytes] = []
        if record.state == "closing" and not record.member_pages:
            record, pages = record.paged()
        for n, value in enumerate(pages):
            await self.emitter.send(Outbound(topics.WINDOWS, page_key(record.wid, n), value))
        self.book.put(record)
        await self.emitter.send(Outbound(topics.WINDOWS, record.wid.encode(), record.to_json()))
        await self.emitter.flush()
        return record

    async def unbook(self, record: WindowRecord) -> None:
        """A window out of the book: its record's tombstone and its pages'."""
        self.book.forget([record.wid])
        for n in range(record.member_pages):
            await self.emitter.send(Outbound(topics.WINDOWS, page_key(record.wid, n), None))
        await self.emitter.send(Outbound(topics.WINDOWS, record.wid.encode(), None))

    async def post(self, plan: SharedPlan, record: WindowRecord, members: list[Member],
                   body: dict[str, Any] | None = None) -> None:
        """NetSuite, then the members' outcomes, then the book's final state, then acks.
        ``body`` as built (else the book's, revived: a window closed before a crash)."""
        outcome: Written | Rejection | None = None
        if record.body is not None:
            outcome = await self._write(plan, record, body or plan.revive(record.body))
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
            log.info("window %s posted: %s %s (%d members%s)", record.wid,
                     outcome.external_id, outcome.netsuite_id, len(record.members),
                     "" if outcome.created else ", already in NetSuite")
        elif isinstance(outcome, Rejection):
            final = record.with_state("conflict" if outcome.reason == "window_conflict"
                                      else "refused")
            log.error("window %s not posted: %s", record.wid, outcome.message)
        else:
            final = record.with_state("empty")
        await self.book_record(final)
        for m in members:
            self.acks.done(m.handle)

    async def _write(self, plan: SharedPlan, record: WindowRecord,
                     body: dict[str, Any]) -> Written | Rejection:
        assert self.pipe.reliable is not None
        while True:
            try:
                result: Written | Rejection = await plan.post(self.pipe.reliable, body)
                return result
            except NetSuiteUnavailable as err:
                await self.pipe.wait_for_netsuite(err)
            except NetSuiteError as err:
                return sink.rejection_for(err, plan.record_type, record.external_id)
