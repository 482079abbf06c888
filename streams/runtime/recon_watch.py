"""The worker exports the latest reconciliation of each store it reads on the
reconciliation topic (``tillbridge reconcile`` publishes there, from anywhere): the command
is short-lived, the worker is what Prometheus scrapes."""

from __future__ import annotations

import json
import logging

from tillbridge.connectors.kafka import topics
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.control import TopicFollower

log = logging.getLogger(__name__)


def apply(_key: bytes | None, value: bytes | None, _ts_ms: int) -> None:
    """One record of the topic into the gauges (a record that is not JSON is logged)."""
    try:
        doc = json.loads(value or b"{}")
    except ValueError:
        log.warning("ignoring a reconciliation record that is not JSON")
        return
    if isinstance(doc, dict):
        metrics.reconciliation(doc)


def follow(bootstrap: str) -> TopicFollower:
    """Start reading the reconciliation topic from its start (so a restarted worker exports
    the latest figures again)."""
    follower = TopicFollower(bootstrap, topics.RECONCILIATION, apply,
                             name="reconciliation-follower")
    follower.start()
    return follower
