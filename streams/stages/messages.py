"""What a stage takes and gives: the record as consumed (``Source``) and a message to
produce (``Outbound``). Plain data, so every stage and flow is testable without a broker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Headers as produced (values present) and as consumed (a value may be None).
Headers = list[tuple[str, bytes]]
RawHeaders = list[tuple[str, bytes | None]]


@dataclass
class Outbound:
    """One message a handler wants produced."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    #: externalIds this outcome wrote or found written: parked events waiting on one of
    #: them are released right after (app.py).
    written: tuple[str, ...] = ()
    #: set on a parking-table record, so the app updates its lot without re-reading it.
    #: (a ``flows.park.ParkEntry``; typed loosely so stages need not import flows)
    parked: object | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """A consumed record: where it was read, and its bytes untouched."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: RawHeaders


#: Ids a flow knows once it has decoded an event (``Flow.ids``) that log lines carry.
EVENT_IDS = ("pos_transaction_id", "external_id", "order_id", "payment_id", "settlement_id")

#: Characters of a record key a log line keeps (keys are ids; a garbage key must not flood
#: the log).
LOG_KEY_CHARS = 128


def log_ids(src: Source, event_ids: Mapping[str, object] | None = None,
            **more: object) -> dict[str, object]:
    """A record's ids for a log call's ``extra=`` (JSON log lines carry them as fields): its
    input coordinates, its key as text (a POS sale's, return's or payment's key is its POS
    transaction id; an omnichannel event's, its order id), the ``EVENT_IDS`` among
    ``event_ids`` (a flow's ``ids(event)``) and ``more`` (stage, reason...). It builds a
    dict: call it where a line is logged, not for every record."""
    ids: dict[str, object] = {"topic": src.topic, "partition": src.partition,
                              "offset": src.offset}
    if src.key is not None:
        ids["key"] = src.key[:LOG_KEY_CHARS * 4].decode("utf-8", "replace")[:LOG_KEY_CHARS]
    if event_ids:
        ids.update((k, event_ids[k]) for k in EVENT_IDS if event_ids.get(k) is not None)
    ids.update(more)
    return ids
