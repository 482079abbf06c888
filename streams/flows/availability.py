"""The availability and order-status flows' NetSuite side: the SuiteQL each poll runs and
what its rows become (``streams/availability`` holds the rules).

A levels poll, in this order:

1. which pending POS changes NetSuite holds now (their externalIds);
2. which items changed since the cursor: items modified (reorder point, preferred level)
   and items on transactions modified (sales, fulfilments, adjustments, receipts);
3. ``aggregateitemlocation`` for those items (every row on the first poll).

Step 1 comes first on purpose: a record NetSuite saves between the steps is then counted at
most twice (its delta kept one more poll: availability under-stated, the safe side), never
dropped before NetSuite's figures show it. The cursor is the poll's start less the
reference-data overlap the first time (our clock); after that it follows NetSuite's own
``lastmodifieddate`` values (``next_cursor``), so a clock difference cannot skip a change
and a poll does not re-read minutes of busy history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tillbridge.streams.availability.model import Level, ReadInfo
from tillbridge.streams.availability.orders import TxnRow
from tillbridge.streams.refdata.queries import SuiteQL
from tillbridge.streams.refdata.sync import CURSOR_OVERLAP, STAMP

#: Re-read window behind the latest modification seen (NetSuite's clock, so no skew).
NETSUITE_OVERLAP = timedelta(seconds=30)
LEVELS = ("SELECT item, location, quantityonhand, quantitycommitted, quantityavailable, "
          "quantityonorder, reorderpoint, preferredstocklevel FROM aggregateitemlocation")
#: Values per IN list: well under Oracle's 1,000 and short enough for one request line.
CHUNK = 200


def since(cursor: str) -> str:
    """The modification filter. Every query here is built from constants, our own cursor
    stamp and quoted ids (``in_list``): no outside text reaches it (hence the S608 marks)."""
    return f"lastmodifieddate >= TO_DATE('{cursor}', 'YYYY-MM-DD HH24:MI:SS')"


def in_list(values: Iterable[str]) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def chunks(values: Iterable[str], size: int = CHUNK) -> list[list[str]]:
    ordered = sorted(set(values))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


async def rows_in(client: SuiteQL, query: str, column: str,
                  values: Iterable[str]) -> list[dict[str, Any]]:
    """``query`` + `` <AND|WHERE> column IN (...)``, a chunk of values at a time."""
    joiner = " AND " if " WHERE " in query else " WHERE "
    out: list[dict[str, Any]] = []
    for part in chunks(values):
        out += await client.suiteql(f"{query}{joiner}{column} IN ({in_list(part)})")
    return out


def _dec(value: Any, default: Decimal | None = Decimal(0)) -> Decimal | None:
    return default if value in (None, "") else Decimal(str(value))


def level_of(row: dict[str, Any]) -> Level:
    """One ``aggregateitemlocation`` row; available defaults to on hand less committed."""
    on_hand = _dec(row.get("quantityonhand")) or Decimal(0)
    committed = _dec(row.get("quantitycommitted")) or Decimal(0)
    available = _dec(row.get("quantityavailable"), None)
    return Level(str(row["location"]), str(row["item"]), on_hand, committed,
                 on_hand - committed if available is None else available,
                 _dec(row.get("quantityonorder")) or Decimal(0),
                 _dec(row.get("reorderpoint"), None), _dec(row.get("preferredstocklevel"), None))


@dataclass(frozen=True)
class LevelsRead:
    info: ReadInfo
    levels: list[Level]
    found: frozenset[str]  # externalIds (lower case) of pending changes NetSuite holds
    cursor: str
    full: bool


async def found_external_ids(client: SuiteQL, keys: Iterable[str]) -> frozenset[str]:
    rows = await rows_in(client, "SELECT externalid FROM transaction", "externalid", keys)
    return frozenset(str(r["externalid"]).lower() for r in rows if r.get("externalid"))


def next_cursor(stamps: Iterable[Any], current: str) -> str:
    """The next cursor in NetSuite's own clock: the latest ``lastmodifieddate`` read less
    ``NETSUITE_OVERLAP`` (a record saved in the same second, or committed a little after
    its stamp, is read again, never skipped); ``current`` when nothing was read or a stamp
    is not in the expected format."""
    try:
        latest = max((datetime.strptime(str(v), STAMP) for v in stamps if v), default=None)
    except ValueError:
        return current
    if latest is None:
        return current
    return max(current, (latest - NETSUITE_OVERLAP).strftime(STAMP))


async def changed_items(client: SuiteQL, cursor: str) -> tuple[set[str], str]:
    """Items changed since ``cursor`` (their own edits and their transactions), and the
    next cursor."""
    items = await client.suiteql(f"SELECT id, lastmodifieddate FROM item WHERE {since(cursor)}")  # noqa: S608
    txns = await client.suiteql(
        f"SELECT id, lastmodifieddate FROM transaction WHERE {since(cursor)}")  # noqa: S608
    lines = await rows_in(client, "SELECT item FROM transactionline WHERE mainline = 'F'",
                          "transaction", [str(r["id"]) for r in txns])
    changed = {str(r["id"]) for r in items} | {str(r["item"]) for r in lines if r.get("item")}
    return changed, next_cursor((r.get("lastmodifieddate") for r in items + txns), cursor)


async def recent_external_ids(client: SuiteQL, cursor: str) -> frozenset[str]:
    rows = await client.suiteql(f"SELECT externalid FROM transaction WHERE {since(cursor)}")  # noqa: S608
    return frozenset(str(r["externalid"]).lower() for r in rows if r.get("externalid"))


async def read_levels(client: SuiteQL, cursor: str | None, pending: Iterable[str],
                      read_id: str, now: datetime | None = None,
                      recent: timedelta = timedelta(0)) -> LevelsRead:
    """One poll (see the module doc); ``cursor`` None reads every row, and ``found`` then
    also holds every externalId NetSuite saved within ``recent``: a restarted worker reads
    POS events again, and those NetSuite already shows must not count twice."""
    started = now or datetime.now(UTC)
    found = await found_external_ids(client, pending)
    if cursor is None:
        if recent:
            found |= await recent_external_ids(client, (started - recent).strftime(STAMP))
        rows = await client.suiteql(LEVELS)
        after = (started - CURSOR_OVERLAP).strftime(STAMP)  # our clock, once
    else:
        changed, after = await changed_items(client, cursor)
        rows = await rows_in(client, LEVELS, "item", changed)
    return LevelsRead(ReadInfo(read_id, started), [level_of(r) for r in rows], found, after,
                      cursor is None)


ORDER_COLUMNS = ("id, recordtype, status, externalid, createddate, lastmodifieddate, otherrefnum, "
                 "custbody_pos_store_id, custbody_pos_transaction_id, "
                 "custbody_tillbridge_source, custbody_tillbridge_modified")


async def read_order_changes(client: SuiteQL, cursor: str
                             ) -> tuple[list[TxnRow], dict[str, TxnRow]]:
    """Transactions modified since ``cursor`` (with the order each was made from) and the
    sales orders they concern, by id."""
    changed = await client.suiteql(f"SELECT {ORDER_COLUMNS} FROM transaction WHERE "  # noqa: S608
                                   f"{since(cursor)} ORDER BY lastmodifieddate, id")
    children = [str(r["id"]) for r in changed
                if str(r.get("recordtype") or "").lower() != "salesorder"]
    lines = await rows_in(client, "SELECT transaction, createdfrom FROM transactionline "
                          "WHERE mainline = 'T'", "transaction", children)
    parent = {str(r["transaction"]): str(r["createdfrom"]) for r in lines
              if r.get("createdfrom")}
    rows = [TxnRow.of(r, parent.get(str(r["id"]))) for r in changed]
    wanted = {r.id for r in rows if r.recordtype == "salesorder"} | set(parent.values())
    orders = [TxnRow.of(r) for r in await rows_in(
        client, f"SELECT {ORDER_COLUMNS} FROM transaction", "id", wanted)]  # noqa: S608
    return rows, {o.id: o for o in orders if o.recordtype == "salesorder"}
