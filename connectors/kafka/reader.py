"""Count and read topics by reading them, not by watermarks.

Tansu 0.6 answers "latest offset" with the start of the last stored batch + 1, so high
watermarks (and lag computed from them) are wrong there. `TopicTail` reads every partition
from the beginning without a consumer group and keeps what it saw, so callers can wait for
an exact count. Correct on Apache Kafka too, just not the cheapest way there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp: int = 0  # ms since epoch (CreateTime unless the topic says LogAppendTime)

    def header(self, name: str) -> str | None:
        for k, v in reversed(self.headers):
            if k == name and v is not None:
                return v.decode("utf-8", "replace")
        return None


class TopicTail:
    """Reads topics from the start and accumulates their records."""

    def __init__(self, bootstrap: str, topic_names: Iterable[str]) -> None:
        self.topics = list(topic_names)
        self.records: dict[str, list[Record]] = {t: [] for t in self.topics}
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "tillbridge-reader",  # required by librdkafka; never joined or committed
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 50,
        })
        meta = self._consumer.list_topics(timeout=10)
        assignment = []
        for name in self.topics:
            if name not in meta.topics:
                continue
            for p in meta.topics[name].partitions:
                assignment.append(TopicPartition(name, p, OFFSET_BEGINNING))
        self._consumer.assign(assignment)

    def poll(self, seconds: float = 0.2) -> int:
        """Read what is available within ``seconds``; returns how many records were new."""
        deadline = time.monotonic() + seconds
        new = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return new
            for msg in self._consumer.consume(1000, min(remaining, 0.1)):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"reading {msg.topic()}: {err}")
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                if topic is None or partition is None or offset is None:
                    continue  # only error events lack coordinates; handled above
                headers = cast(list[tuple[str, bytes | None]], list(msg.headers() or []))
                self.records[topic].append(Record(
                    topic, partition, offset, msg.key(), msg.value(), headers,
                    msg.timestamp()[1]))
                new += 1

    def count(self, topic: str | None = None) -> int:
        if topic is not None:
            return len(self.records[topic])
        return sum(len(v) for v in self.records.values())

    def wait_for(self, predicate: Callable[[TopicTail], bool], timeout: float,
                 on_progress: Callable[[TopicTail], None] | None = None) -> bool:
        """Poll until ``predicate(self)`` holds or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll(0.25)
            if on_progress:
                on_progress(self)
            if predicate(self):
                return True
        return predicate(self)

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicTail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
