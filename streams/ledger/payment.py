"""The bodies of the NetSuite records a POS payment event becomes: customerDeposit (an order's
payment), customerPayment (an invoice's) and customerRefund (a refunded payment), plus the
audit record of every attempt. Pure builders; which record an event gets, and why, is the
flow's business: see ``flows/payment.py``. ``customer`` (never ``entity``) names the
customer on all three records (reference §9.10).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.ids import pos_fields
from tillbridge.streams.stages.enrich_payment import PaymentRefs
from tillbridge.streams.stages.records import PaymentRec

#: Records a refunded payment may have been posted as, with the sublist that applies them.
REFUND_SOURCES = {"customerDeposit": "deposit", "customerPayment": "apply"}
SALE_TYPES = ("cashSale", "salesOrder", "invoice")


# -- pure builders ---------------------------------------------------------------------------

def _memo(pay: PaymentRec) -> str:
    auth = f"; auth {pay['authorization_id']}" if pay.get("authorization_id") else ""
    gateway = (f"; gateway {pay.get('gateway_code') or '-'} ref {pay['gateway_reference']}"
               if pay.get("gateway_reference") else "")
    return (f"POS {pay['store_id']}/{pay['register_id']} txn {pay['pos_transaction_id']} "
            f"payment {pay['payment_id']} attempt {pay['attempt_no']}: {pay['tender_type']} "
            f"{pay['amount']} {pay['status']}{auth}{gateway}")[:999]


def _header(pay: PaymentRec, refs: PaymentRefs) -> dict[str, Any]:
    """Fields shared by deposit, payment and refund: where, when, how, and the POS ids."""
    body: dict[str, Any] = {
        "tranDate": pay["business_date"],
        "memo": _memo(pay),
        "otherRefNum": pay["pos_transaction_id"],
        **pos_fields(pay["store_id"], pay["register_id"], pay["pos_transaction_id"],
                     payment_id=pay["payment_id"],
                     gateway_reference=pay.get("gateway_reference")),
    }
    if refs.location:
        body["location"] = {"id": refs.location}
    if refs.subsidiary:
        body["subsidiary"] = {"id": refs.subsidiary}
    if refs.payment_method:
        body["paymentOption"] = {"id": refs.payment_method}
    return body


def build_customer_deposit(pay: PaymentRec, refs: PaymentRefs, order_id: str,
                           customer_id: str) -> dict[str, Any]:
    """Prepayment on a sales order: ``salesOrder`` links it (a deposit is no transform)."""
    return {**_header(pay, refs), "customer": {"id": customer_id}, "payment": pay["amount"],
            "salesOrder": {"id": order_id}}


def build_customer_payment(pay: PaymentRec, refs: PaymentRefs, invoice_id: str,
                           customer_id: str, open_amount: Decimal) -> dict[str, Any]:
    """Payment applied to the invoice, up to what is still open on it; any excess stays
    unapplied on the customer's account (NetSuite refuses over-application)."""
    body = {**_header(pay, refs), "customer": {"id": customer_id}, "payment": pay["amount"]}
    applied = min(pay["amount"], open_amount)
    if applied > 0:
        body["apply"] = {"items": [{"doc": {"id": invoice_id}, "apply": True,
                                    "amount": applied}]}
    return body


def build_payment_refund(pay: PaymentRec, refs: PaymentRefs, source_type: str,
                         source_id: str) -> dict[str, Any]:
    """Body of the deposit/payment -> customerRefund ``!transform``: the refunded amount
    applied to the source (the transform alone would refund all that is open)."""
    sublist = REFUND_SOURCES[source_type]
    return {**_header(pay, refs),
            sublist: {"items": [{"doc": {"id": source_id}, "apply": True,
                                 "amount": pay["amount"]}]}}


def payment_audit_record(pay: PaymentRec, outcome: str | None = None) -> dict[str, Any]:
    """One JSON-ready row per payment attempt: what the terminal and gateway said, step by
    step. Amounts are strings (exact), times ISO-8601; only the card's last four digits."""
    def when(value: Any) -> str | None:
        return value.isoformat() if hasattr(value, "isoformat") else \
            (None if value is None else str(value))

    def money(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "payment_id": pay["payment_id"], "pos_transaction_id": pay["pos_transaction_id"],
        "store_id": pay["store_id"], "register_id": pay["register_id"],
        "cashier_id": pay.get("cashier_id"), "business_date": pay["business_date"],
        "occurred_at": when(pay.get("occurred_at")), "attempt_no": pay.get("attempt_no", 1),
        "tender_type": pay["tender_type"], "amount": money(pay["amount"]),
        "currency": pay.get("currency", "USD"), "status": pay["status"],
        "failure_code": pay.get("failure_code"), "failure_reason": pay.get("failure_reason"),
        "authorization_id": pay.get("authorization_id"),
        "gateway_code": pay.get("gateway_code"),
        "gateway_response_code": pay.get("gateway_response_code"),
        "gateway_reference": pay.get("gateway_reference"),
        "card_brand": pay.get("card_brand"), "card_last4": pay.get("card_last4"),
        "entry_mode": pay.get("entry_mode"), "cash_drawer_id": pay.get("cash_drawer_id"),
        "original_payment_id": pay.get("original_payment_id"),
        "trace": [{"at": when(t["at"]), "step": t["step"], "detail": t.get("detail")}
                  for t in pay.get("trace") or []],
        "outcome": outcome,
    }
