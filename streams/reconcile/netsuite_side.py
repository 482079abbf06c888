"""NetSuite's side: one SuiteQL query per store for the business day's transactions that
carry the till's coordinates (``custbody_pos_*``, set by the builders), read page by page
(1,000 rows a request) one request at a time, so it stays within any concurrency share.

Cost: per store, ceil(transactions / 1000) requests (one for a store's ordinary day).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from tillbridge.streams.ledger.ids import PREFIX
from tillbridge.streams.reconcile.model import NsTxn

#: externalId kind -> the receipt kind it is compared as (others are counted, not matched).
KIND_OF = {"sale": "sale", "rtn": "return", "sum": "summary"}


class SuiteQL(Protocol):
    async def suiteql(self, query: str, limit: int = ...,
                      params: list[Any] | None = None) -> list[dict[str, Any]]: ...


def day_query(business_date: str) -> str:
    """The query of one store's day; the date is checked to be an ISO date (it is inlined:
    SuiteQL compares dates through TO_DATE), the store is a bound parameter."""
    day = date.fromisoformat(business_date).isoformat()
    # noqa below: the only inlined value is a date parsed and re-rendered just above.
    return ("SELECT id, externalid, recordtype, foreigntotal, taxtotal, "  # noqa: S608
            "custbody_pos_store_id, "
            "custbody_pos_register_id, custbody_pos_transaction_id, "
            "custbody_tillbridge_receipts FROM transaction "
            f"WHERE trandate = TO_DATE('{day}', 'YYYY-MM-DD') AND custbody_pos_store_id = ? "
            "ORDER BY id")


def to_txn(row: Mapping[str, Any], store_id: str) -> NsTxn:
    """One SuiteQL row (all values strings) as a typed record."""
    external = str(row.get("externalid") or "")
    parts = external.split("-", 2)
    kind = KIND_OF.get(parts[1]) if len(parts) == 3 and parts[0] == PREFIX else None
    try:  # gross: the receipt's total, tax included, as the POS side is compared
        amount = abs(Decimal(str(row.get("foreigntotal") or "0")))
    except InvalidOperation:
        amount = Decimal(0)
    covers = str(row.get("custbody_tillbridge_receipts") or "") if kind == "summary" else ""
    return NsTxn(str(row["id"]), external, str(row.get("recordtype") or ""),
                 row.get("custbody_pos_transaction_id") if kind else None,
                 str(row.get("custbody_pos_store_id") or store_id),
                 row.get("custbody_pos_register_id"), kind, amount,
                 tuple(t for t in covers.split(",") if t))


async def read_day(client: SuiteQL, business_date: str, stores: Iterable[str],
                   page: int = 1000) -> tuple[list[NsTxn], int]:
    """Every POS transaction of the day in NetSuite for ``stores``, and the rows read."""
    out: list[NsTxn] = []
    query = day_query(business_date)
    for store in sorted(set(stores)):
        rows = await client.suiteql(query, limit=page, params=[store])
        out.extend(to_txn(r, store) for r in rows)
    return out, len(out)
