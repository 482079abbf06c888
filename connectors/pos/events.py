"""What a POS source hands the publisher: one message, typed by its topic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tillbridge.connectors.kafka.topics import EventTopic


@dataclass(frozen=True, slots=True)
class GeneratedEvent:
    """One message to publish.

    ``value`` is an Avro-ready dict (Decimal money, aware datetimes), or raw
    ``bytes`` to publish as-is (only for ``dirty_kind == "not_avro"``).
    ``dirty_kind`` is None for clean events, else one of :data:`DIRTY_KINDS`.
    """

    key: bytes
    value: dict[str, Any] | bytes
    topic: EventTopic
    dirty_kind: str | None = None
