"""Kafka side of `tillbridge dlq`: read the DLQ and audit topics to their end, republish
dead letters to their source topics, append audit entries.

"The end" is decided by reading, not by trusting watermarks: Tansu reports the start of a
partition's last batch + 1 as its high watermark, so the watermark is only used as a floor
(we never stop before reading that far) and reading then continues until the topics stay
quiet for a moment. On Apache Kafka the floor is exact and the quiet wait is just slack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import ensure_topics
from tillbridge.connectors.kafka.reader import Record, TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec, DecodeError
from tillbridge.streams.ops.dlq.model import (
    AuditEntry,
    DeadLetter,
    record_id,
    replay_headers,
    replay_target,
)
from tillbridge.streams.runtime.settings import Settings

log = logging.getLogger(__name__)


def _floors(bootstrap: str, names: Sequence[str], timeout: float) -> dict[tuple[str, int], int]:
    """Per partition, the lowest offset a complete read must reach (absent: empty)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tillbridge-dlq-floor",
                         "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(timeout=timeout)
        floors = {}
        for name in names:
            if name not in meta.topics:
                continue
            for p in meta.topics[name].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p),
                                                           timeout=timeout)
                if high > low:
                    floors[(name, p)] = high - 1
        return floors
    finally:
        consumer.close()


def read_to_end(bootstrap: str, names: Sequence[str], *, quiet: float = 0.4,
                timeout: float = 60.0) -> list[Record]:
    """Every record of ``names`` now in Kafka; raises TimeoutError rather than return part."""
    floors = _floors(bootstrap, names, min(timeout, 15.0))
    seen: dict[tuple[str, int], int] = {}
    read = dict.fromkeys(names, 0)
    deadline = time.monotonic() + timeout
    with TopicTail(bootstrap, names) as tail:
        last_new = time.monotonic()
        while True:
            if tail.poll(0.1):
                last_new = time.monotonic()
                for name in names:
                    for rec in tail.records[name][read[name]:]:
                        seen[(name, rec.partition)] = max(seen.get((name, rec.partition), -1),
                                                          rec.offset)
                    read[name] = len(tail.records[name])
            reached = all(seen.get(tp, -1) >= floor for tp, floor in floors.items())
            if reached and time.monotonic() - last_new >= quiet:
                return [r for name in names for r in tail.records[name]]
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {', '.join(names)} to the end in {timeout}s")


def to_dead_letter(rec: Record, codec: AvroCodec | None) -> DeadLetter:
    """Wrap a DLQ record, decoding its value with the schema of the topic it came from."""
    sale, error = None, None
    source = rec.header("__connect.errors.topic") or ""
    if codec is None:
        error = "SCHEMA_REGISTRY_URL not set: value not decoded"
    else:
        try:
            sale = codec.decode(rec.value or b"", source)
        except DecodeError as exc:
            error = str(exc)
    return DeadLetter(rec.topic, rec.partition, rec.offset, rec.key, rec.value,
                      list(rec.headers), sale, error)


class KafkaBackend:
    """The `dlq` commands' view of Kafka (see :class:`tillbridge.streams.ops.dlq.model.Backend`)."""

    def __init__(self, settings: Settings, *, quiet: float = 0.4) -> None:
        self.bootstrap = settings.kafka_bootstrap_servers or ""
        self.registry = settings.schema_registry_url
        self.partitions = settings.topic_partitions
        self.quiet = quiet

    def snapshot(self) -> tuple[list[DeadLetter], list[AuditEntry]]:
        names = [*topics.DLQ_TOPICS, topics.DLQ_AUDIT]
        records = read_to_end(self.bootstrap, names, quiet=self.quiet)
        codec = AvroCodec(self.registry) if self.registry else None
        letters = [to_dead_letter(r, codec) for r in records if r.topic != topics.DLQ_AUDIT]
        # Entries are keyed by id, so one id's entries share a partition and arrive in order:
        # "latest per id" (audit_index) is well defined.
        audit = []
        for r in records:
            if r.topic == topics.DLQ_AUDIT and r.value:
                try:
                    audit.append(AuditEntry.from_json(r.value))
                except (ValueError, TypeError) as exc:
                    log.warning("unreadable audit record %s:%s:%s (%s)", r.topic, r.partition,
                                r.offset, exc)
        return letters, audit

    def _producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                         "acks": "all", "linger.ms": 5})

    def republish(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        producer = self._producer()
        meta = producer.list_topics(timeout=10)
        done: dict[str, str] = {}

        def delivered(letter_id: str) -> Callable[[KafkaError | None, Message], None]:
            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                if err is None:
                    done[letter_id] = record_id(msg.topic() or "", msg.partition() or 0,
                                                msg.offset() or 0)
            return on_delivery

        for letter in letters:
            parts = meta.topics.get(letter.source_topic or "")
            topic, partition = replay_target(letter, parts.partitions if parts else ())
            # No partition argument at all when the original one is gone: the partitioner picks.
            kwargs: dict[str, Any] = {} if partition is None else {"partition": partition}
            headers: list[tuple[str, str | bytes | None]] = list(replay_headers(letter))
            producer.produce(topic, key=letter.key, value=letter.value, headers=headers,
                             on_delivery=delivered(letter.id), **kwargs)
        producer.flush(30)
        return done

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        ensure_topics(self.bootstrap, [topics.DLQ_AUDIT], partitions=self.partitions,
                      configs=topics.TOPIC_CONFIGS)
        producer = self._producer()
        failed: list[str] = []

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:  # the key is the dead letter's id
                failed.append((msg.key() or b"").decode())

        for entry in entries:
            producer.produce(topics.DLQ_AUDIT, key=entry.id.encode(), value=entry.to_json(),
                             on_delivery=on_delivery)
        left = producer.flush(30)
        if failed or left:
            raise RuntimeError(f"audit records not written for {failed or left}")
