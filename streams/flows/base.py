"""What every event family is to the pipeline: a ``Flow``.

Ingest and sink know no family apart. For each routed event they ask its flow:

- ``resolve(event, lookups)``: the family's validate + enrich rules (pure): the resolved
  NetSuite ids, or the ``Rejection`` that dead-letters the event;
- ``route_key(event)``: the key of the record it depends on, so an event and its dependency
  share a routed partition, and thus a sink task and the parking table's owner;
- ``hop_headers(event, refs)``: what ingest hands the sink beside the original bytes;
- ``sink_refs(event, headers, lookups)``: the ids again at the sink (resolved again by
  default: reference data may have changed since ingest; the rules are cheap and pure);
- ``post(ctx, event, refs)``: write the records (``ledger/`` builds their bodies) and say
  what happened: ``Posting``, ``Missing`` (park), ``Skipped`` or ``Refused``;
- ``ids`` / ``event_time`` / ``audit``: what the results record and audit topics carry.

A family whose backlog is better written by NetSuite's async batch jobs also implements
``post_batch`` (``drainable``); ``flows/drain.py`` calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from tillbridge.connectors.netsuite.batch import BatchWriter
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.types import Outcome, Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.messages import Outbound, RawHeaders
from tillbridge.streams.stages.records import Rejection

Event = Any  # a decoded Avro record (a TypedDict of stages/records.py per family)


@dataclass(frozen=True, slots=True)
class Lookups:
    """What the rules resolve against: one consistent view per record (hot reload swaps the
    whole object, never a part of it)."""

    mappings: Mappings
    refdata: ReferenceData
    tax_tolerance_cents: int = 1


@dataclass(slots=True)
class SinkContext:
    """What a flow's post may use: NetSuite (through the retry policy) and the worker's
    durable state (the dedupe table, keyed per family). ``at(i)`` points Faust's
    current-event context at the i-th record of a batch before its state is touched, so
    table writes land in that record's changelog partition (a no-op outside Faust)."""

    client: ReliableClient
    state: MutableMapping[str, Any]
    lookups: Lookups
    write_mode: str = "create"
    at: Callable[[int], None] = lambda _i: None


class Flow:
    """One POS event family. Subclasses set ``kind`` and ``topic`` and implement the rules
    and the post; the defaults fit a family that needs nothing extra."""

    kind: ClassVar[str]  # the results' event_type: "sale", "return", "payment", "order"
    topic: ClassVar[str]  # its input topic
    drainable: ClassVar[bool] = False
    #: posted through a window (``streams/windows``: one record per key and window) by the
    #: window agent instead of one record per event by the sink; such a flow also gives
    #: ``window_key``, ``member_id``, ``skip`` and ``window_body`` (``flows/stock.py``)
    windowed: ClassVar[bool] = False
    #: tells a replay from a duplicate itself (else the sink reads the first record's
    #: source stamp when a post created nothing: ``flows/stamp.py``)
    checks_replays: ClassVar[bool] = False

    def resolve(self, event: Event, lookups: Lookups) -> Any | Rejection:
        raise NotImplementedError

    def route_key(self, event: Event) -> bytes:
        raise NotImplementedError

    def hop_headers(self, event: Event, refs: Any) -> list[tuple[str, bytes]]:
        return []

    def sink_refs(self, event: Event, headers: RawHeaders, lookups: Lookups) -> Any | Rejection:
        return self.resolve(event, lookups)

    async def post(self, ctx: SinkContext, event: Event, refs: Any) -> Outcome:
        raise NotImplementedError

    async def post_batch(self, ctx: SinkContext, writer: BatchWriter,
                         items: Sequence[tuple[Event, Any, RawHeaders]]) -> list[Outcome]:
        """Outcomes of many events written through async batch jobs (``drainable`` only)."""
        raise NotImplementedError(f"{self.kind} events are not drained")

    def ids(self, event: Event) -> dict[str, Any]:
        raise NotImplementedError

    def event_time(self, event: Event) -> datetime | None:
        if type(event) is dict:  # a decoded event: skip the ABC check (hot, per record)
            return event.get("occurred_at")
        return event.get("occurred_at") if isinstance(event, Mapping) else None

    def audit(self, event: Event, skipped: Skipped) -> list[Outbound]:
        """Messages that keep the trace of an event that makes no record."""
        return []
