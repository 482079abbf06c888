"""The inventory lane's pure parts: which offsets it may commit (never past a record held
in an open window) and its consumer settings for Tansu."""

from __future__ import annotations

from tillbridge.streams.runtime.acks import AckQueue
from tillbridge.streams.runtime.window_lane import (
    LaneEvent,
    Offsets,
    lane_config,
)
from tillbridge.streams.stages.messages import Source
from tillbridge.streams.windows.book import WindowRecord

TOPIC = "pos.inventory"


def event(offsets: Offsets, partition: int, offset: int) -> LaneEvent:
    return LaneEvent(Source(TOPIC, partition, offset, b"k", b"v", []), None, offsets)


def queue() -> AckQueue:
    return AckQueue(lambda _e: None, lambda e: e.ack())


def test_nothing_is_committed_past_a_record_held_in_an_open_window() -> None:
    offsets, acks = Offsets(TOPIC), queue()
    held, after, later = (event(offsets, 0, o) for o in (10, 11, 12))
    for e in (held, after, later):
        acks.take(e)
    acks.done(after)  # a dead letter out at once: still behind the held record
    acks.done(later)
    assert offsets.due() == []
    acks.done(held)  # its window posted: all three released, commit one past the last
    assert offsets.due() == [(TOPIC, 0, 13)]
    assert offsets.due() == [], "committed once"


def test_partitions_are_committed_apart() -> None:
    offsets, acks = Offsets(TOPIC), queue()
    a, b = event(offsets, 0, 5), event(offsets, 1, 7)
    acks.take(a)
    acks.take(b)
    acks.done(b)
    assert offsets.due() == [(TOPIC, 1, 8)]
    acks.done(a)
    assert offsets.due() == [(TOPIC, 0, 6)]


def test_a_release_never_moves_the_offset_back() -> None:
    offsets = Offsets(TOPIC)
    offsets.release(0, 20)
    offsets.release(0, 3)  # a record read again after a rebalance, released late
    assert offsets.due() == [(TOPIC, 0, 21)]


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
