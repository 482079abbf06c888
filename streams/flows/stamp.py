"""Every transaction a flow writes carries the Kafka coordinates of the event that wrote it.

``custbody_tillbridge_source`` = ``topic/partition/offset`` of the input record. Two uses:

- exact accounting: an event read again after a crash finds its records already in
  NetSuite; if they carry its own coordinates it is a replay (its outcome is re-emitted as
  it was), otherwise another event with the same ids wrote them (a POS duplicate);
- tracing: from a NetSuite record back to the input record that made it.

``StampedClient`` adds the field to every create and transform of a transaction, so the
flows' posting code stays unaware of it. Its PATCHes of a transaction carry
``custbody_tillbridge_modified`` (UTC, ``YYYY-MM-DD HH:MM:SS``): the order-status poll
tells tillbridge's own order edits from a NetSuite user's by it
(``streams/availability/orders.py``). Customers are not stamped (many events share one),
nor custom records (they have ``custrecord_*`` fields, no transaction body fields).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.sale_records import SOURCE_FIELD
from tillbridge.streams.ledger.types import Posting

#: When tillbridge last edited a transaction (see the module doc).
MODIFIED_FIELD = "custbody_tillbridge_modified"
#: Records that are not transactions (no custbody fields): never stamped.
UNSTAMPED = frozenset({"customer", "contact", "employee", "item"})


def source_ref(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


class StampedClient(ReliableClient):
    """The worker's ``ReliableClient`` (same HTTP client, policy and breaker: its state is
    shared, not copied) that stamps ``source`` on the transactions it creates."""

    def __init__(self, inner: ReliableClient, source: str) -> None:  # noqa: D107
        # Deliberately no super().__init__: this is a view of ``inner``, sharing every part.
        self.__dict__.update(inner.__dict__)
        self.source = source

    def _stamp(self, record_type: str, body: dict[str, Any] | None) -> dict[str, Any]:
        body = dict(body or {})
        if record_type not in UNSTAMPED and not record_type.startswith("customrecord"):
            body.setdefault(SOURCE_FIELD, self.source)
        return body

    async def patch(self, record_type: str, id_or_eid: str, body: dict[str, Any], *,
                    replace: str | None = None) -> None:
        if record_type not in UNSTAMPED and not record_type.startswith("customrecord"):
            body = {**body, MODIFIED_FIELD: datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")}
        await super().patch(record_type, id_or_eid, body, replace=replace)

    async def create_or_find(self, record_type: str, external_id: str,
                             body: dict[str, Any]) -> tuple[str, bool]:
        return await super().create_or_find(record_type, external_id,
                                            self._stamp(record_type, body))

    async def transform_or_find(self, from_type: str, from_id: str, to_type: str,
                                external_id: str,
                                body: dict[str, Any] | None = None) -> tuple[str, bool]:
        return await super().transform_or_find(from_type, from_id, to_type, external_id,
                                               self._stamp(to_type, body))


async def confirm_replay(client: ReliableClient, posting: Posting, source: str) -> Posting:
    """A posting that created nothing: a replay of this very event if its first record
    carries this event's coordinates (one GET, only on this rare path)."""
    if posting.created or posting.updated or posting.replay or not posting.records \
            or not source:
        return posting
    first = posting.records[0]
    if first.record_type in UNSTAMPED:
        return posting
    record = await client.get(first.record_type, first.netsuite_id)
    if record.get(SOURCE_FIELD) == source:
        return dataclasses.replace(posting, replay=True)
    return posting
