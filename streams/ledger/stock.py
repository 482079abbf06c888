"""Inventory movements -> one NetSuite ``inventoryAdjustment`` per location and window.

Which movements become adjustment lines (``POSTED_REASONS``): only those NetSuite learns of
no other way — shrink, damage, cycle-count corrections, found stock, transfers in and out,
and receipts the POS books itself. A SALE or RETURN movement is the stock side of a sale or
return that NetSuite already books (``BOOKED_REASONS``): the cashSale takes the sold units
out of stock and the cashRefund puts returned units back, so adjusting for them as well
would count the units twice; they are skipped.

Movements are netted per item and reason over a window (the seed's hybrid model: inventory
in scheduled batches): one adjustment per location and window, one line per item and
reason, the reason (and any late movements) in the line memo. The window start keys the
externalId: the same window always posts once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from tillbridge.streams.ledger.ids import external_id
from tillbridge.streams.stages.records import InventoryMovementRec

#: Movements posted as adjustment lines (README "Inventory").
POSTED_REASONS = frozenset({"SHRINK", "DAMAGE", "ADJUSTMENT", "FOUND", "TRANSFER",
                            "RECEIPT"})
#: Movements a NetSuite transaction already books (cashSale, cashRefund): never posted.
BOOKED_REASONS = frozenset({"SALE", "RETURN"})
#: Kept for callers of the first builder: the reasons that adjust stock.
ADJUSTING_REASONS = POSTED_REASONS
ZERO = Decimal(0)


class StockLine(NamedTuple):
    """Net change of one NetSuite item for one reason; ``memo`` adds what the line's reader
    should know (late movements, with their original event times)."""

    item: str
    qty: Decimal
    reason: str = ""
    memo: str = ""


@dataclass(frozen=True, slots=True)
class StockWindow:
    """Net stock changes at one location over ``[start, end)``. ``lines`` are
    ``StockLine``s (plain ``(item, qty)`` pairs are read as lines without a reason)."""

    store: str
    location_id: str
    window_start: datetime
    window_end: datetime
    lines: tuple[Sequence[Any], ...]
    movements: int = 0  # how many POS movements were netted (for the memo)


def window_stamp(moment: datetime) -> str:
    """Compact UTC stamp: externalIds should keep to letters, digits, ``_`` and ``-``."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def adjustment_external_id(store: str, window_start: datetime) -> str:
    return external_id("adj", store, window_stamp(window_start))


def net_deltas(movements: Iterable[InventoryMovementRec],
               reasons: frozenset[str] = POSTED_REASONS) -> dict[str, Decimal]:
    """SKU -> summed ``quantity_delta`` of the movements with a posted reason; SKUs
    whose movements cancel out are left out (NetSuite refuses a zero adjustment)."""
    totals: dict[str, Decimal] = {}
    for mv in movements:
        if mv["reason"] in reasons:
            totals[mv["sku"]] = totals.get(mv["sku"], ZERO) + mv["quantity_delta"]
    return {sku: qty for sku, qty in totals.items() if qty != 0}


def net_lines(window: StockWindow) -> list[StockLine]:
    """The window's lines netted per (item, reason), zero nets left out, sorted."""
    net: dict[tuple[str, str], Decimal] = {}
    memos: dict[tuple[str, str], list[str]] = {}
    for raw in window.lines:
        line = StockLine(*raw)
        key = (line.item, line.reason)
        net[key] = net.get(key, ZERO) + line.qty
        if line.memo:
            memos.setdefault(key, []).append(line.memo)
    return [StockLine(item, qty, reason, "; ".join(memos.get((item, reason), [])))
            for (item, reason), qty in sorted(net.items()) if qty != 0]


def build_inventory_adjustment(window: StockWindow, account: str, subsidiary: str,
                               tran_date: str | None = None) -> dict[str, Any] | None:
    """The adjustment body, or None when nothing nets to a change. ``account`` is the
    adjustment (offset) account, e.g. Inventory Shrinkage; not a bank or A/R account."""
    lines = []
    for ln in net_lines(window):
        line: dict[str, Any] = {"item": {"id": ln.item}, "location": {"id": window.location_id},
                                "adjustQtyBy": ln.qty}
        memo = " ".join(p for p in (ln.reason, ln.memo) if p)
        if memo:
            line["memo"] = memo[:4000]
        lines.append(line)
    if not lines:
        return None
    return {
        "externalId": adjustment_external_id(window.store, window.window_start),
        "account": {"id": account},
        "adjLocation": {"id": window.location_id},
        "subsidiary": {"id": subsidiary},
        "tranDate": tran_date or window.window_start.date().isoformat(),
        "memo": (f"POS stock window {window.store} {window.window_start.isoformat()} to "
                 f"{window.window_end.isoformat()}: {window.movements} movements"),
        "inventory": {"items": lines},
    }


def body_lines(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(item id, net quantity) per item of an adjustment body: what a window's content
    digest and the comparison with NetSuite's record are made of."""
    net: dict[str, Decimal] = {}
    for ln in body.get("inventory", {}).get("items", []):
        item = str(ln["item"]["id"])
        net[item] = net.get(item, ZERO) + Decimal(str(ln["adjustQtyBy"]))
    return [(item, format(qty.normalize(), "f")) for item, qty in sorted(net.items()) if qty]


def revive(body: dict[str, Any]) -> dict[str, Any]:
    """A body read back from JSON (the window book) with its quantities Decimal again."""
    items = [{**ln, "adjustQtyBy": Decimal(str(ln["adjustQtyBy"]))}
             for ln in body.get("inventory", {}).get("items", [])]
    return {**body, "inventory": {"items": items}}
