"""The inventory lane: raw inventory movements into their windows without Faust's
per-event stream and without the routed hop.

A confluent-kafka consumer of its own (group ``<app id>-inventory-lane``) takes batches
(``consume(n, timeout)``) of the inventory topic; each record goes through the pure ingest
stages (``Pipeline.ingest``: decode, validate, enrich) and, when it routes to the window
topic, straight into the window agent (``runtime/windows.py``: its engine, book and closer)
as if it had been read back from there. Measured in ``make bench``: two Faust hops cap the
window flow at ~0.08 of the bare loop; this lane removes both.

At-least-once, as the Faust path: every record is taken into the window agent's ack
tracker (``acks.OffsetAcks``: the lane's offsets, where the Faust agent keeps an
``AckQueue`` of events) and released strictly in offset order once its outcome is
produced (a dead letter, a result, or its window's post); only released offsets are
committed, after the emitter's flush. A record held in an open window is never
committed past. A restarted worker reads the window book first and then the uncommitted
records again, and a window already posted is recognised by the book (one post per
window, deterministic externalId).

Event time across partitions: the raw topic is keyed per movement, so a location's
movements come from every partition, and a consumer reading a backlog takes a run of one
partition, then of the next (a fetch brings up to 1 MB a partition: minutes or hours of
event time). Judged by the key's own watermark, the second partition's movements were
"late" (a 160,000-movement backlog made thousands of late lines, one per movement, and a
3.5 MB window). The lane keeps each partition's highest event time and hands the window
agent their minimum (``Marks.low``: partitions quiet for ``PARTITION_QUIET_S`` left out, so a
partition with nothing to say holds nothing back) and a key's windows close no further
than that, as a Kafka Streams or Flink job does with its input's low watermark.

One worker runs the lane and it takes every partition by assignment (no group
rebalance): the raw inventory topic is keyed per movement, not per location, so two lanes
would each hold part of a location's window.

Tansu: a worker killed with -9 stays in its consumer group as a ghost holding its
partitions, and every join waits the rebalance timeout (hence the assignment); a waiting
fetch is not woken by new data (``fetch.wait.max.ms`` is the worker's short
``fetch_max_wait_ms``); offsets are counted by reading, never from watermarks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust
from confluent_kafka import OFFSET_STORED, Consumer, Message, TopicPartition

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import ensure_topics
from tillbridge.streams.flows.base import Flow
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import faust_app, metrics
from tillbridge.streams.runtime.acks import OffsetAcks
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.runtime.guard import Failed, Guard, ingest_stage, standard
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.runtime.windows import WindowAgent
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.decode import decode
from tillbridge.streams.stages.messages import Outbound, RawHeaders, Source
from tillbridge.streams.stages.records import Rejection
from tillbridge.streams.windows.engine import WindowSpec

log = logging.getLogger(__name__)

#: the inventory's plan name in the window book (``flows/window_plans.py``)
INVENTORY_PLAN = "inventory"
PARTITIONS_TIMEOUT_S = 30.0
LANE_BATCH = 2000
#: A partly filled batch waits at most this long (seconds).
LANE_WAIT_S = 0.02
#: A partition with no record for this long (wall clock) no longer holds the low
#: watermark back.
PARTITION_QUIET_S = 5.0
#: The low watermark while a partition has given nothing yet: no window closes on event
#: time (the wall clock still closes a quiet store's).
NOTHING_YET = datetime(1970, 1, 1, tzinfo=UTC)


Prepared = tuple[Flow, Source, Any, Any]


@dataclass(slots=True)
class LaneEvent:
    """One raw record as the window agent sees it: ``raw`` (its ``Source``: the lane's
    ``OffsetAcks`` go by its partition and offset) and ``prepared`` (what
    ``Pipeline.prepare`` would give after the hop)."""

    raw: Source
    prepared: Prepared | Outbound | None


@dataclass
class Marks:
    """Per partition, the highest event time read and when (wall clock) the last record
    came; ``low`` is the minimum over the partitions not quiet."""

    quiet_s: float = PARTITION_QUIET_S
    _marks: dict[int, list[Any]] = field(default_factory=dict)

    def assign(self, partitions: Sequence[int], now: float) -> None:
        """The partitions read: each holds everything back until its first record, or
        until it has been quiet ``quiet_s`` (an empty partition)."""
        for p in partitions:
            self._marks.setdefault(p, [None, now])

    def saw(self, partition: int, when: datetime, now: float) -> None:
        mark = self._marks.get(partition)
        if mark is None:
            self._marks[partition] = [when, now]
            return
        if mark[0] is None or when > mark[0]:
            mark[0] = when
        mark[1] = now

    def low(self, now: float) -> datetime | None:
        live = [when for when, seen in self._marks.values() if now - seen <= self.quiet_s]
        if not live:
            return None
        if None in live:  # a partition not read yet
            return NOTHING_YET
        return min(live)


def source_of(msg: Message) -> Source:
    """A confluent-kafka message as the pipeline's ``Source``."""
    return Source(msg.topic() or "", msg.partition() or 0, msg.offset() or 0, msg.key(),
                  msg.value(), cast(RawHeaders, msg.headers() or []))


class Ingest:
    """``Pipeline.ingest``'s steps for an inventory record (decode, validate, enrich), but
    the decoded event and refs are kept instead of a routed record (no second decode).
    The event's "routed" record is its raw one: acks go by its partition and offset, and
    its origin is itself."""

    def __init__(self, pipe: Pipeline, topic: str) -> None:
        self.pipe, self.flow, self.topic = pipe, pipe.flows.get(topic), topic
        #: records consumed and validated since the last ``count`` (the counters are
        #: moved once a batch: two labelled increments a record were a tenth of its cost)
        self.consumed = self.validated = 0

    def __call__(self, raw: Source) -> Prepared | Outbound:
        flow = self.flow
        if flow is None or not flow.windowed:
            return self.pipe.ingest(raw)  # not a windowed flow: its routed record or DLQ
        self.consumed += 1
        event = decode(self.pipe.codec, raw)
        if isinstance(event, Outbound):
            return event
        refs = flow.resolve(event, self.pipe.lookups)
        if isinstance(refs, Rejection):
            return dead_letter(raw, refs)
        self.validated += 1
        return flow, raw, event, refs

    def count(self) -> None:
        """The batch's counts into ``tillbridge_events_consumed_total`` and ``_validated``
        (the series made at the first record: one made before would read 0 beside the
        ingest agent's; not ``routed``: nothing is routed)."""
        if self.consumed:
            metrics.CONSUMED.labels(self.topic).inc(self.consumed)
        if self.validated:
            metrics.VALIDATED.labels(self.topic).inc(self.validated)
        self.consumed = self.validated = 0


def lane_config(bootstrap: str, group: str, session_s: float, fetch_wait_ms: int
                ) -> dict[str, Any]:
    session_ms = int(session_s * 1000)
    return {"bootstrap.servers": bootstrap, "group.id": group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": session_ms,
            "max.poll.interval.ms": max(session_ms, 1000),
            "fetch.wait.max.ms": fetch_wait_ms, "enable.partition.eof": False}


class InventoryLane:
    """``run()`` is the lane's task: consume, ingest, window, commit; it never raises
    out (a failed batch step is logged and the records stay uncommitted)."""

    def __init__(self, pipe: Pipeline, agent: WindowAgent, emitter: EmitterLike,
                 guard: Guard, config: dict[str, Any], *,
                 consumer: Callable[[dict[str, Any]], Any] = Consumer,
                 topic: str = topics.INVENTORY.name) -> None:
        self.pipe, self.agent, self.emitter, self.guard = pipe, agent, emitter, guard
        if not isinstance(agent.acks, OffsetAcks):
            raise TypeError("the lane's window agent must ack by offset (OffsetAcks)")
        self.acks = agent.acks  # what the lane commits
        self.topic = topic
        self._config, self._make = config, consumer
        self._stopping = False
        self.consumed = 0
        self._ingest = Ingest(pipe, topic)
        self.marks = Marks()

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        await self.agent.ready.wait()
        loop = asyncio.get_running_loop()
        consumer = self._make(self._config)
        # every partition by assignment, not a group subscription: one worker runs the
        # lane, and on Tansu a worker killed with -9 stays in its group as a ghost holding
        # its partitions (and every join waits the rebalance timeout). Offsets are still
        # committed under the group and read back from it at start.
        parts = await loop.run_in_executor(None, self.partitions, consumer)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_STORED) for p in parts])
        self.marks.assign(parts, time.time())
        try:
            while not self._stopping:
                msgs = await loop.run_in_executor(None, consumer.consume, LANE_BATCH,
                                                  LANE_WAIT_S)
                try:
                    for m in msgs:
                        if m.error():  # a client notice, not a record: nothing to count
                            log.warning("inventory lane consumer: %s", m.error())
                    await self.handle([m for m in msgs if not m.error()])
                    await self.commit(consumer)
                except Exception:  # noqa: BLE001 - the lane must keep running
                    log.exception("inventory lane batch failed; records stay uncommitted")
        finally:
            await loop.run_in_executor(None, consumer.close)

    def partitions(self, consumer: Any) -> list[int]:
        meta = consumer.list_topics(self.topic, timeout=PARTITIONS_TIMEOUT_S)
        return sorted(meta.topics[self.topic].partitions)

    def stop(self) -> None:
        self._stopping = True

    async def handle(self, msgs: Sequence[Any]) -> None:
        """Each record ingested; its dead letter out at once, or it joins the window
        agent's batch (windows, results, posts)."""
        ingest, acks, saw = self._ingest, self.agent.acks, self.marks.saw
        batch: list[LaneEvent] = []
        now = time.time()
        if msgs and not self.consumed:
            metrics.LANE_FIRST_RECORD.set(now)  # the bench's start of the span
        for msg in msgs:
            self.consumed += 1
            raw = source_of(msg)
            event = LaneEvent(raw, None)
            try:
                event.prepared = ready = ingest(raw)
                if type(ready) is tuple:  # (flow, origin, event, refs): not a dead letter
                    when = ready[0].event_time(ready[2])
                    if when is not None:
                        saw(raw.partition, when, now)
            except Exception as exc:  # noqa: BLE001 - never skip a record silently
                await self.agent.handle(batch)  # the records before it first (acks in order)
                batch = []
                acks.take(event)
                failed = await self.guard.failed(ingest_stage(exc), raw, exc, event)
                if failed is Failed.DEAD_LETTERED:
                    acks.done(event)
                continue
            # a dead letter too: the agent emits it in its turn, so acks stay in order
            batch.append(event)
        if isinstance(ingest, Ingest):  # (a test hands in a bare function)
            ingest.count()
        self.agent.hold_to(self.marks.low(now))
        await self.agent.handle(batch)

    async def commit(self, consumer: Any) -> None:
        """Released offsets committed after everything produced for them is acked."""
        due = self.acks.due()
        if not due:
            return
        await self.emitter.flush()
        consumer.commit(offsets=[TopicPartition(t, p, o) for t, p, o in due],
                        asynchronous=True)


def _no_hold(_event: Any) -> None:
    """A lane record is held by staying unreleased in the ``AckQueue``: nothing to do."""


def install(app: faust.App, settings: Settings, pipe: Pipeline, out: EmitterLike
            ) -> WindowAgent:
    """The lane's own window agent (its book loaded before the first record) and the
    lane's task and wall-clock tick on ``app``; the agent is returned (``ready``)."""
    bootstrap = settings.kafka_bootstrap_servers or ""
    spec = WindowSpec(settings.window_s, settings.window_grace_s, settings.window_idle_s,
                      settings.window_retain_s)
    guard = standard(out.send, origin=pipe.origin, hold=_no_hold)
    agent = WindowAgent(pipe, out, guard, spec, source=lambda e: e.raw, hold=_no_hold,
                        mine=lambda flow: flow == INVENTORY_PLAN,
                        acks=OffsetAcks(topics.INVENTORY.name))
    config = lane_config(bootstrap, f"{settings.app_id}-inventory-lane",
                         settings.session_timeout_s, settings.fetch_max_wait_ms)
    lane = InventoryLane(pipe, agent, out, guard, config)
    app.inventory_lane = lane  # type: ignore[attr-defined]  # tests and the demo read it

    @app.task
    async def inventory_lane() -> None:
        ensure_topics(bootstrap, [topics.INVENTORY.name, topics.ROUTED_WINDOW, topics.WINDOWS],
                      partitions=settings.topic_partitions, configs=topics.TOPIC_CONFIGS)
        await agent.load(bootstrap)
        try:
            await lane.run()
        finally:
            agent.stop()

    faust_app.every(app, settings.window_tick_s, agent.tick)
    return agent
