"""An online order returned at a till, as NetSuite completes it (pure builders).

The chain, each step a ``!transform`` of the one before (reference §5.5) and each with
its own externalId (``ids.py``), so a crash anywhere resumes without doubles:

========================  ==========================================  ======================
step                      NetSuite                                    externalId
========================  ==========================================  ======================
authorisation             returnAuthorization from the salesOrder,    ``pos-ra-<order>-
                          approved (``orderStatus`` B, Pending        <store>-<txn>``
                          Receipt), the returned lines only
goods received            itemReceipt from the RA at the store's      ``pos-rcpt-<store>-
                          location (or the line's restock location)   <txn>``
credit                    creditMemo from the RA: the received lines  ``pos-rtn-<store>-
                          at the POS refund amounts                   <txn>``
refund                    customerRefund from the creditMemo, paid    ``pos-rfd-<store>-
                          by the refund tender's method, amount =     <txn>``
                          what the POS paid back (not for STORE_CREDIT,
                          EXCHANGE_ONLY or NONE: the credit stays on
                          the customer's account)
========================  ==========================================  ======================

Every returned unit is received (the goods did come back to the store); units that do
not go back on the shelf (DISPOSE, RETURN_TO_VENDOR, INSPECT) are then written off by the
return's inventoryAdjustment (``refund.build_disposal``), as for any POS return.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.ids import external_id, in_store_ra_id
from tillbridge.streams.ledger.order_records import (
    F_CONDITION,
    F_LINE_NO,
    F_RETURNED,
    OrderState,
    SoLine,
)
from tillbridge.streams.ledger.refund import (
    NO_PAYOUT,
    build_payout,
    line_note,
    refund_header,
    unit_rate,
)
from tillbridge.streams.stages.enrich_return import ReturnRefs
from tillbridge.streams.stages.records import ReturnRec

ZERO = Decimal(0)


def ra_external_id(ret: ReturnRec) -> str:
    order_id = ret["original"].get("online_order_id") or ""
    return in_store_ra_id(order_id, ret["store_id"], ret["pos_transaction_id"])


def receipt_external_id(ret: ReturnRec) -> str:
    return external_id("rcpt", ret["store_id"], ret["pos_transaction_id"])


def paid_back(ret: ReturnRec) -> Decimal:
    """What the POS paid back: the refund tenders, when money went out (none for store
    credit, an even exchange or an exchange uplift the shopper paid)."""
    if ret["net_refund"] <= 0 or ret["refund_method"] in NO_PAYOUT:
        return ZERO
    return sum((t["amount"] for t in ret["refund_tenders"]), ZERO)


@dataclass(frozen=True, slots=True)
class RaLine:
    """One returnAuthorization line as a GET with expanded sublists shows it."""

    line: int
    order_line: int | None  # the sales order line it authorises the return of
    item: str
    quantity: Decimal
    pos_line_no: int | None


def parse_ra(record: dict[str, Any]) -> list[RaLine]:
    out = []
    for ln in (record.get("item") or {}).get("items") or []:
        pos = ln.get(F_LINE_NO)
        order_line = ln.get("orderLine")
        out.append(RaLine(int(ln["line"]), int(order_line) if order_line is not None else None,
                          str((ln.get("item") or {}).get("id")),
                          Decimal(str(ln.get("quantity") or 0)),
                          int(pos) if pos not in (None, "") else None))
    return out


def match_order_lines(ret: ReturnRec, refs: ReturnRefs, order: OrderState) -> list[SoLine | None]:
    """The order line each returned line comes from: by the order's line number (the
    return's ``original_line_no``), checked by item; else the first unused line of that
    item; None when the order has no such item."""
    used: set[int] = set()
    out: list[SoLine | None] = []
    for line, item in zip(ret["lines"], refs.items, strict=True):
        no = line.get("original_line_no")
        pick = order.line_for(no) if no is not None else None
        if pick is None or pick.item != item or pick.line in used:
            pick = next((so for so in order.lines if so.item == item and so.line not in used),
                        None)
        if pick is not None:
            used.add(pick.line)
        out.append(pick)
    return out


def pick_ra_lines(matched: list[SoLine | None], ra: list[RaLine]) -> list[RaLine | None]:
    """The RA line each returned line is received and credited on (by order line)."""
    by_order = {ln.order_line: ln for ln in ra if ln.order_line is not None}
    return [by_order.get(so.line) if so is not None else None for so in matched]


def build_authorisation(ret: ReturnRec, refs: ReturnRefs, order: OrderState,
                        matched: list[SoLine | None]) -> dict[str, Any]:
    """salesOrder -> returnAuthorization body, approved: the returned lines at their restock
    location; every other order line dropped (quantity 0)."""
    lines: list[dict[str, Any]] = []
    for i, (line, so) in enumerate(zip(ret["lines"], matched, strict=True)):
        if so is None:
            continue
        lines.append({"orderLine": so.line, "quantity": line["quantity"],
                      "location": {"id": refs.line_locations[i]},
                      F_LINE_NO: so.pos_line_no if so.pos_line_no is not None
                      else line.get("original_line_no") or line["line_no"],
                      F_CONDITION: line_note(line)})
    kept = {so.line for so in matched if so is not None}
    lines += [{"orderLine": so.line, "quantity": ZERO} for so in order.lines
              if so.line not in kept]
    return {**refund_header(ret, refs, "return authorisation for return"), "orderStatus": "B",
            "item": {"items": lines}}


def returned_patch(ret: ReturnRec, matched: list[SoLine | None]) -> dict[str, Any]:
    """Order lines' cumulative quantity returned after this return (what the order flow
    measures a later RETURN_IN_STORE against, so the same return is not authorised twice)."""
    add: dict[int, tuple[SoLine, Decimal]] = {}
    for line, so in zip(ret["lines"], matched, strict=True):
        if so is not None:
            prev = add.get(so.line, (so, ZERO))[1]
            add[so.line] = (so, prev + line["quantity"])
    return {"item": {"items": [{"line": so.line, F_RETURNED: so.returned + qty}
                               for so, qty in add.values()]}}


def build_receipt(ret: ReturnRec, refs: ReturnRefs, ra: list[RaLine],
                  picks: list[RaLine | None]) -> dict[str, Any]:
    """returnAuthorization -> itemReceipt body: every returned unit received at the store's
    location (a line's restock location when it names one); other RA lines skipped."""
    lines: list[dict[str, Any]] = []
    for i, (line, pick) in enumerate(zip(ret["lines"], picks, strict=True)):
        if pick is not None:
            lines.append({"orderLine": pick.line, "quantity": min(line["quantity"],
                                                                   pick.quantity),
                          "location": {"id": refs.line_locations[i]}})
    taken = {p.line for p in picks if p is not None}
    lines += [{"orderLine": ln.line, "itemreceive": False} for ln in ra if ln.line not in taken]
    return {**refund_header(ret, refs, "goods received for return"), "item": {"items": lines}}


def build_credit(ret: ReturnRec, refs: ReturnRefs, ra: list[RaLine],
                 picks: list[RaLine | None]) -> dict[str, Any]:
    """returnAuthorization -> creditMemo body: each received line at the POS refund amount
    (net of discounts and restocking fees), taxed by the return line's tax code."""
    lines: list[dict[str, Any]] = []
    for i, (line, pick) in enumerate(zip(ret["lines"], picks, strict=True)):
        if pick is not None:
            qty = min(line["quantity"], pick.quantity)
            body: dict[str, Any] = {"orderLine": pick.line, "quantity": qty,
                                    "rate": unit_rate(line["refund_amount"], qty),
                                    "amount": line["refund_amount"],
                                    "custcol_pos_return_line": str(line["line_no"]),
                                    F_CONDITION: line_note(line)}
            if refs.tax_codes[i]:  # the tax the till refunded, not whatever the order had
                body["taxCode"] = {"id": refs.tax_codes[i]}
            lines.append(body)
    taken = {p.line for p in picks if p is not None}
    lines += [{"orderLine": ln.line, "quantity": ZERO} for ln in ra if ln.line not in taken]
    return {**refund_header(ret, refs, "return"), "item": {"items": lines}}


def build_refund(ret: ReturnRec, refs: ReturnRefs, credit_id: str) -> dict[str, Any]:
    """creditMemo -> customerRefund body: what the POS paid back, by its tender's method."""
    return {**build_payout(ret, refs, refs.payment_method),
            "apply": {"items": [{"doc": {"id": credit_id}, "apply": True,
                                 "amount": paid_back(ret)}]}}
