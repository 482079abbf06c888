"""Topic administration that every part needs, on any Kafka cluster (not only the embedded one)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

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


#: Kafka's own default ``message.max.bytes`` (1 MiB + batch overhead), rounded down: the
#: limit assumed when the cluster does not say.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000


def max_message_bytes(bootstrap: str, topic_names: Iterable[str], *,
                      default: int = DEFAULT_MAX_MESSAGE_BYTES,
                      timeout: float = 5.0) -> tuple[int, str]:
    """The largest record every one of ``topic_names`` accepts, and where the figure came
    from: the smallest of the topics' ``max.message.bytes`` and the broker's
    ``message.max.bytes``, read with ``describe_configs``.

    Tansu (the embedded broker) does not answer ``describe_configs`` for every resource, and
    a cluster may deny it (ACLs): whatever is not answered in ``timeout`` is left out, and
    with no answer at all ``default`` is used; never raises, so a worker always starts."""
    from confluent_kafka.admin import ConfigResource  # noqa: PLC0415 - only here

    found: list[int] = []
    try:
        conf: dict[str, Any] = {"bootstrap.servers": bootstrap,
                                "logger": logging.getLogger("librdkafka.admin")}
        admin = AdminClient(conf)
        meta = admin.list_topics(timeout=timeout)
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in topic_names
                     if n in meta.topics]
        resources += [ConfigResource(ConfigResource.Type.BROKER, str(b))
                      for b in list(meta.brokers)[:1]]
        futures = admin.describe_configs(resources, request_timeout=timeout) \
            if resources else {}
        for res, fut in futures.items():
            name = "max.message.bytes" if res.restype == ConfigResource.Type.TOPIC \
                else "message.max.bytes"
            try:
                entry = fut.result(timeout).get(name)
            except Exception:  # noqa: BLE001, S112 - not answered: use what the others say
                continue
            if entry is not None and entry.value and str(entry.value).isdigit():
                found.append(int(entry.value))
    except Exception:  # noqa: BLE001 - unreachable cluster: the default, said so below
        found = []
    if not found:
        return default, "default (describe_configs not answered)"
    return min(found), "describe_configs"
