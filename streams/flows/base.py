"""The non-sale event families the real-time sink handles, one ``Flow`` each.

A flow is four pure functions and one async poster, so the pipeline handles returns,
payments and omnichannel orders the same way: decode, ``resolve`` (the family's
validate + enrich rules, returning a ``Rejection`` or the resolved NetSuite ids), route
under ``route_key`` (the key of the record it depends on, so an event and its dependency
share a routed partition, and thus a sink task and the parking table's owner), then
``post`` (the ledger flow: ``Posting``, ``Missing`` to park, or ``Skipped``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.types import Missing, Posting, Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData

Event = Mapping[str, Any]
Resolver = Callable[[Any, Mappings, ReferenceData], Any]  # -> refs | Rejection
Poster = Callable[[ReliableClient, Any, Any], Awaitable[Posting | Missing | Skipped]]


@dataclass(frozen=True)
class Flow:
    kind: str  # "return", "payment", "order": the results' event_type
    resolve: Resolver
    post: Poster
    route_key: Callable[[Any], bytes]
    ids: Callable[[Any], dict[str, Any]]  # POS ids for the results record
    event_time: Callable[[Any], Any]
    audit: Callable[[Any, Skipped], list[tuple[str, bytes, bytes]]] | None = None
