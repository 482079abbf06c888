"""Consumer lag per partition, exported only where the broker's watermarks can be trusted.

Tansu 0.6 answers "latest offset" with the start of its last stored batch + 1, so a lag
computed from it is wrong (too small, sometimes negative). Rather than export a wrong number,
the worker sets ``tillbridge_consumer_lag_reliable`` to 0 there and leaves the lag series
empty; operators count by reading instead (``tillbridge dlq``/the demo do).
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

UNRELIABLE_CLUSTER_PREFIXES = ("tansu",)


def watermarks_reliable(bootstrap: str, mode: str = "auto") -> bool:
    """``on``/``off`` force it; ``auto`` trusts every broker but Tansu (by cluster id)."""
    if mode in ("on", "off"):
        return mode == "on"
    try:
        cluster_id = AdminClient({"bootstrap.servers": bootstrap}).list_topics(
            timeout=10).cluster_id or ""
    except Exception:  # noqa: BLE001 - unknown broker: do not claim reliability
        return False
    return not cluster_id.lower().startswith(UNRELIABLE_CLUSTER_PREFIXES)


def lag(highwater: int | None, position: int | None) -> int | None:
    """Records not yet read: highwater - position (None when either is unknown)."""
    if highwater is None or position is None:
        return None
    return max(0, highwater - position)
