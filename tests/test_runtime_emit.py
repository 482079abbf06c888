"""The emitter without a broker: queue full is an awaitable wait, never a blocked loop; a
refused message is a typed error, never an exit; undelivered messages are produced again
before a flush lets Faust commit. librdkafka is real where it can be without a broker (its
size check); elsewhere a fake producer plays the queue."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from confluent_kafka import KafkaError

from tillbridge.streams.runtime import emit as emit_mod
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.emit import Emitter, ProduceRefused
from tillbridge.streams.stages.messages import Outbound

NO_BROKER = "127.0.0.1:1"


class FakeProducer:
    """A librdkafka queue of ``capacity`` messages; the "broker" acknowledges a message
    ``latency_s`` after it was queued, and ``poll`` serves the acknowledged ones (freeing
    their slots). ``fail_first`` deliveries report an error (to be produced again)."""

    def __init__(self, capacity: int = 1000, fail_first: int = 0,
                 latency_s: float = 0.0) -> None:
        self.capacity = capacity
        self.latency_s = latency_s
        self.queue: list[tuple[str, bytes | None, Any]] = []
        self.delivered: list[tuple[str, bytes | None, bytes | None, Any]] = []
        self.fail_left = fail_first

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                headers: Any = None, on_delivery: Any = None) -> None:
        if len(self.queue) >= self.capacity:
            raise BufferError("Local: Queue full")
        at = time.monotonic() + self.latency_s
        self.queue.append((topic, key, (value, headers, on_delivery, at)))

    def _deliver_one(self) -> None:
        topic, key, (value, headers, cb, _at) = self.queue.pop(0)
        if self.fail_left:
            self.fail_left -= 1
            cb(KafkaError(KafkaError._MSG_TIMED_OUT), None)
        else:
            self.delivered.append((topic, key, value, headers))
            cb(None, None)

    def poll(self, timeout: float = 0) -> int:
        while self.queue and self.queue[0][2][3] <= time.monotonic():
            self._deliver_one()
        return 0

    def flush(self, timeout: float = 0) -> int:
        while self.queue:
            self._deliver_one()
        return 0


def test_emit_is_one_synchronous_call_and_false_when_the_queue_is_full() -> None:
    fake = FakeProducer(capacity=1)
    e = Emitter(NO_BROKER, producer=fake)
    fake.poll = lambda timeout=0: 0  # type: ignore[method-assign]  # nothing drains
    assert e.emit("t", b"k", b"v", [("h", b"1")]) is True
    assert e.emit("t", b"k2", b"v2") is False, "full: nothing queued, no blocking"
    assert [m[1] for m in fake.queue] == [b"k"]


def test_send_awaits_room_without_blocking_the_loop() -> None:
    fake = FakeProducer(capacity=2, latency_s=0.005)
    e = Emitter(NO_BROKER, producer=fake)
    ticks: list[float] = []

    async def other_work() -> None:
        for _ in range(20):
            ticks.append(time.monotonic())
            await asyncio.sleep(0)

    async def main() -> float:
        waits = metrics.EMIT_QUEUE_FULL_WAITS._value.get()
        side = asyncio.create_task(other_work())
        for i in range(6):
            await e.send(Outbound("t", str(i).encode(), b"v"))
        sent_at = time.monotonic()
        await side
        assert metrics.EMIT_QUEUE_FULL_WAITS._value.get() > waits
        return sent_at

    sent_at = asyncio.run(main())
    fake.flush()
    assert [d[1] for d in fake.delivered] == [str(i).encode() for i in range(6)], "in order"
    assert ticks[0] < sent_at, "other tasks ran while the sends waited for room"


def test_a_message_librdkafka_refuses_raises_a_typed_error_not_an_exit() -> None:
    e = Emitter(NO_BROKER)  # real librdkafka: its size check runs before any broker
    with pytest.raises(ProduceRefused) as info:
        e.emit("tillbridge.results.v1", b"k", b"x" * 2_000_000)
    assert info.value.topic == "tillbridge.results.v1"
    assert info.value.error.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_flush_produces_undelivered_messages_again_headers_and_all() -> None:
    fake = FakeProducer(fail_first=2)
    e = Emitter(NO_BROKER, producer=fake)
    fake.poll = lambda timeout=0: 0  # type: ignore[method-assign]  # delivered at flush
    for i in range(3):
        assert e.emit("t", str(i).encode(), b"v", [("h", str(i).encode())])
    asyncio.run(e.flush())
    assert sorted((d[1], d[3][0][1]) for d in fake.delivered) == [
        (b"0", b"0"), (b"1", b"1"), (b"2", b"2")]


def test_flush_exits_without_commit_when_messages_stay_undeliverable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeProducer(fail_first=100)
    e = Emitter(NO_BROKER, producer=fake, retries=2)

    def exit_(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(emit_mod.os, "_exit", exit_)
    e.emit("t", b"k", b"v")
    with pytest.raises(SystemExit) as info:
        e._flush_blocking()
    assert info.value.code == emit_mod.EXIT_UNDELIVERABLE
