"""The ingest path, for every family alike: decode -> the family's rules -> route.

A record leaves as the routed record (original bytes, keyed by the record it depends on,
with hop headers that carry its input coordinates and what the sink needs), or as its dead
letter. Pure apart from the counters and the sale flow's double-scan window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.streams.flows.base import Flow, Lookups
from tillbridge.streams.refdata.sync_modes import H_MODE
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages import route
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.decode import decode
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection


def ingest(flows: Mapping[str, Flow], codec: AvroCodec, lookups: Lookups,
           src: Source) -> Outbound:
    """One input record's routed record or dead letter."""
    metrics.CONSUMED.labels(src.topic).inc()
    dest = route.destination(src.topic)
    flow = flows.get(src.topic)
    if isinstance(dest, Rejection) or flow is None:
        return dead_letter(src, dest if isinstance(dest, Rejection) else Rejection(
            Stage.ROUTE, ReasonCode.INTERNAL_ERROR, "route.known_flow",
            f"no flow for topic {src.topic!r}", {"topic": src.topic}))
    event = decode(codec, src)
    if isinstance(event, Outbound):
        return event
    refs = flow.resolve(event, lookups)
    if isinstance(refs, Rejection):
        return dead_letter(src, refs)
    metrics.VALIDATED.labels(src.topic).inc()
    tag = lookups.mappings.sync.window_tag(flow.kind)
    if tag is not None:  # sales in batch or summary: the window agent
        metrics.ROUTED.labels(src.topic, topics.ROUTED_WINDOW).inc()
        return Outbound(topics.ROUTED_WINDOW, window_route_key(event), src.value,
                        route.hop_headers(src, *flow.hop_headers(event, refs),
                                          (H_MODE, tag.encode())))
    metrics.ROUTED.labels(src.topic, dest).inc()
    return Outbound(dest, flow.route_key(event), src.value,
                    route.hop_headers(src, *flow.hop_headers(event, refs)))


def window_route_key(event: Mapping[str, Any]) -> bytes:
    """A windowed sale's routed key: its store and register, so one register's window
    is on one partition (one worker)."""
    return f"{event['store_id']}:{event['register_id']}".encode()
