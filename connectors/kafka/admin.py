"""Topic administration that every part needs, on any Kafka cluster (not only the embedded one)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka.admin import AdminClient, NewTopic

from tillbridge.connectors.kafka.topics import TOPIC_CONFIGS


def ensure_topics(
    bootstrap: str, names: Iterable[str], partitions: int = 4, replication: int = 1,
    timeout: float = 15.0, configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create the topics that do not exist yet (idempotent); ``configs``: per-topic settings
    (e.g. ``cleanup.policy``) applied at creation only, by default ``TOPIC_CONFIGS`` so a
    compacted topic is compacted whoever creates it first."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=timeout).topics)
    configs = TOPIC_CONFIGS if configs is None else configs
    new = [NewTopic(n, partitions, replication, config=dict(configs.get(n, {})))
           for n in names if n not in existing]
    if not new:
        return
    for name, fut in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            fut.result(timeout)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc) and "already exists" not in str(exc):
                raise RuntimeError(f"could not create topic {name}: {exc}") from exc
