"""Quantity on hand as NetSuite keeps it: moved by the transactions that book stock.

The sim holds no stock ledger of its own; on-hand per item and location is the seeded
quantity plus what every stored transaction moved (``aggregateitemlocation`` in SuiteQL),
so a test can read back whether tillbridge booked a unit once, twice or not at all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim.records import ref_id
from tillbridge.devstack.netsuite_sim.store import Record, Store

#: How each record type moves stock, as NetSuite books it: a cash sale and an item
#: fulfilment take units out, a cash refund (and a credit memo not made from a return
#: authorisation) puts them back, an inventory adjustment moves them by ``adjustQtyBy``.
#: A cash sale billed from a sales order moves nothing: its fulfilment already did.
_STOCK_SIGN = {"cashSale": -1, "itemFulfillment": -1, "cashRefund": 1, "creditMemo": 1}


def _moves(rec: Record, store: Store) -> list[tuple[str, str, Decimal]]:
    f = rec.fields
    if rec.type == "inventoryAdjustment":
        lines, qty_field, sign = (f.get("inventory") or {}).get("items", []), "adjustQtyBy", 1
    elif rec.type in _STOCK_SIGN:
        source = store.transaction(ref_id(f.get("createdFrom")) or "")
        if source is not None and (
                (rec.type == "cashSale" and source.type == "salesOrder")
                or (rec.type == "creditMemo" and source.type == "returnAuthorization")):
            return []
        lines, qty_field, sign = (f.get("item") or {}).get("items", []), "quantity", \
            _STOCK_SIGN[rec.type]
    else:
        return []
    out = []
    for ln in lines:
        item, loc = ref_id(ln.get("item")), ref_id(ln.get("location") or f.get("location"))
        if item and loc and ln.get(qty_field) is not None:
            out.append((item, loc, sign * Decimal(str(ln[qty_field]))))
    return out


def stock_moves(store: Store) -> dict[Any, Decimal]:
    """Net units moved per (item, location) by every transaction the sim holds: kept up to
    date write by write (``Store.view``), since availability polls read it all day. A
    record's part depends on its ``createdFrom``'s type too, which does not change."""
    def moves(rec: Record) -> list[tuple[Any, Decimal]]:
        return [((item, loc), qty) for item, loc, qty in _moves(rec, store)]
    return store.view("stock_moves", "transaction", None, moves, summing=True).totals


def as_quantity(qty: Decimal) -> int | float:
    return int(qty) if qty == qty.to_integral_value() else float(qty)
