"""Topic names and schema-registry subjects: the one place they are spelled.

Subjects follow Confluent's TopicNameStrategy (``<topic>-value``) so any
Confluent-compatible registry and tool (kcat, Connect, ksqlDB) finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "pos"


@dataclass(frozen=True, slots=True)
class EventTopic:
    """An input topic carrying one POS event family, with its Avro schema file."""

    name: str
    schema_file: str  # file name in schemas/

    @property
    def subject(self) -> str:
        return f"{self.name}-value"


SALE = EventTopic("pos.sale.v1", "sale.avsc")
PAYMENT = EventTopic("pos.payment.v1", "payment.avsc")
RETURN = EventTopic("pos.return.v1", "return.avsc")
CUSTOMER = EventTopic("pos.customer.v1", "customer.avsc")
INVENTORY = EventTopic("pos.inventory.v1", "inventory.avsc")
SETTLEMENT = EventTopic("pos.settlement.v1", "settlement.avsc")
OMNICHANNEL = EventTopic("pos.omnichannel.v1", "omnichannel.avsc")

EVENT_TOPICS: tuple[EventTopic, ...] = (
    SALE, PAYMENT, RETURN, CUSTOMER, INVENTORY, SETTLEMENT, OMNICHANNEL,
)
#: event_type (as used by `tillbridge publish` JSON lines) -> topic
BY_EVENT_TYPE: dict[str, EventTopic] = {
    t.schema_file.removesuffix(".avsc"): t for t in EVENT_TOPICS
}

#: NetSuite outcome per POS transaction (JSON), keyed by POS transaction id.
RESULTS = "tillbridge.results.v1"

#: Validated + enriched sales on their way to the real-time sink (internal hop).
ROUTED_REALTIME = "tillbridge.routed.realtime.v1"

#: One JSON record per discount/promotion on a posted sale (promotion audit trail), keyed by
#: the NetSuite externalId so one sale's records stay together.
AUDIT_PROMOTIONS = "tillbridge.audit.promotions.v1"

DLQ_STAGES = ("decode", "validate", "enrich", "route", "sink")


def dlq_topic(stage: str) -> str:
    """Dead-letter topic of one pipeline stage."""
    if stage not in DLQ_STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {DLQ_STAGES}")
    return f"tillbridge.dlq.{stage}.v1"


DLQ_TOPICS: tuple[str, ...] = tuple(dlq_topic(s) for s in DLQ_STAGES)

#: Who replayed or discarded which dead letter, and why (JSON, keyed by the DLQ record id).
#: Keyed and compacted so the latest action per record is kept for good; `tillbridge dlq`
#: reads it to hide handled records and to make replay idempotent.
DLQ_AUDIT = "tillbridge.dlq.audit.v1"

#: Commands to every worker (refresh reference data), read by a plain consumer thread in
#: each worker (see streams/runtime/control.py).
CONTROL = "tillbridge.control.v1"

#: The parking table's changelog (streams/flows/park.py): events waiting for a NetSuite record
#: (a refund for its sale), keyed by the event's source coordinates; a tombstone removes one.
PARKED = "tillbridge.parked.v1"

#: Payment attempts that make no NetSuite record (declined, failed, voided) with their
#: terminal/gateway trace, so failed attempts can be investigated (JSON, keyed by payment).
AUDIT_PAYMENTS = "tillbridge.audit.payments.v1"

#: Topic-level settings for topics that need more than the broker defaults.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    DLQ_AUDIT: {"cleanup.policy": "compact"},
    PARKED: {"cleanup.policy": "compact"},
}
