"""What an order event changes on its NetSuite sales order (pure): the PATCH lines of a
cancellation or a modification, and the returnAuthorization of a return in store.

Quantities on an event are the order line's state after it (cumulative); each builder
compares them with what NetSuite's order already shows (``OrderState``), so an event
replayed or overtaken by a later one changes nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.order_records import (
    F_CONDITION,
    F_LINE_NO,
    ZERO,
    OrderState,
    at_index,
    line_tax_code,
    open_quantity,
    order_line,
    priced,
    source_fields,
    source_memo,
    tran_date,
)
from tillbridge.streams.stages.enrich_order import OrderRefs
from tillbridge.streams.stages.records import OrderRec


def cancel_changes(ev: OrderRec, order: OrderState) -> list[dict[str, Any]]:
    """PATCH lines for a cancellation: per event line, ordered less cancelled is what is
    left; at or below what is fulfilled the line is closed, else its quantity shrinks. An
    order-level cancel (no line says what was cancelled) closes every open line."""
    by_no = {ln["line_no"]: ln for ln in ev["lines"]}
    line_level = any(ln.get("quantity_cancelled") is not None or
                     ln.get("line_status") == "CANCELLED" for ln in ev["lines"])
    changes: list[dict[str, Any]] = []
    for so in order.lines:
        if so.closed or so.open <= 0:
            continue
        line = by_no.get(so.pos_line_no) if so.pos_line_no is not None else None
        if not line_level:
            changes.append({"line": so.line, "isClosed": True})
        elif line is not None and line.get("quantity_cancelled") is not None:
            keep = open_quantity(line)
            if keep <= so.fulfilled:
                changes.append({"line": so.line, "isClosed": True})
            elif keep < so.quantity:
                changes.append({"line": so.line, "quantity": keep})
        elif line is not None and line.get("line_status") == "CANCELLED":
            changes.append({"line": so.line, "isClosed": True})
    return changes


def modify_changes(ev: OrderRec, refs: OrderRefs, order: OrderState) -> list[dict[str, Any]]:
    """PATCH lines that bring the order to the event's lines: changed quantity, price or
    source location; new lines appended (no ``line`` key); lines the event dropped, or cut
    to what is already fulfilled, closed."""
    changes: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, line in enumerate(ev["lines"]):
        so = order.line_for(line["line_no"])
        want = open_quantity(line)
        loc = at_index(refs.line_locations, i)
        if so is None:
            if want > 0:
                changes.append(order_line(line, refs.items[i], loc or refs.location,
                                          line_tax_code(refs, i)))
            continue
        seen.add(so.line)
        if so.closed:
            continue
        if want <= so.fulfilled:
            if so.open > 0:
                changes.append({"line": so.line, "isClosed": True})
            continue
        change: dict[str, Any] = {}
        wanted = priced(line, want)
        if want != so.quantity or wanted["amount"] != so.amount:
            change.update(wanted)
        if loc and loc != so.location:
            change["location"] = {"id": loc}
        if change:
            changes.append({"line": so.line, **change})
    for so in order.lines:
        if so.line not in seen and so.pos_line_no is not None and so.open > 0:
            changes.append({"line": so.line, "isClosed": True})
    return changes


@dataclass(frozen=True, slots=True)
class ReturnLine:
    order_line: int
    pos_line_no: int
    quantity: Decimal  # returned by this event
    returned: Decimal  # cumulative, after it
    location: str | None  # restock location
    condition: str | None


def return_plan(ev: OrderRec, refs: OrderRefs, order: OrderState) -> list[ReturnLine]:
    """Per line: cumulative ``quantity_returned`` less what earlier returns recorded."""
    plan = []
    for i, line in enumerate(ev["lines"]):
        returned = line.get("quantity_returned")
        so = order.line_for(line["line_no"])
        if returned is None or so is None or returned <= so.returned:
            continue
        plan.append(ReturnLine(so.line, line["line_no"], returned - so.returned, returned,
                               at_index(refs.restock_locations, i) or refs.store_location,
                               line.get("return_condition")))
    return plan


def build_return_authorization(ev: OrderRec, plan: list[ReturnLine], order: OrderState,
                               refs: OrderRefs) -> dict[str, Any]:
    """returnAuthorization transform body, approved (Pending Receipt): the returned lines at
    their restock location, every other order line dropped (quantity 0)."""
    planned = {p.order_line for p in plan}
    lines: list[dict[str, Any]] = []
    for p in plan:
        line: dict[str, Any] = {"orderLine": p.order_line, "quantity": p.quantity,
                                F_LINE_NO: p.pos_line_no}
        if p.location:
            line["location"] = {"id": p.location}
        if p.condition:
            line[F_CONDITION] = p.condition
        lines.append(line)
    lines += [{"orderLine": so.line, "quantity": ZERO}
              for so in order.lines if so.line not in planned]
    body: dict[str, Any] = {"orderStatus": "B", "tranDate": tran_date(ev, refs),
                            "otherRefNum": ev.get("pos_transaction_id") or ev["order_id"],
                            "memo": source_memo(ev, "Returned"), **source_fields(ev),
                            "item": {"items": lines}}
    where = refs.store_location or next((p.location for p in plan if p.location), None)
    if where:
        body["location"] = {"id": where}
    return body
