"""The benchmark workload: clean ~1 KB sales from the POS generator, pre-published."""

from __future__ import annotations

from confluent_kafka import Producer

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.devstack.pos.generator import generate


def encoded_sales(registry_url: str, n: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    encode = AvroCodec(registry_url).encoder(topics.SALE)
    # Baskets of 7+ lines make ~1 KB sales, the size the targets were measured with.
    events = generate(n, seed=seed, dirty=0.0, min_lines=7)
    return [(ev.key, encode(ev.value)) for ev in events]  # type: ignore[arg-type]


def publish(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "enable.idempotence": True})
    for key, value in pairs:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
