"""Consumer lag per partition, exported only where the broker's watermarks can be trusted.

Tansu 0.6 answers "latest offset" with the start of its last stored batch + 1, so a lag
computed from it is wrong (too small, sometimes negative). Rather than export a wrong number,
the worker sets ``tillbridge_consumer_lag_reliable`` to 0 there and leaves the lag series
empty; operators count by reading instead (``tillbridge dlq``/the demo do).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient

from tillbridge.streams.runtime import metrics

log = logging.getLogger(__name__)

UNRELIABLE_CLUSTER_PREFIXES = ("tansu",)


def watermarks_reliable(bootstrap: str, mode: str = "auto") -> bool:
    """``on``/``off`` force it; ``auto`` trusts every broker but Tansu (by cluster id)."""
    if mode in ("on", "off"):
        return mode == "on"
    try:
        conf: dict[str, Any] = {"bootstrap.servers": bootstrap,
                                "logger": logging.getLogger("librdkafka.lag")}
        cluster_id = AdminClient(conf).list_topics(
            timeout=10).cluster_id or ""
    except Exception:  # noqa: BLE001 - unknown broker: do not claim reliability
        return False
    return not cluster_id.lower().startswith(UNRELIABLE_CLUSTER_PREFIXES)


def lag(highwater: int | None, position: int | None) -> int | None:
    """Records not yet read: highwater - position (None when either is unknown)."""
    if highwater is None or position is None:
        return None
    return max(0, highwater - position)


class LagExporter:
    """Timer body: ``tillbridge_consumer_lag`` for every assigned partition, only where the
    broker's watermarks can be trusted (``reliable``)."""

    def __init__(self, consumer: Callable[[], Any], reliable: bool) -> None:
        self._consumer = consumer  # the app's consumer, looked up when the timer fires
        self.reliable = reliable
        metrics.LAG_RELIABLE.set(1 if reliable else 0)

    async def export(self) -> None:
        if not self.reliable:
            return
        try:
            consumer = self._consumer()
            for tp in consumer.assignment():
                value = lag(consumer.highwater(tp), await consumer.position(tp))
                if value is not None:
                    metrics.LAG.labels(tp.topic, str(tp.partition)).set(value)
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the worker
            log.debug("lag export skipped: %s", exc)
