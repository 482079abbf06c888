"""Topic names and schema-registry subjects: the one place they are spelled.

Subjects follow Confluent's TopicNameStrategy (``<topic>-value``) so any
Confluent-compatible registry and tool (kcat, Connect, ksqlDB) finds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PREFIX = "pos"


class Stage(StrEnum):
    """A pipeline stage, as spelled in DLQ topic names, the ``__connect.errors.stage`` header
    and metric labels: values are public, never rename one.

    Defined here, beside the topics named after it, so connectors need nothing from
    ``tillbridge.streams``; ``tillbridge.streams.stages.reasons`` re-exports it.
    """

    DECODE = "decode"
    VALIDATE = "validate"
    ENRICH = "enrich"
    ROUTE = "route"
    SINK = "sink"
    #: Not a stage of its own: a reason any stage may raise (``internal_error``). It has no
    #: dead-letter topic and goes to the sink's.
    ANY = "any"


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

#: Validated + enriched events of the windowed flows (inventory) on their way to the window
#: agent, keyed by their window key (the store): one key's events in one partition, in order.
ROUTED_WINDOW = "tillbridge.routed.window.v1"

#: The window book (streams/windows/book.py): one JSON record per closed window, keyed by
#: window id, compacted: what each window holds once closed, and whether it posted.
WINDOWS = "tillbridge.windows.v1"

#: One JSON record per discount/promotion on a posted sale (promotion audit trail), keyed by
#: the NetSuite externalId so one sale's records stay together.
AUDIT_PROMOTIONS = "tillbridge.audit.promotions.v1"

#: Stages with a dead-letter topic of their own, as plain strings (``tillbridge dlq`` matches
#: user input against them).
DLQ_STAGES: tuple[str, ...] = tuple(s.value for s in Stage if s is not Stage.ANY)


def dlq_topic(stage: Stage | str) -> str:
    """Dead-letter topic of one pipeline stage; ``Stage.ANY`` shares the sink's topic.

    Plain strings are still accepted (and checked) for callers not yet on ``Stage``.
    """
    try:
        member = Stage(stage)
    except ValueError:
        raise ValueError(f"unknown stage {stage!r}; expected one of {DLQ_STAGES}") from None
    return f"tillbridge.dlq.{Stage.SINK if member is Stage.ANY else member}.v1"


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

#: One JSON record per store, register and business day reconciled (POS vs NetSuite), keyed
#: ``<store>/<register>/<date>``, and one summary per run keyed ``<date>/<store or *>``
#: (``tillbridge reconcile``; README "Reconciliation" gives the shape).
RECONCILIATION = "tillbridge.reconciliation.v1"
#: Sales whose till business_date disagrees with the completion time in the store's zone by
#: more than the store's cut-off: posted anyway (till's date), one JSON record each, keyed by
#: POS transaction id (streams/stages/business_day.py).
AUDIT_BUSINESS_DATES = "tillbridge.audit.business_dates.v1"
#: One JSON record per loyalty points movement written to NetSuite (earned on a sale,
#: reversed on a return), keyed by the NetSuite customer id so a customer's movements stay
#: in order; fields in the README ("Loyalty"). At least once: dedupe on ``external_id``.
AUDIT_LOYALTY = "tillbridge.audit.loyalty.v1"

#: Current availability per NetSuite item and location (Avro, schemas/availability.avsc),
#: keyed ``<location id>/<item id>``, compacted: the latest record per key is the state.
AVAILABILITY = "tillbridge.availability.v1"
AVAILABILITY_TOPIC = EventTopic(AVAILABILITY, "availability.avsc")
#: Oversell warnings and replenishment triggers (JSON, ``type`` says which), keyed like
#: the availability topic.
AVAILABILITY_SIGNALS = "tillbridge.availability.signals.v1"
#: Status changes NetSuite made to POS/storefront orders (JSON), keyed by order id.
ORDER_STATUS = "tillbridge.order.status.v1"
#: The order-status poll's cursor (JSON, one key), compacted: read back at start.
ORDER_STATUS_CURSOR = "tillbridge.order.status.cursor.v1"

#: Topic-level settings for topics that need more than the broker defaults.
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    DLQ_AUDIT: {"cleanup.policy": "compact"},
    PARKED: {"cleanup.policy": "compact"},
    WINDOWS: {"cleanup.policy": "compact"},
    AVAILABILITY: {"cleanup.policy": "compact"},
    ORDER_STATUS_CURSOR: {"cleanup.policy": "compact"},
}
