"""Producing the reconciliation topic's records (built by ``streams/reconcile/documents.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import ensure_topics
from tillbridge.streams.reconcile.documents import documents

__all__ = ["documents", "publish"]


def publish(bootstrap: str, docs: Sequence[tuple[bytes, dict[str, Any]]],
            partitions: int) -> None:
    """Produce every document; raises RuntimeError naming how many were not delivered."""
    ensure_topics(bootstrap, [topics.RECONCILIATION], partitions=partitions)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all"})
    failed: list[bytes] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            failed.append(msg.key() or b"")

    for key, doc in docs:
        producer.produce(topics.RECONCILIATION, key=key, value=json.dumps(doc).encode(),
                         on_delivery=on_delivery)
    left = producer.flush(30)
    if failed or left:
        raise RuntimeError(f"{len(failed) + left} of {len(docs)} reconciliation records "
                           f"were not delivered to {topics.RECONCILIATION}")
