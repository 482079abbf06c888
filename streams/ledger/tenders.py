"""How a sale's tenders reach NetSuite, as pure functions (the I/O is ``flows/sale_writer``).

The record design follows Oracle's own POS, SuiteCommerce InStore (reference §7): one
tender is a ``cashSale`` (its ``paymentOption``); a split tender is an ``invoice`` plus one
``customerPayment`` per tender applied to it, so each tender is its own receipt in NetSuite
with its own payment method, amount and trace; a gift card rides on the sale record's
``giftCertRedemption`` sublist (``authCode`` = the gift certificate, ``authCodeApplied``),
which books against the gift certificate liability, so gift card + one other tender stays
a cashSale. Store credit is the customer's open credit (credit memos): it can only be
applied to an invoice, so any sale with a STORE_CREDIT tender is an invoice and the credit
memos are applied to it (their ``apply`` sublist, keyed by ``doc``).

Every tender's POS data (tender type, authorization id, gateway response code, cash drawer,
card last four, change) travels as ``custbody_tillbridge_*`` fields on the record that
carries its money, and the sale record lists every tender in ``custbody_tillbridge_tenders``
(JSON): a settlement per payment method reconciles from NetSuite alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.ids import pos_fields, tender_payment_id
from tillbridge.streams.stages.enrich import Enrichment
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection, SaleRec, TenderRec
from tillbridge.streams.stages.tenders import booked_tenders, change_of, handed_over

GIFT_CARD = "GIFT_CARD"
STORE_CREDIT = "STORE_CREDIT"
ZERO = Decimal(0)

#: Transaction body fields (on a real account: Transaction Body Fields, Free-Form Text,
#: applied to Sale, Invoice and Customer Payment) carrying one tender's POS data.
TENDER_TYPE_FIELD = "custbody_tillbridge_tender_type"
AUTH_FIELD = "custbody_tillbridge_auth_code"
GATEWAY_FIELD = "custbody_tillbridge_gateway_code"
DRAWER_FIELD = "custbody_tillbridge_drawer_ref"
CARD_FIELD = "custbody_tillbridge_card_last4"
CHANGE_FIELD = "custbody_tillbridge_change_given"
#: Long Text body field on the sale record: every tender of the sale and where it went.
TENDERS_FIELD = "custbody_tillbridge_tenders"

Indexed = tuple[int, TenderRec]


@dataclass(frozen=True, slots=True)
class TenderPlan:
    """Which records a sale's tenders become (indexes are places on the receipt)."""

    record_type: str  # cashSale | invoice
    paid: tuple[Indexed, ...]  # cash/cards: the cashSale's paymentOption, or a payment each
    gift: tuple[Indexed, ...]  # gift cards: giftCertRedemption lines
    credit: tuple[Indexed, ...]  # store credit: open credit memos applied to the invoice

    @property
    def credit_total(self) -> Decimal:
        return sum((t["amount"] for _, t in self.credit), ZERO)

    @property
    def gift_codes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(str(t.get("gift_card_code") or "") for _, t in self.gift))


def plan_tenders(sale: SaleRec) -> TenderPlan:
    """One paying tender (plus gift cards) and no store credit: a cashSale; else an invoice."""
    tenders = list(enumerate(booked_tenders(sale)))
    gift = tuple((i, t) for i, t in tenders if t["tender_type"] == GIFT_CARD)
    credit = tuple((i, t) for i, t in tenders if t["tender_type"] == STORE_CREDIT)
    paid = tuple((i, t) for i, t in tenders
                 if t["tender_type"] not in (GIFT_CARD, STORE_CREDIT) and t["amount"] > 0)
    record_type = "invoice" if credit or len(paid) > 1 else "cashSale"
    return TenderPlan(record_type, paid, gift, credit)


def tender_fields(tender: TenderRec) -> dict[str, str]:
    """One tender's POS data as body fields (empty values left out)."""
    values = {TENDER_TYPE_FIELD: tender["tender_type"], AUTH_FIELD: tender.get("authorization_id"),
              GATEWAY_FIELD: tender.get("gateway_code"), DRAWER_FIELD: tender.get("cash_drawer_id"),
              CARD_FIELD: tender.get("card_last4"),
              CHANGE_FIELD: str(change_of(tender)) if change_of(tender) else None}
    return {k: v for k, v in values.items() if v}


def tenders_json(plan: TenderPlan) -> str:
    """Every tender of the sale, in receipt order, and the NetSuite record carrying it."""
    where = {i: "paymentOption" if plan.record_type == "cashSale" else "customerPayment"
             for i, _ in plan.paid}
    where.update({i: "giftCertRedemption" for i, _ in plan.gift})
    where.update({i: "creditMemo" for i, _ in plan.credit})
    rows = []
    for i, t in sorted((*plan.paid, *plan.gift, *plan.credit), key=lambda it: it[0]):
        row: dict[str, Any] = {"index": i, "tender_type": t["tender_type"],
                               "amount": str(t["amount"]), "booked_on": where[i]}
        row.update({k.removeprefix("custbody_tillbridge_"): v
                    for k, v in tender_fields(t).items() if k != TENDER_TYPE_FIELD})
        if change_of(t):
            row["handed_over"] = str(handed_over(t))
        if t.get("gift_card_code"):
            row["gift_card_code"] = t.get("gift_card_code")
        rows.append(row)
    return json.dumps(rows, separators=(",", ":"))


def sale_tender_fields(plan: TenderPlan, enr: Enrichment,
                       certificates: Mapping[str, str]) -> dict[str, Any]:
    """What the tenders add to the sale record's body: the cashSale's one paying tender
    (``paymentOption`` and its POS data), gift card redemptions, the tenders list.
    ``certificates``: gift card code -> NetSuite gift certificate id."""
    out: dict[str, Any] = {TENDERS_FIELD: tenders_json(plan)}
    if plan.record_type == "cashSale" and plan.paid:
        index, tender = plan.paid[0]
        out["paymentOption"] = {"id": enr.payment_methods[index]}
        out.update(tender_fields(tender))
    if plan.gift:
        out["giftCertRedemption"] = {"items": [
            {"authCode": {"id": certificates[str(t.get("gift_card_code") or "")]},
             "authCodeApplied": t["amount"]} for _, t in plan.gift]}
    return out


def build_tender_payment(sale: SaleRec, index: int, tender: TenderRec, enr: Enrichment,
                         customer_id: str, invoice_id: str, tran_date: str) -> dict[str, Any]:
    """The customerPayment of one tender, applied in full to the sale's invoice."""
    return {
        "externalId": tender_payment_id(sale["store_id"], sale["pos_transaction_id"], index),
        "customer": {"id": customer_id},
        "subsidiary": {"id": enr.subsidiary},
        "location": {"id": enr.location},
        "tranDate": tran_date,
        "payment": tender["amount"],
        "paymentOption": {"id": enr.payment_methods[index]},
        "apply": {"items": [{"doc": {"id": invoice_id}, "apply": True,
                             "amount": tender["amount"]}]},
        "memo": f"POS {sale['store_id']}/{sale['register_id']} txn "
                f"{sale['pos_transaction_id']} tender {index + 1}: {tender['tender_type']}",
        **tender_fields(tender),
        **pos_fields(sale["store_id"], sale["register_id"], sale["pos_transaction_id"]),
    }


def allocate_credit(amount: Decimal,
                    open_credits: Sequence[tuple[str, Decimal]]) -> list[tuple[str, Decimal]]:
    """Spread ``amount`` over open credit memos, oldest first: [(memo id, amount)].
    Raises ValueError when the open credit is short (the caller dead-letters)."""
    out: list[tuple[str, Decimal]] = []
    left = amount
    for memo_id, open_amount in open_credits:
        if left <= 0:
            break
        take = min(left, open_amount)
        if take > 0:
            out.append((memo_id, take))
            left -= take
    if left > 0:
        raise ValueError(f"open credit short by {left}")
    return out


def credit_application(invoice_id: str, amount: Decimal) -> dict[str, Any]:
    """PATCH body applying part of a credit memo to the sale's invoice (``apply`` is keyed
    by ``doc``: a replay sets the same line again, never a second one)."""
    return {"apply": {"items": [{"doc": {"id": invoice_id}, "apply": True, "amount": amount}]}}


def funds_refusal(plan: TenderPlan, certificates: Mapping[str, tuple[str, Decimal]],
                  open_credits: Sequence[tuple[str, Decimal]], customer_id: str
                  ) -> Rejection | None:
    """A gift card NetSuite does not know or whose balance is short, or store credit above
    the customer's open credit: refused before anything is written (the sale would book a
    tender against a liability that is not there). ``certificates``: code -> (id, remaining)."""
    wanted: dict[str, Decimal] = {}
    for _, t in plan.gift:
        code = str(t.get("gift_card_code") or "")
        wanted[code] = wanted.get(code, ZERO) + t["amount"]
    for code, amount in wanted.items():
        cert = certificates.get(code)
        if cert is None or cert[1] < amount:
            balance = "unknown" if cert is None else str(cert[1])
            return Rejection(Stage.SINK, ReasonCode.GIFT_CARD_UNAVAILABLE, "tender.gift_card",
                             f"gift card {code or '(no code)'}: tender {amount}, balance "
                             f"{balance} in NetSuite",
                             {"gift_card_code": code or None, "tender_amount": str(amount),
                              "netsuite_balance": balance,
                              "gift_certificate_id": cert[0] if cert else None})
    return credit_refusal(plan, open_credits, customer_id)


def credit_refusal(plan: TenderPlan, open_credits: Sequence[tuple[str, Decimal]],
                   customer_id: str, needed: Decimal | None = None) -> Rejection | None:
    """Store credit above the customer's open credit (``needed``: the part still to apply)."""
    available = sum((amount for _, amount in open_credits), ZERO)
    needed = plan.credit_total if needed is None else needed
    if plan.credit and available < needed:
        return Rejection(Stage.SINK, ReasonCode.STORE_CREDIT_UNAVAILABLE, "tender.store_credit",
                         f"store credit {needed} to apply, customer {customer_id} "
                         f"has {available} open credit in NetSuite",
                         {"customer_id": customer_id, "tender_amount": str(needed),
                          "open_credit": str(available),
                          "open_credit_memos": [memo for memo, _ in open_credits]})
    return None
