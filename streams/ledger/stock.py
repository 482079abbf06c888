"""Inventory movements -> one NetSuite ``inventoryAdjustment`` per store and time window.

Only movements NetSuite cannot learn of any other way become adjustments: count
corrections and shrink (``ADJUSTING_REASONS``). A sale or return already moves stock
through its own transaction (cashSale, cashRefund), a receipt is an itemReceipt against
its purchase order and a transfer an inventoryTransfer; adjusting for those as well would
count the units twice. Movements are netted per item over a window (the seed's hybrid
model: inventory in scheduled batches), so one adjustment carries a window's worth of
counts instead of one transaction per scan. The window start keys the externalId: the
same window always posts once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.ids import external_id
from tillbridge.streams.stages.records import InventoryMovementRec

ADJUSTING_REASONS = frozenset({"ADJUSTMENT", "SHRINK"})
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class StockWindow:
    """Net stock change per NetSuite item at one location over ``[start, end)``."""

    store: str
    location_id: str
    window_start: datetime
    window_end: datetime
    lines: tuple[tuple[str, Decimal], ...]  # (NetSuite item id, net quantity delta)
    movements: int = 0  # how many POS movements were netted (for the memo)


def window_stamp(moment: datetime) -> str:
    """Compact UTC stamp: externalIds should keep to letters, digits, ``_`` and ``-``."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def adjustment_external_id(store: str, window_start: datetime) -> str:
    return external_id("adj", store, window_stamp(window_start))


def net_deltas(movements: Iterable[InventoryMovementRec],
               reasons: frozenset[str] = ADJUSTING_REASONS) -> dict[str, Decimal]:
    """SKU -> summed ``quantity_delta`` of the movements with an adjusting reason; SKUs
    whose movements cancel out are left out (NetSuite refuses a zero adjustment)."""
    totals: dict[str, Decimal] = {}
    for mv in movements:
        if mv["reason"] in reasons:
            totals[mv["sku"]] = totals.get(mv["sku"], ZERO) + mv["quantity_delta"]
    return {sku: qty for sku, qty in totals.items() if qty != 0}


def build_inventory_adjustment(window: StockWindow, account: str,
                               subsidiary: str) -> dict[str, Any] | None:
    """The adjustment body, or None when nothing nets to a change. ``account`` is the
    adjustment (offset) account, e.g. Inventory Shrinkage; not a bank or A/R account."""
    net: dict[str, Decimal] = {}
    for item, qty in window.lines:
        net[item] = net.get(item, ZERO) + qty
    lines = [{"item": {"id": item}, "location": {"id": window.location_id}, "adjustQtyBy": qty}
             for item, qty in sorted(net.items()) if qty != 0]
    if not lines:
        return None
    return {
        "externalId": adjustment_external_id(window.store, window.window_start),
        "account": {"id": account},
        "adjLocation": {"id": window.location_id},
        "subsidiary": {"id": subsidiary},
        "tranDate": window.window_start.date().isoformat(),
        "memo": (f"POS stock window {window.store} {window.window_start.isoformat()} to "
                 f"{window.window_end.isoformat()}: {window.movements} movements"),
        "inventory": {"items": lines},
    }
