"""What a POS event does to availability, pure: the decoded sale, return or inventory
movement becomes one ``Delta`` per NetSuite item and location it moves.

- a sale takes each line's quantity out at the store's location (its cashSale will);
- a return puts back the lines the till restocks (``disposition`` RESTOCK, at
  ``restock_location`` or the store) and takes out its exchange lines;
- a movement moves ``quantity_delta`` at its store, except SALE and RETURN movements: the
  sale and return events above already count them (as the window flow leaves them out).

Lines of one event on the same item add up (one delta per event, item and location).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillbridge.streams.availability.model import ZERO, Delta, Key
from tillbridge.streams.ledger.ids import external_id, sale_id

#: Movements the sale and return events already count.
COUNTED_ELSEWHERE = frozenset({"SALE", "RETURN"})


@dataclass(frozen=True)
class Resolver:
    """The NetSuite ids of a store and of a SKU (None when unknown: the event is skipped
    here; the ingest flow dead-letters it with its reason). ``movement_key`` names the
    inventoryAdjustment a movement will be booked on (its window)."""

    location: Callable[[str], str | None]
    item: Callable[[str], str | None]
    movement_key: Callable[[dict[str, Any]], str | None] = lambda _m: None


def _collect(event_id: str, kind: str, store: str, txn: str | None, nkey: str | None,
             seen_at: datetime, lines: Iterable[tuple[str, str, Decimal]],
             resolve: Resolver) -> list[Delta]:
    """``lines`` are (store or location code, sku, signed quantity)."""
    net: dict[Key, Decimal] = {}
    skus: dict[Key, str] = {}
    for where, sku, qty in lines:
        location, item = resolve.location(where), resolve.item(sku)
        if location is None or item is None:
            continue
        net[(location, item)] = net.get((location, item), ZERO) + qty
        skus.setdefault((location, item), sku)
    return [Delta(f"{event_id}#{kind}", kind, loc, item, qty, store, skus[(loc, item)], txn,
                  nkey, seen_at)
            for (loc, item), qty in net.items() if qty != 0]


def _qty(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def from_sale(event_id: str, sale: dict[str, Any], seen_at: datetime,
              resolve: Resolver) -> list[Delta]:
    store, txn = str(sale["store_id"]), str(sale["pos_transaction_id"])
    lines = [(store, str(ln["sku"]), -_qty(ln["quantity"])) for ln in sale.get("lines", [])]
    return _collect(event_id, "SALE", store, txn, sale_id(store, txn), seen_at, lines,
                    resolve)


def from_return(event_id: str, ret: dict[str, Any], seen_at: datetime,
                resolve: Resolver) -> list[Delta]:
    store, txn = str(ret["store_id"]), str(ret["pos_transaction_id"])
    back = [(str(ln.get("restock_location") or store), str(ln["sku"]), _qty(ln["quantity"]))
            for ln in ret.get("lines", []) if ln.get("disposition") == "RESTOCK"]
    out = [(store, str(ln["sku"]), -_qty(ln["quantity"]))
           for ln in ret.get("exchange_lines", [])]
    return (_collect(event_id, "RETURN", store, txn, external_id("rtn", store, txn), seen_at,
                     back, resolve)
            + _collect(event_id, "EXCHANGE", store, txn, external_id("exch", store, txn),
                       seen_at, out, resolve))


def from_movement(event_id: str, mv: dict[str, Any], seen_at: datetime,
                  resolve: Resolver) -> list[Delta]:
    reason = str(mv.get("reason") or "").upper()
    if reason in COUNTED_ELSEWHERE:
        return []
    store = str(mv["store_id"])
    lines = [(store, str(mv["sku"]), _qty(mv["quantity_delta"]))]
    return _collect(event_id, reason or "MOVEMENT", store, mv.get("pos_transaction_id"),
                    resolve.movement_key(mv), seen_at, lines, resolve)
