"""The SuiteQL that reads reference data from NetSuite, per kind, full or incremental."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tillbridge.connectors.netsuite.errors import NetSuiteError

log = logging.getLogger(__name__)


class SuiteQL(Protocol):
    async def suiteql(self, query: str, limit: int = 1000) -> list[dict[str, Any]]: ...


#: kind -> (SuiteQL query, required). A required table that cannot be read fails the load
#: (the worker stays not-ready); an optional one only switches its rule off.
#:
#: The item query is required, so it names only columns every account has: itemtype,
#: parent (set on matrix children) and taxschedule are standard item columns. baseprice and
#: matrixtype are left out on purpose: not every account exposes them to SuiteQL (prices
#: come from the optional ``pricing`` kind; a parent is recognised by its children).
#: Less certain columns sit in optional kinds, where a 400 only switches that kind off:
#: quantityavailable on aggregateitemlocation, the employee custom field
#: custentity_pos_employee_id, promotioncode's code/discount (SuitePromotions accounts
#: only) and the pricing table (multiple-prices feature).
QUERIES: dict[str, tuple[str, bool]] = {
    "item": ("SELECT id, itemid, itemtype, isinactive, parent, taxschedule, lastmodifieddate "
             "FROM item", True),
    "customer": ("SELECT id, custentity_loyalty_id, email, phone, firstname, lastname, "
                 "isinactive, lastmodifieddate FROM customer", True),
    "stock": ("SELECT item, location, quantityavailable FROM aggregateitemlocation", False),
    "location": ("SELECT id, name, isinactive FROM location", False),
    "paymentmethod": ("SELECT id, name, isinactive FROM paymentmethod", False),
    "taxcode": ("SELECT id, itemid, rate, isinactive FROM salestaxitem", False),
    "subsidiary": ("SELECT id, name, isinactive FROM subsidiary", False),
    "employee": ("SELECT id, entityid, custentity_pos_employee_id, isinactive FROM employee "
                 "WHERE issalesrep = 'T'", False),
    "promotion": ("SELECT id, code, name, discount, isinactive FROM promotioncode", False),
    "pricelevel": ("SELECT id, name, isinactive FROM pricelevel", False),
    "pricing": ("SELECT item, pricelevel, unitprice FROM pricing", False),
}
#: kinds that can be refreshed incrementally by lastmodifieddate
INCREMENTAL = ("item", "customer")

RefRows = dict[str, list[dict[str, Any]] | None]


def row_key(kind: str, row: dict[str, Any]) -> str:
    """Stable key of a reference row: its internal id, or the pair a link row stands for
    (item/location for stock, item/price level for pricing: neither has an id)."""
    if kind == "stock":
        return f"{row['item']}/{row['location']}"
    if kind == "pricing":
        return f"{row['item']}/{row['pricelevel']}"
    return str(row["id"])


async def fetch_rows(client: SuiteQL, since: str | None = None,
                     kinds: tuple[str, ...] | None = None) -> RefRows:
    """Raw rows per kind. With ``since`` ('YYYY-MM-DD HH:MM:SS', UTC) the incremental kinds
    (items, customers: the big tables) return only rows modified since then; the others
    have no modification date in SuiteQL and are read in full."""
    out: RefRows = {}
    for kind, (query, required) in QUERIES.items():
        if kinds is not None and kind not in kinds:
            continue
        if since is not None and kind in INCREMENTAL:
            query += (" WHERE lastmodifieddate >= "
                      f"TO_DATE('{since}', 'YYYY-MM-DD HH24:MI:SS')")
        out[kind] = await client.suiteql(query) if required else await _rows(client, query)
    return out


async def _rows(client: SuiteQL, query: str) -> list[dict[str, Any]] | None:
    """Rows, or None when the account refuses the query (400: table/column not exposed).

    Anything else (auth, outage) propagates so the load is retried as a whole.
    """
    try:
        return await client.suiteql(query)
    except NetSuiteError as exc:
        if exc.status != 400:
            raise
        log.warning("reference data: %s not readable (%s); its rule is skipped",
                    query.split(" FROM ")[-1], exc.code)
        return None
