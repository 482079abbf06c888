"""Kafka I/O for the reference-data changelog topic: a follower thread and a writer."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from .refdata import ReferenceData
from .refdata_sync import META, build_index

log = logging.getLogger(__name__)


class RefdataFollower(threading.Thread):
    """Reads the whole topic from the start, and keeps reading; every ``_meta`` record
    (written last by a refresh) hands a freshly built index to ``on_version``."""

    def __init__(self, bootstrap: str, topic: str,
                 on_version: Callable[[ReferenceData, int], None]) -> None:
        super().__init__(name="refdata-follower", daemon=True)
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": "tillbridge-refdata-follower",
            "enable.auto.commit": False, "fetch.wait.max.ms": 100,
        })
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self._on_version = on_version
        self._rows: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._rows)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                for msg in self._consumer.consume(500, 0.2):
                    if msg.error() is None:
                        self._apply(msg.key(), msg.value())
            except Exception:  # noqa: BLE001 - keep following; say why
                log.exception("reference data follower failed on a record")
        self._consumer.close()

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        name = key.decode()
        with self._lock:
            if value is None:
                self._rows.pop(name, None)
            else:
                self._rows[name] = json.loads(value)
            if name != META:
                return
            items = list(self._rows.items())
        ref, meta = build_index(items)
        self._on_version(ref, int((meta or {}).get("version", 0)))

    def stop(self) -> None:
        self._stop.set()


def publish(producer: Producer, topic: str, writes: Mapping[str, Any | None],
            meta: Mapping[str, Any]) -> None:
    """Rows (None = tombstone) then ``_meta``; returns once all are acknowledged."""
    for key, row in writes.items():
        producer.produce(topic, key=key.encode(),
                         value=None if row is None else json.dumps(row).encode())
        producer.poll(0)
    producer.produce(topic, key=META.encode(), value=json.dumps(meta).encode())
    if producer.flush(30):
        raise RuntimeError("reference data records were not acknowledged in 30 s")
