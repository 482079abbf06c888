"""What follows a sale at a till: its payment events and, sometimes, a return.

Real POS traffic is not sales alone: every tender produces a payment event (with the
declined attempt before it, when a card was refused), and a share of sales come back as
returns, on another topic, possibly before the sale itself has reached NetSuite (a
return published while its sale waits in a dead-letter queue, or simply overtaking it on
another partition). ``with_followups`` interleaves those events into a sale stream so
the pipeline's order-to-cash flows, parking included, are exercised by the demo.

Deterministic for a given seed. Money is Decimal, rounded half-up to the cent.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka.topics import PAYMENT, RETURN
from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.devstack.pos.generator import QTY, loyalty_points, money, rng_uuid

_DECLINES = (("05", "DO_NOT_HONOR", "Do not honor"),
             ("51", "INSUFFICIENT_FUNDS", "Insufficient funds"),
             ("54", "CARD_EXPIRED", "Expired card"))
_CONDITIONS = (("RESALABLE", "RESTOCK", "CHANGED_MIND"), ("RESALABLE", "RESTOCK", "WRONG_SIZE"),
               ("OPENED", "RESTOCK", "CHANGED_MIND"), ("DEFECTIVE", "DISPOSE", "DEFECTIVE"),
               ("DAMAGED", "DISPOSE", "NOT_AS_DESCRIBED"))
_CONDITION_WEIGHTS = (40, 25, 15, 12, 8)


def payments_for(sale: dict[str, Any], rng: random.Random,
                 decline_rate: float = 0.05) -> list[dict[str, Any]]:
    """One APPROVED payment per tender; a card tender is sometimes declined first."""
    out: list[dict[str, Any]] = []
    at = sale["completed_at"]
    for n, tender in enumerate(sale["tenders"], start=1):
        base = {
            "pos_transaction_id": sale["pos_transaction_id"], "store_id": sale["store_id"],
            "register_id": sale["register_id"], "cashier_id": sale.get("cashier_id"),
            "business_date": sale["business_date"], "currency": sale["currency"],
            "tender_type": tender["tender_type"], "amount": tender["amount"],
            "tendered_amount": None, "change_amount": None,
            "gateway_code": tender.get("gateway_code"),
            "card_brand": None if tender["tender_type"] == "CASH" else tender["tender_type"],
            "card_last4": tender.get("card_last4"),
            "entry_mode": None if tender["tender_type"] == "CASH" else "CHIP",
            "cash_drawer_id": tender.get("cash_drawer_id"), "original_payment_id": None,
        }
        attempt = 1
        card = tender["tender_type"] != "CASH"
        if card and rng.random() < decline_rate:
            code, failure, reason = rng.choice(_DECLINES)
            out.append({**base, "event_id": rng_uuid(rng),
                        "payment_id": f"{sale['pos_transaction_id']}-P{n}-A1",
                        "occurred_at": at - timedelta(seconds=20), "attempt_no": 1,
                        "status": "DECLINED", "authorization_id": None,
                        "gateway_response_code": code, "gateway_reference": None,
                        "failure_reason": reason, "failure_code": failure,
                        "trace": [{"at": at - timedelta(seconds=22), "step": "CARD_READ",
                                   "detail": None},
                                  {"at": at - timedelta(seconds=21), "step": "AUTH_REQUEST",
                                   "detail": tender.get("gateway_code")},
                                  {"at": at - timedelta(seconds=20), "step": "AUTH_RESPONSE",
                                   "detail": f"{code} {reason}"}]})
            attempt = 2
        out.append({**base, "event_id": rng_uuid(rng),
                    "payment_id": f"{sale['pos_transaction_id']}-P{n}-A{attempt}",
                    "occurred_at": at, "attempt_no": attempt, "status": "APPROVED",
                    "authorization_id": tender.get("authorization_id"),
                    "gateway_response_code": "00" if card else None,
                    "gateway_reference": f"GW-{sale['pos_transaction_id']}-{n}" if card
                    else None, "failure_reason": None, "failure_code": None, "trace": []})
    return out


def return_for(sale: dict[str, Any], rng: random.Random, *, days_later: int = 3,
               refund_method: str | None = None) -> dict[str, Any]:
    """A return of one or two of the sale's lines (a unit each), refunded at the net price
    paid (line discounts spread per unit), tax at the sale's rate."""
    lines = rng.sample(sale["lines"], min(len(sale["lines"]), rng.choice((1, 1, 2))))
    at = sale["completed_at"] + timedelta(days=days_later, minutes=rng.randint(0, 600))
    out_lines = []
    for n, line in enumerate(lines, start=1):
        qty = Decimal(1)
        line_disc = sum((d["amount"] for d in line["discounts"]), Decimal(0))
        unit_net = money(line["unit_price"] - line_disc / line["quantity"])
        refund = money(unit_net * qty)
        tax = money(refund * line["tax_rate"] / 100)
        condition, disposition, reason = rng.choices(_CONDITIONS, _CONDITION_WEIGHTS)[0]
        out_lines.append({
            "line_no": n, "original_line_no": line["line_no"], "sku": line["sku"],
            "description": line.get("description"), "quantity": qty.quantize(QTY),
            "unit_price": unit_net, "refund_amount": refund, "tax_code": line["tax_code"],
            "tax_rate": line["tax_rate"], "tax_refund_amount": tax, "condition": condition,
            "disposition": disposition,
            "restock_location": sale["store_id"] if disposition == "RESTOCK" else None,
            "reason_code": reason, "reason_note": None, "restocking_fee": None})
    refund_total = sum((ln["refund_amount"] + ln["tax_refund_amount"] for ln in out_lines),
                       Decimal(0))
    method = refund_method or rng.choices(("ORIGINAL_TENDER", "CASH", "STORE_CREDIT"),
                                          (75, 15, 10))[0]
    primary = max(sale["tenders"], key=lambda t: t["amount"])
    if method == "STORE_CREDIT":
        tenders: list[dict[str, Any]] = []
    else:
        kind = primary["tender_type"] if method == "ORIGINAL_TENDER" else "CASH"
        tenders = [{"tender_type": kind, "amount": refund_total,
                    "authorization_id": None,
                    "gateway_code": primary.get("gateway_code") if kind != "CASH" else None,
                    "card_last4": primary.get("card_last4") if kind != "CASH" else None,
                    "cash_drawer_id": f"{sale['store_id']}-{sale['register_id']}-D1"
                    if kind == "CASH" else None}]
    register = sale["register_id"]
    return {
        "event_id": rng_uuid(rng),
        "pos_transaction_id": f"{sale['pos_transaction_id']}-RET",
        "store_id": sale["store_id"], "register_id": register,
        "cashier_id": sale.get("cashier_id"), "business_date": at.date().isoformat(),
        "occurred_at": at, "currency": sale["currency"], "kind": "RETURN",
        "original": {"pos_transaction_id": sale["pos_transaction_id"],
                     "store_id": sale["store_id"], "register_id": register,
                     "business_date": sale["business_date"], "channel": "POS",
                     "online_order_id": None},
        "customer": dict(sale["customer"]), "lines": out_lines, "exchange_lines": [],
        "refund_method": method, "refund_tenders": tenders, "refund_total": refund_total,
        "exchange_total": Decimal("0.00"), "net_refund": refund_total,
        "loyalty_points_reversed": _reversed(sale, refund_total), "approved_by": None,
    }


def as_exchange(ret: dict[str, Any]) -> dict[str, Any]:
    """The return as an even exchange: each returned unit swapped for a new one of the same
    item (a faulty or wrong-size unit replaced) at the price paid, taxed as it was, so
    nothing is paid either way (``EXCHANGE_ONLY``, no tenders) and no points move."""
    lines = [{"line_no": ln["line_no"], "sku": ln["sku"], "description": ln["description"],
              "quantity": ln["quantity"], "unit_price": ln["refund_amount"],
              "discount_amount": None, "tax_code": ln["tax_code"], "tax_rate": ln["tax_rate"],
              "tax_amount": ln["tax_refund_amount"]} for ln in ret["lines"]]
    return {**ret, "pos_transaction_id": ret["pos_transaction_id"].replace("-RET", "-EXC"),
            "kind": "EXCHANGE", "exchange_lines": lines, "refund_method": "EXCHANGE_ONLY",
            "refund_tenders": [], "exchange_total": ret["refund_total"],
            "net_refund": Decimal("0.00"), "loyalty_points_reversed": None}


def _reversed(sale: dict[str, Any], refunded: Decimal) -> int | None:
    """Points the return takes back: the refund's worth, never more than the sale earned;
    None when the sale earned none."""
    earned = sale.get("loyalty_points_earned")
    return min(earned, loyalty_points(refunded)) if earned else None


def online_return_for(order: dict[str, Any], store: str, seq: int, txn: str,
                      rng: random.Random, at: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """An online order (picked up) brought back to ``store``'s till: the order's
    RETURN_IN_STORE event and the till's POS return (channel ONLINE) of one unit of one
    line, refunded at the price paid with the order's tax, to a card or as store credit."""
    line = rng.choice(order["lines"])
    condition, disposition, reason = rng.choices(_CONDITIONS, _CONDITION_WEIGHTS)[0]
    refund = money(line["unit_price"])
    tax = money(refund * line["tax_rate"] / 100)
    method = rng.choices(("ORIGINAL_TENDER", "CASH", "STORE_CREDIT"), (70, 15, 15))[0]
    kind = "VISA" if method == "ORIGINAL_TENDER" else "CASH"
    tenders = [] if method == "STORE_CREDIT" else [
        {"tender_type": kind, "amount": refund + tax, "authorization_id": None,
         "gateway_code": "00" if kind == "VISA" else None, "card_last4": None,
         "cash_drawer_id": f"{store}-R03-D1" if kind == "CASH" else None}]
    restock = store if disposition == "RESTOCK" else None
    event = {**order, "event_id": rng_uuid(rng), "occurred_at": at, "sequence": seq,
             "kind": "RETURN_IN_STORE", "status": "RETURNED", "store_id": store,
             "register_id": "R03", "pos_transaction_id": txn,
             "lines": [dict(ln, quantity_fulfilled=ln["quantity_ordered"])
                       for ln in order["lines"]]}
    for ln in event["lines"]:
        if ln["line_no"] == line["line_no"]:
            ln.update(quantity_returned=Decimal(1).quantize(QTY), return_condition=condition,
                      restock_location=restock)
    ret = {
        "event_id": rng_uuid(rng), "pos_transaction_id": txn, "store_id": store,
        "register_id": "R03", "cashier_id": None, "business_date": at.date().isoformat(),
        "occurred_at": at, "currency": order["currency"], "kind": "RETURN",
        "original": {"pos_transaction_id": None, "store_id": None, "register_id": None,
                     "business_date": None, "channel": "ONLINE",
                     "online_order_id": order["order_id"]},
        "customer": dict(order["customer"]),
        "lines": [{"line_no": 1, "original_line_no": line["line_no"], "sku": line["sku"],
                   "description": line.get("description"), "quantity": Decimal(1).quantize(QTY),
                   "unit_price": line["unit_price"], "refund_amount": refund,
                   "tax_code": line["tax_code"], "tax_rate": line["tax_rate"],
                   "tax_refund_amount": tax, "condition": condition, "disposition": disposition,
                   "restock_location": restock, "reason_code": reason, "reason_note": None,
                   "restocking_fee": None}],
        "exchange_lines": [], "refund_method": method, "refund_tenders": tenders,
        "refund_total": refund + tax, "exchange_total": Decimal("0.00"),
        "net_refund": refund + tax, "loyalty_points_reversed": None, "approved_by": None,
    }
    return event, ret


def with_followups(sales: Iterable[GeneratedEvent], seed: int = 0, *,
                   payments: bool = True, return_rate: float = 0.05,
                   early_return_rate: float = 0.2,
                   exchange_rate: float = 0.2) -> Iterator[GeneratedEvent]:
    """Interleave payment and return events into a stream of generated sales.

    Only clean sales get follow-ups (a dirty one is dead-lettered at ingest; its
    payments would only wait for a sale that never comes). ``early_return_rate`` of
    the returns are published *before* their sale, which then follows a few events
    later: the sink must park those returns and release them when the sale lands.
    ``exchange_rate`` of the returns are even exchanges (drawn from their own generator,
    so the rest of the stream is the same with or without them).
    """
    rng = random.Random(seed ^ 0x5EED)
    swaps = random.Random(seed ^ 0xE8C)
    held: list[tuple[int, GeneratedEvent]] = []  # sales released after their return
    for i, event in enumerate(sales):
        for due, sale_event in [h for h in held if h[0] <= i]:
            held.remove((due, sale_event))
            yield sale_event
        if event.dirty_kind is not None or not isinstance(event.value, dict):
            yield event
            continue
        sale = event.value
        ret = return_for(sale, rng) if rng.random() < return_rate else None
        if ret is not None and swaps.random() < exchange_rate:
            ret = as_exchange(ret)
        if ret is not None and rng.random() < early_return_rate:
            yield GeneratedEvent(ret["pos_transaction_id"].encode(), ret, RETURN)
            held.append((i + rng.randint(2, 8), event))
            ret = None
        else:
            yield event
        if payments:
            for pay in payments_for(sale, rng):
                yield GeneratedEvent(sale["pos_transaction_id"].encode(), pay, PAYMENT)
        if ret is not None:
            yield GeneratedEvent(ret["pos_transaction_id"].encode(), ret, RETURN)
    for _, sale_event in held:
        yield sale_event
