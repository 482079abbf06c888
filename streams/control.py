"""Operator commands to every worker (``tillbridge refdata refresh``) over a Kafka topic.

A plain consumer thread, not a Faust agent: every worker must see every command (a group
would hand each command to one worker), and an extra agent changed Faust's group
assignment on Tansu so that a restarted worker was handed no partitions (measured: the
kill/restart test lost every run after the control agent was added, none before).
The topic is read from the start (Tansu's "latest" offset is wrong), and only commands
sent after this worker started are acted on.
"""

from __future__ import annotations

import json
import logging
import threading
import time
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


class ControlFollower(threading.Thread):
    """Calls ``on_command(doc)`` for each command newer than this follower's start."""

    def __init__(self, bootstrap: str, topic: str,
                 on_command: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(name="control-follower", daemon=True)
        self._started_ms = int(time.time() * 1000)
        self._consumer = Consumer({"bootstrap.servers": bootstrap,
                                   "group.id": "tillbridge-control-follower",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 200})
        meta = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
        parts = sorted(meta.partitions) if meta and meta.partitions else [0]
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        self._on_command = on_command
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(100, 0.5):
                if msg.error() is not None or msg.timestamp()[1] < self._started_ms:
                    continue
                try:
                    doc = json.loads(msg.value() or b"{}")
                except ValueError:
                    log.warning("ignoring a control record that is not JSON")
                    continue
                if isinstance(doc, dict):
                    self._on_command(doc)
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
