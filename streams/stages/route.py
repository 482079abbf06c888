"""Route stage: which destination a validated, enriched record goes to. Pure.

Orders and payments go to the real-time NetSuite sink; inventory and settlements will go to
the windowed batch aggregators. Routing by event family keeps each destination's topic
single-schema, so the sink and aggregators scale and fail independently.
"""

from __future__ import annotations

from tillbridge.connectors.kafka import topics
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection

ROUTES: dict[str, str] = {
    topics.SALE.name: topics.ROUTED_REALTIME,
    topics.PAYMENT.name: topics.ROUTED_REALTIME,
    topics.RETURN.name: topics.ROUTED_REALTIME,
    topics.OMNICHANNEL.name: topics.ROUTED_REALTIME,
}

#: Header carrying the enrichment result from enrich to the sink.
H_ENRICHMENT = "tillbridge.enrichment"
#: Headers carrying the source coordinates across the internal hop, for DLQ records.
H_SRC_TOPIC = "tillbridge.source.topic"
H_SRC_PARTITION = "tillbridge.source.partition"
H_SRC_OFFSET = "tillbridge.source.offset"


def destination(source_topic: str) -> str | Rejection:
    dest = ROUTES.get(source_topic)
    if dest is None:
        return Rejection(Stage.ROUTE, ReasonCode.INTERNAL_ERROR, "route.known_topic",
                         f"no route for topic {source_topic!r}", {"topic": source_topic})
    return dest
