"""What the ledger flows share: look-ups by externalId under the retry policy, and
write-once. Every NetSuite read of a flow goes through here, so none skips the policy
(retries, breaker) that the writes get."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.errors import NotFound
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.types import Written


async def find_record(client: ReliableClient, record_type: str, external_id: str,
                      expand: bool = False) -> dict[str, Any] | None:
    """The record with this externalId, None on 404. One GET both answers "is it there"
    and gives its fields (``expand``: with sublist lines)."""
    try:
        return await client.get(record_type, eid(external_id), expand)
    except NotFound:
        return None


async def find_any(client: ReliableClient, external_id: str, record_types: tuple[str, ...],
                   expand: bool = False) -> tuple[str, dict[str, Any]] | None:
    """(type, record) of the first type holding ``external_id``: ids are unique across all
    transaction types, so at most one matches."""
    for record_type in record_types:
        record = await find_record(client, record_type, external_id, expand)
        if record is not None:
            return record_type, record
    return None


async def find_id(client: ReliableClient, record_type: str, external_id: str) -> str | None:
    """Internal id of the record with this externalId, None if there is none."""
    return await client.call(lambda: client.find_id(record_type, external_id))


async def ensure(client: ReliableClient, record_type: str, external_id: str,
                 write: Callable[[], Awaitable[tuple[str, bool]]],
                 links: dict[str, str] | None = None) -> Written:
    """Write a record once: looked up by externalId first (a replay: ``created=False``),
    else written by ``write`` (``create_or_find`` / ``transform_or_find``, which also
    settle a concurrent duplicate). Looking first costs a GET, but a replay then sends no
    write whose body depends on balances the first write changed (credit already applied,
    deposit already refunded): NetSuite might refuse that before it sees the duplicate."""
    found = await find_id(client, record_type, external_id)
    if found is not None:
        return Written(record_type, found, external_id, False, links or {})
    new_id, created = await write()
    return Written(record_type, new_id, external_id, created, links or {})
