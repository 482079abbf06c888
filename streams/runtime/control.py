"""Operator commands to every worker (``tillbridge refdata refresh``) over a Kafka topic.

A plain consumer thread, not a Faust agent: every worker must see every command (a group
would hand each command to one worker), and an extra agent changed Faust's group
assignment on Tansu so that a restarted worker was handed no partitions (measured: the
kill/restart test lost every run after the control agent was added, none before).
The topic is read from the start (Tansu's "latest" offset is wrong), and only commands
sent after this worker started are acted on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

log = logging.getLogger(__name__)

REFRESH_REFDATA = "refresh_refdata"


def send_command(bootstrap: str, topic: str, command: str, **args: Any) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=command.encode(),
                     value=json.dumps({"command": command, **args}).encode())
    if producer.flush(15):
        raise RuntimeError("the command was not delivered")


MARKER_PREFIX = b"__tillbridge_marker__/"


class TopicFollower(threading.Thread):
    """Reads every partition of a topic from the start, in a plain consumer thread (no
    group: every worker sees every record), and calls ``on_record(key, value, ts_ms)``.

    ``mark()`` answers "have I read everything written before now?" without high
    watermarks (Tansu's are wrong): it writes a marker record (a tombstone, so compaction
    drops it) to every partition and ``caught_up`` is set once all of them are read back.
    """

    def __init__(self, bootstrap: str, topic: str,
                 on_record: Callable[[bytes | None, bytes | None, int], None],
                 *, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._consumer = Consumer({"bootstrap.servers": bootstrap,
                                   "group.id": f"tillbridge-{name}",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 200,
                                   "logger": logging.getLogger("librdkafka.control")})
        meta = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
        parts = sorted(meta.partitions) if meta and meta.partitions else [0]
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self._on_record = on_record
        self._stop = threading.Event()
        self._servers = bootstrap
        self._topic = topic
        self._partitions = parts
        self._marker: bytes | None = None
        self._marked: set[int] = set()
        self.caught_up = threading.Event()

    def mark(self) -> None:
        """Write one marker per partition; ``caught_up`` is set when all are read back
        (marking again starts a new wait)."""
        self.caught_up.clear()
        self._marked = set()
        self._marker = MARKER_PREFIX + uuid.uuid4().hex.encode()
        producer = Producer({"bootstrap.servers": self._servers,
                              "logger": logging.getLogger("librdkafka.control")})
        for partition in self._partitions:
            producer.produce(self._topic, key=self._marker, value=None, partition=partition)
        if producer.flush(15):
            raise RuntimeError(f"markers to {self._topic} were not delivered")

    def run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(100, 0.5):
                if msg.error() is not None:
                    continue
                key = msg.key()
                if key is not None and key.startswith(MARKER_PREFIX):
                    partition = msg.partition()
                    if key == self._marker and partition is not None:
                        self._marked.add(partition)
                        if self._marked >= set(self._partitions):
                            self.caught_up.set()
                    continue
                try:
                    self._on_record(msg.key(), msg.value(), msg.timestamp()[1])
                except Exception:  # noqa: BLE001 - one bad record must not stop the thread
                    log.exception("%s: record at %s[%s]@%s not applied", self.name,
                                  msg.topic(), msg.partition(), msg.offset(),
                                  extra={"topic": msg.topic(), "partition": msg.partition(),
                                         "offset": msg.offset()})
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()


class ControlFollower(TopicFollower):
    """Calls ``on_command(doc)`` for each command newer than this follower's start."""

    def __init__(self, bootstrap: str, topic: str,
                 on_command: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(bootstrap, topic, self._command, name="control-follower")
        self._started_ms = int(time.time() * 1000)
        self._on_command = on_command

    def _command(self, key: bytes | None, value: bytes | None, ts_ms: int) -> None:
        if ts_ms < self._started_ms:
            return
        try:
            doc = json.loads(value or b"{}")
        except ValueError:
            log.warning("ignoring a control record that is not JSON")
            return
        if isinstance(doc, dict):
            self._on_command(doc)


async def read_to_end(bootstrap: str, topic: str,
                      on_record: Callable[[bytes | None, bytes | None, int], None], *,
                      name: str, timeout_s: float) -> bool:
    """Read a topic from its start to its end once (``on_record`` for each record, on the
    follower's thread), then stop; False when the end was not reached in ``timeout_s``."""
    follower = TopicFollower(bootstrap, topic, on_record, name=name)
    follower.start()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, follower.mark)
        done = await loop.run_in_executor(None, follower.caught_up.wait, timeout_s)
    finally:
        follower.stop()
    if not done:
        log.error("%s not read to its end after %.0f s", topic, timeout_s)
    return bool(done)
