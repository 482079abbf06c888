"""The inventory lane's pure parts: which offsets it may commit (never past a record held
in an open window) and its consumer settings for Tansu."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from tillbridge.streams.runtime.acks import AckQueue, OffsetAcks
from tillbridge.streams.runtime.guard import Failed
from tillbridge.streams.runtime.window_lane import (
    NOTHING_YET,
    InventoryLane,
    LaneEvent,
    Marks,
    lane_config,
)
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.windows.book import WindowRecord

TOPIC = "pos.inventory"


def event(partition: int, offset: int) -> LaneEvent:
    return LaneEvent(Source(TOPIC, partition, offset, b"k", b"v", []), None)


def test_nothing_is_committed_past_a_record_held_in_an_open_window() -> None:
    acks = OffsetAcks(TOPIC)
    held, after, later = (event(0, o) for o in (10, 11, 12))
    for e in (held, after, later):
        acks.take(e)
    acks.done(after)  # a dead letter out at once: still behind the held record
    acks.done(later)
    assert acks.due() == [] and acks.pending() == 3
    acks.done(held)  # its window posted: all three released, commit one past the last
    assert acks.due() == [(TOPIC, 0, 13)]
    assert acks.due() == [], "committed once"
    assert acks.pending() == 0


def test_release_stops_at_the_first_record_still_held() -> None:
    acks = OffsetAcks(TOPIC)
    events = [event(0, o) for o in range(5)]
    for e in events:
        acks.take(e)
    for n in (1, 3, 0):  # 0 releases 0 and 1; 2 is still in its window
        acks.done(events[n])
    assert acks.due() == [(TOPIC, 0, 2)]
    acks.done(events[2])
    assert acks.due() == [(TOPIC, 0, 4)], "3 was done early: released with 2"
    acks.done(events[2])  # done again (a window closed twice): nothing moves
    acks.done(events[4])
    assert acks.due() == [(TOPIC, 0, 5)]


def test_partitions_are_committed_apart() -> None:
    acks = OffsetAcks(TOPIC)
    a, b = event(0, 5), event(1, 7)
    acks.take(a)
    acks.take(b)
    acks.done(b)
    assert acks.due() == [(TOPIC, 1, 8)]
    acks.done(a)
    assert acks.due() == [(TOPIC, 0, 6)]


def test_a_release_never_moves_the_offset_back() -> None:
    acks = OffsetAcks(TOPIC)
    acks.release(0, 20)
    acks.release(0, 3)  # a record read again after a rebalance, released late
    assert acks.due() == [(TOPIC, 0, 21)]


def test_consumer_settings_commit_by_hand_and_keep_tansu_waits_short() -> None:
    conf = lane_config("b:9092", "g-inventory-lane", 6.0, 50)
    assert conf["enable.auto.commit"] is False
    assert conf["fetch.wait.max.ms"] == 50
    assert conf["session.timeout.ms"] == 6000
    assert conf["max.poll.interval.ms"] == 6000  # librdkafka's join (rebalance) timeout


def test_a_book_record_encodes_as_before() -> None:
    rec = WindowRecord("w1", "inventory", "S001", "2026-01-01T00:00:00+00:00",
                       "2026-01-01T01:00:00+00:00", "eid", "closing",
                       {"M1": ["2026-01-01T00:10:00+00:00", False]}, "d", None,
                       {"lines": [{"qty": "2"}]})
    assert WindowRecord.from_json(rec.to_json()) == rec
    assert rec.to_json().startswith(b'{"body":{"lines":[{"qty":"2"}]},"content":"d"')


class Msg:
    """A confluent-kafka message's accessors (no broker needed for the lane's loop body)."""

    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None


class Agent:
    """The window agent's side the lane uses: its ack tracker and ``handle`` (recorded)."""

    def __init__(self) -> None:
        self.acks = OffsetAcks(TOPIC)
        self.batches: list[list[int]] = []
        self.lows: list[object] = []
        self.taken: dict[int, LaneEvent] = {}

    def hold_to(self, low: object) -> None:
        self.lows.append(low)

    async def handle(self, batch: list[LaneEvent]) -> None:
        """Takes each event as the real agent does and finishes none (all in open windows)."""
        for e in batch:
            self.acks.take(e)
            self.taken[e.raw.offset] = e
        self.batches.append([e.raw.offset for e in batch])


class Guard:
    def __init__(self) -> None:
        self.failed_at: list[tuple[str, int]] = []

    async def failed(self, stage: str, src: Source, exc: Exception, event: object) -> Failed:
        self.failed_at.append((stage, src.offset))
        return Failed.DEAD_LETTERED


def test_every_record_reaches_the_agent_in_offset_order_and_a_failure_is_dead_lettered(
) -> None:
    """A dead letter goes through the agent's batch in its turn (acks stay in offset order);
    a record whose ingest raised is dead-lettered after the records before it are taken,
    and is not committable while one of them is held in an open window."""
    agent, guard = Agent(), Guard()
    lane = InventoryLane.__new__(InventoryLane)
    lane.agent, lane.guard, lane.acks, lane.consumed = agent, guard, agent.acks, 0
    lane.marks = Marks()

    def ingest(raw: Source) -> Outbound:
        if raw.value == b"boom":
            raise ValueError("bad record")
        return Outbound("dlq", None, raw.value)

    lane._ingest = ingest  # type: ignore[assignment]
    msgs = [Msg(0, b"a"), Msg(1, b"boom"), Msg(2, b"b")]
    asyncio.run(lane.handle(msgs))
    assert agent.batches == [[0], [2]]
    assert guard.failed_at == [("decode", 1)]
    assert lane.consumed == 3
    assert agent.acks.pending() == 3 and lane.acks.due() == [], "held behind offset 0"
    agent.acks.done(agent.taken[0])
    assert lane.acks.due() == [(TOPIC, 0, 2)], "offset 1 released with 0; 2 still open"


def test_the_low_watermark_is_the_slowest_partition_not_quiet() -> None:
    marks = Marks(quiet_s=5.0)
    t0 = datetime(2026, 11, 26, 8, tzinfo=UTC)
    assert marks.low(100.0) is None
    marks.assign([0, 1], 100.0)
    marks.saw(0, t0 + timedelta(minutes=50), 100.0)
    assert marks.low(100.0) == NOTHING_YET, "partition 1 not read yet: nothing closes"
    marks.saw(0, t0 + timedelta(minutes=50), 100.0)
    marks.saw(1, t0 + timedelta(minutes=5), 100.0)
    marks.saw(1, t0 + timedelta(minutes=2), 101.0)  # an older one: the mark stays
    assert marks.low(101.0) == t0 + timedelta(minutes=5)
    marks.saw(0, t0 + timedelta(minutes=55), 104.0)
    assert marks.low(107.0) == t0 + timedelta(minutes=55), "partition 1 quiet: left out"
    assert marks.low(200.0) is None


def test_offset_acks_commit_where_an_ack_queue_would() -> None:
    """``OffsetAcks`` against the ``AckQueue`` it stands in for, on random orders of
    finishing (records across partitions, windows posting out of order, some done twice):
    after every step both allow the same commit position per partition."""
    for seed in range(30):
        rng = random.Random(seed)
        released: dict[int, int] = {}

        def release(e: LaneEvent, released: dict[int, int] = released) -> None:
            released[e.raw.partition] = max(released.get(e.raw.partition, -1),
                                            e.raw.offset + 1)

        queue = AckQueue(lambda _e: None, release, partition=lambda e: e.raw.partition)
        acks = OffsetAcks(TOPIC)
        committed: dict[int, int] = {}
        events = [event(p, o) for o in range(40) for p in range(3)]
        for e in events:
            queue.take(e)
            acks.take(e)
        order = events + rng.sample(events, 10)  # some done twice
        rng.shuffle(order)
        for e in order:
            queue.done(e)
            acks.done(e)
            committed.update((p, o) for _t, p, o in acks.due())
            assert committed == released, f"seed {seed}"
        assert committed == {0: 40, 1: 40, 2: 40} and acks.pending() == 0
