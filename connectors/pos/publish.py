"""Publish POS events (generated or from JSON lines) to Kafka as Confluent Avro.

The producer is configured the way a till gateway should be: idempotent (a
retried send cannot duplicate a sale in the log), ``acks=all``, lz4, and a few
milliseconds of linger so a burst of receipts travels in one batch. Keys are
the ``pos_transaction_id`` so every event of one transaction lands in one
partition, in order. Delivery reports are counted and failures kept, so the
caller sees exactly what did not arrive instead of a silent loss.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.kafka.topics import EventTopic
from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.connectors.pos.jsonl import read_jsonl

MAX_KEPT_ERRORS = 50
#: librdkafka's own log lines (a lost broker is retried and logged for ever) go through
#: Python logging here, so a command can keep them quiet and report the outcome instead.
CLIENT_LOG = logging.getLogger("tillbridge.kafka.client")
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
}


@dataclass
class PublishStats:
    """Counts of one publishing run; ``errors`` keeps the first few failure messages."""

    attempted: int = 0  # events handed in, including those that could not be encoded
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)  # "clean" or the dirty kind
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.delivered == self.attempted

    @property
    def rate(self) -> float:
        """Delivered events per second."""
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0

    def _error(self, message: str) -> None:
        self.failed += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(message)


def publish_generated(
    bootstrap: str,
    registry_url: str,
    events: Iterable[GeneratedEvent],
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    *,
    producer_config: dict[str, Any] | None = None,
    flush_timeout: float = 30.0,
    codec: AvroCodec | None = None,
) -> PublishStats:
    """Encode and produce ``events``; returns once all are delivered, failed or timed out.

    ``rate`` caps events per second (None = as fast as possible). ``progress``
    gets the number of events delivered so far, about twice a second and once
    at the end. ``bytes`` values (the
    ``not_avro`` dirty kind) are produced unencoded. Encoding failures and
    delivery errors are counted in ``failed`` and listed in ``errors``; the
    run never stops half-way because of one bad event.
    """
    codec = codec or AvroCodec(registry_url)
    producer = Producer(
        {**PRODUCER_DEFAULTS, "logger": CLIENT_LOG, **(producer_config or {}),
         "bootstrap.servers": bootstrap}
    )
    stats = PublishStats()
    encoders: dict[EventTopic, Callable[[dict[str, Any]], bytes]] = {}

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            stats.delivered += 1
        else:
            key = msg.key() or b""
            stats._error(f"{msg.topic()} key={key.decode(errors='replace')}: {err.str()}")

    started = time.monotonic()
    last_report = started
    for n, event in enumerate(events):
        stats.attempted += 1
        if rate:
            wait = started + n / rate - time.monotonic()
            if wait > 0:
                producer.poll(wait)
        try:
            if isinstance(event.value, bytes):
                payload = event.value
            else:
                encode = encoders.get(event.topic)
                if encode is None:
                    encode = encoders[event.topic] = codec.encoder(event.topic)
                payload = encode(event.value)
        except Exception as exc:  # one bad event must not stop the run
            stats._error(
                f"{event.topic.name} key={event.key.decode(errors='replace')}: encode failed: {exc}"
            )
            continue
        _produce(producer, event.topic.name, event.key, payload, on_delivery)
        stats.produced += 1
        stats.by_kind[event.dirty_kind or "clean"] += 1
        producer.poll(0)
        now = time.monotonic()
        if progress is not None and now - last_report >= 0.5:
            progress(stats.delivered)
            last_report = now
    remaining = producer.flush(flush_timeout)
    if remaining:
        stats._error(f"flush timed out after {flush_timeout}s with {remaining} undelivered")
        stats.failed += remaining - 1
    stats.elapsed = time.monotonic() - started
    if progress is not None:
        progress(stats.delivered)
    return stats


def _produce(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    """Produce, waiting for queue space instead of failing when the local buffer is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(0.1)


def publish_jsonl(
    path: str | Path,
    bootstrap: str,
    registry_url: str,
    **kwargs: Any,
) -> PublishStats:
    """Publish the events of a JSON-lines file (see :mod:`tillbridge.connectors.pos.jsonl`).

    The whole file is validated first: if any line is bad, a
    :class:`~tillbridge.connectors.pos.jsonl.JsonLinesError` naming every bad
    line is raised and nothing is published. ``kwargs`` go to
    :func:`publish_generated`.
    """
    return publish_generated(bootstrap, registry_url, read_jsonl(path), **kwargs)
