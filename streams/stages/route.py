"""Route stage: which destination a validated, enriched record goes to. Pure.

Sales, payments, returns and orders go to the real-time NetSuite sink (one post per
record); inventory movements go to the window agent (one post per location and window,
``streams/windows``). Routing by event family keeps each destination's topic
single-schema, so the sink and aggregators scale and fail independently.
"""

from __future__ import annotations

from tillbridge.connectors.kafka import topics
from tillbridge.streams.stages.deadletter import header
from tillbridge.streams.stages.messages import Headers, Source
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection

ROUTES: dict[str, str] = {
    topics.SALE.name: topics.ROUTED_REALTIME,
    topics.PAYMENT.name: topics.ROUTED_REALTIME,
    topics.RETURN.name: topics.ROUTED_REALTIME,
    topics.OMNICHANNEL.name: topics.ROUTED_REALTIME,
    # a register close is posted by the sink as it comes (per store, register and day)
    topics.SETTLEMENT.name: topics.ROUTED_REALTIME,
    topics.INVENTORY.name: topics.ROUTED_WINDOW,
}

#: Header carrying the enrichment result from enrich to the sink.
H_ENRICHMENT = "tillbridge.enrichment"
#: Headers carrying the source coordinates across the internal hop, for DLQ records.
H_SRC_TOPIC = "tillbridge.source.topic"
H_SRC_PARTITION = "tillbridge.source.partition"
H_SRC_OFFSET = "tillbridge.source.offset"
#: The input key: an event is routed under the key of what it depends on (a return under its
#: sale's), and its dead letters must still carry its own key.
H_SRC_KEY = "tillbridge.source.key"


def destination(source_topic: str) -> str | Rejection:
    dest = ROUTES.get(source_topic)
    if dest is None:
        return Rejection(Stage.ROUTE, ReasonCode.INTERNAL_ERROR, "route.known_topic",
                         f"no route for topic {source_topic!r}", {"topic": source_topic})
    return dest


#: Headers added for the hop to the sink, dropped again by ``origin``.
HOP_HEADERS = frozenset({H_ENRICHMENT, H_SRC_TOPIC, H_SRC_PARTITION, H_SRC_OFFSET,
                         H_SRC_KEY, "tillbridge.double_scan_of"})


def hop_headers(src: Source, *extra: tuple[str, bytes]) -> Headers:
    """The routed record's headers: the input's, ``extra``, then its input coordinates (so a
    dead letter written at the sink points at the original record)."""
    key = [(H_SRC_KEY, src.key)] if src.key is not None else []
    return [*((k, v) for k, v in src.headers if v is not None), *extra,
            (H_SRC_TOPIC, src.topic.encode()),
            (H_SRC_PARTITION, str(src.partition).encode()),
            (H_SRC_OFFSET, str(src.offset).encode()), *key]


def _int(text: str | None, default: int) -> int:
    """A coordinate header as int; a missing or malformed one falls back (``origin`` runs
    inside the agents' error handling, where it must not raise)."""
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def origin(src: Source) -> Source:
    """A routed record as it was on its input topic (coordinates and headers), for the
    sink's outcomes and dead letters."""
    hdr = src.headers
    topic = header(hdr, H_SRC_TOPIC)
    key = next((v for k, v in reversed(hdr) if k == H_SRC_KEY), None)
    return Source(topic or src.topic,
                  _int(header(hdr, H_SRC_PARTITION), src.partition),
                  _int(header(hdr, H_SRC_OFFSET), src.offset),
                  # routed: the input key, or none when the input had none
                  key if topic is not None else src.key,
                  src.value, [(k, v) for k, v in hdr if k not in HOP_HEADERS])
