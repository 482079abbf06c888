"""Oversized and poison records end in a DLQ with a reason, never stop a partition: the
size check before producing, the ``payload_too_large`` form, a refused dead letter shrunk,
and a DLQ that cannot be written retried with backoff. No broker."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import DEFAULT_MAX_MESSAGE_BYTES, max_message_bytes
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.emit import Emitter, RecordTooLarge
from tillbridge.streams.runtime.guard import DeadLetterReporter, Failed, Guard
from tillbridge.streams.runtime.health import HEALTH
from tillbridge.streams.stages.deadletter import (
    H_ORIG_SHA256,
    H_ORIG_SIZE,
    H_REASON,
    HEAD_BYTES,
    header,
    internal_error,
    record_size,
    too_large,
)
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.reasons import CATALOGUE, ReasonCode, Stage

NO_BROKER = "127.0.0.1:1"
BIG = bytes(range(256)) * 4400  # 1.1 MB, not all one byte (a head that proves the order)
SRC = Source("pos.sale.v1", 3, 41, b"store-1", BIG, [("trace", b"abc")])


class Producer:
    """Records what is produced; ``refuse_over``: raise like librdkafka above that size;
    ``size_fail_over``: accept, then report MSG_SIZE_TOO_LARGE at delivery (a broker whose
    real limit is below the declared one)."""

    def __init__(self, refuse_over: int | None = None,
                 size_fail_over: int | None = None) -> None:
        self.refuse_over = refuse_over
        self.size_fail_over = size_fail_over
        self.queued: list[tuple[str, Any, Any, Any, Any]] = []
        self.delivered: list[tuple[str, Any, Any, Any]] = []

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                headers: Any = None, on_delivery: Any = None) -> None:
        if self.refuse_over is not None and len(value or b"") > self.refuse_over:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.queued.append((topic, key, value, headers, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        while self.queued:
            topic, key, value, headers, cb = self.queued.pop(0)
            if self.size_fail_over is not None and len(value or b"") > self.size_fail_over:
                cb(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), None)
            else:
                self.delivered.append((topic, key, value, headers))
                cb(None, None)
        return 0


def _letter() -> Outbound:
    return internal_error(SRC, "sink", ValueError("boom"))


def test_payload_too_large_is_catalogued_decode_and_not_replayable() -> None:
    row = CATALOGUE[ReasonCode.PAYLOAD_TOO_LARGE]
    assert row.stage is Stage.DECODE and not row.replayable
    assert row.meaning and row.cause and row.fix


def test_too_large_keeps_coordinates_size_digest_and_the_first_bytes() -> None:
    small = too_large(_letter(), 10_000)
    assert small.topic == topics.dlq_topic(Stage.DECODE)
    assert header(small.headers, H_REASON) == "payload_too_large"
    assert header(small.headers, "__connect.errors.topic") == "pos.sale.v1"
    assert header(small.headers, "__connect.errors.partition") == "3"
    assert header(small.headers, "__connect.errors.offset") == "41"
    assert header(small.headers, H_ORIG_SIZE) == str(len(BIG))
    assert header(small.headers, H_ORIG_SHA256) == hashlib.sha256(BIG).hexdigest()
    assert header(small.headers, "tillbridge.original.reason") == "internal_error"
    assert small.value == BIG[:HEAD_BYTES] and small.key == b"store-1"
    assert record_size(small.key, small.value, small.headers) < 10_000


def test_record_size_counts_key_value_and_headers() -> None:
    assert record_size(b"kk", b"vvv", [("h", b"12"), ("n", None)]) == 2 + 3 + 1 + 2 + 1
    assert record_size(None, None, None) == 0


def test_an_oversized_dead_letter_is_produced_shrunk_before_any_broker_error() -> None:
    fake = Producer()
    e = Emitter(NO_BROKER, producer=fake, max_bytes=100_000)
    assert e.emit(*_args(_letter()))
    fake.flush()
    [(topic, _key, value, headers)] = fake.delivered
    assert topic == topics.dlq_topic(Stage.DECODE) and value == BIG[:HEAD_BYTES]
    assert header(headers, H_REASON) == "payload_too_large"


def test_an_oversized_output_is_refused_so_the_guard_dead_letters_its_input() -> None:
    e = Emitter(NO_BROKER, producer=Producer(), max_bytes=100_000)
    with pytest.raises(RecordTooLarge):
        e.emit("tillbridge.routed.realtime.v1", b"k", BIG)
    assert e.emit("tillbridge.routed.realtime.v1", b"k", BIG[:50_000]), "below: produced"


def test_a_dead_letter_refused_anyway_is_retried_as_the_truncated_form() -> None:
    fake = Producer(refuse_over=500_000)  # a limit lower than the one declared
    e = Emitter(NO_BROKER, producer=fake, max_bytes=5_000_000)
    assert e.emit(*_args(_letter()))
    fake.flush()
    assert [header(d[3], H_REASON) for d in fake.delivered] == ["payload_too_large"]


def test_a_dead_letter_the_broker_refuses_at_delivery_is_produced_again_shrunk() -> None:
    fake = Producer(size_fail_over=500_000)
    e = Emitter(NO_BROKER, producer=fake, max_bytes=5_000_000)
    assert e.emit(*_args(_letter()))
    asyncio.run(e.flush())
    assert [header(d[3], H_REASON) for d in fake.delivered] == ["payload_too_large"]


def test_a_dlq_that_cannot_be_written_is_retried_with_backoff_then_ready_again() -> None:
    sent: list[Outbound] = []
    fails = [RuntimeError("broker gone")] * 3

    async def send(out: Outbound) -> None:
        if fails:
            raise fails.pop()
        sent.append(out)

    seen: list[bool] = []

    async def main() -> Failed:
        reporter = DeadLetterReporter(send, attempts=None, backoff_s=0.001)

        async def watch() -> None:
            while not sent:
                seen.append(HEALTH.checks.get("dead_letters", None) is not None
                            and not HEALTH.checks["dead_letters"].ok)
                await asyncio.sleep(0)
        watcher = asyncio.ensure_future(watch())
        outcome = await Guard([reporter]).failed("sink", SRC, ValueError("x"))
        await watcher
        return outcome

    before = metrics.DLQ_PRODUCE_RETRIES._value.get()
    assert asyncio.run(main()) is Failed.DEAD_LETTERED and len(sent) == 1
    assert metrics.DLQ_PRODUCE_RETRIES._value.get() == before + 3
    assert any(seen), "not ready while the dead letter could not be produced"
    assert HEALTH.checks["dead_letters"].ok


def test_limit_falls_back_to_the_default_when_the_cluster_does_not_answer() -> None:
    limit, source = max_message_bytes(NO_BROKER, ["x"], timeout=0.5)
    assert limit == DEFAULT_MAX_MESSAGE_BYTES and source.startswith("default")


def _args(out: Outbound) -> tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]:
    return out.topic, out.key, out.value, out.headers
