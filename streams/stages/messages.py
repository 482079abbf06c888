"""What a stage takes and gives: the record as consumed (``Source``) and a message to
produce (``Outbound``). Plain data, so every stage and flow is testable without a broker."""

from __future__ import annotations

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


