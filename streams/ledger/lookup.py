"""What the ledger flows share: look-ups by externalId under the retry policy, and
write-once. Every NetSuite read of a flow goes through here, so none skips the policy
(retries, breaker) that the writes get."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.errors import NotFound
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.summary import RECEIPTS_FIELD, SUMMARY_KIND
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


#: a parked event's dependency "type" that is a summary taking a POS receipt:
#: ``summary:<store>|<register>|<business day>|<POS transaction id>``
SUMMARY_DEPENDENCY = "summary:"


def summary_dependency(store: str | None, register: str | None, business_date: str | None,
                       txn: str | None) -> tuple[str, ...]:
    """The extra place a POS sale's externalId may be answered by (its summary), when the
    event knows the receipt's coordinates; else nothing."""
    if not (store and register and business_date and txn):
        return ()
    return (f"{SUMMARY_DEPENDENCY}{store}|{register}|{business_date}|{txn}",)


async def dependency_exists(client: ReliableClient, external_id: str,
                            record_types: tuple[str, ...]) -> bool:
    """Is a parked event's dependency in NetSuite: the record under one of its types, or
    (a ``summary:`` entry) the summary that took the receipt."""
    plain = tuple(t for t in record_types if not t.startswith(SUMMARY_DEPENDENCY))
    if await find_any(client, external_id, plain) is not None:
        return True
    for ref in record_types:
        if ref.startswith(SUMMARY_DEPENDENCY):
            store, register, day, txn = ref[len(SUMMARY_DEPENDENCY):].split("|", 3)
            if await find_summary(client, store, register, day, txn) is not None:
                return True
    return False


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


#: a summarised receipt's summary: a cashSale of the store's business day and register
#: whose receipts list names it (the simulator's SuiteQL has no LIKE: filtered here)
SUMMARY_QUERY = ("SELECT id, externalid, custbody_tillbridge_receipts FROM transaction "
                 "WHERE recordtype = ? AND custbody_pos_store_id = ? "
                 "AND custbody_pos_register_id = ? AND trandate = TO_DATE('{day}', 'YYYY-MM-DD')")


async def find_summary(client: ReliableClient, store: str | None, register: str | None,
                       business_date: str | None, txn: str | None,
                       expand: bool = False) -> tuple[str, dict[str, Any]] | None:
    """("cashSale", record) of the ``pos-sum-`` summary that took POS receipt ``txn`` (the
    ``summary`` sync mode books no per-receipt sale), None when no summary names it or
    the coordinates are not known. One SuiteQL query of that register's day, then a GET."""
    if not (store and register and business_date and txn):
        return None
    # the only inlined value is a date parsed and re-rendered here (SuiteQL compares
    # dates through TO_DATE)
    day = date.fromisoformat(business_date).isoformat()
    rows = await client.suiteql(SUMMARY_QUERY.format(day=day),
                                params=["cashsale", store, register])
    prefix = f"pos-{SUMMARY_KIND}-{store}-"
    for row in rows:
        receipts = str(row.get(RECEIPTS_FIELD) or "").split(",")
        if str(row.get("externalid") or "").startswith(prefix) and txn in receipts:
            record = await client.get("cashSale", str(row["id"]), expand)
            return "cashSale", record
    return None
