"""Validate stage: required fields and money that adds up, to the cent. Pure functions.

Rules run in a fixed order and the first failure wins, so a record's reason code is stable
across replays.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection, SaleRec, reject
from tillbridge.streams.stages.tenders import CASH, booked_tenders, change_of

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    """Round half-up to cents, as tills and NetSuite do."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _reject(reason: ReasonCode, rule: str, message: str, **inputs: object) -> Rejection:
    return reject(Stage.VALIDATE, reason, rule, message, **inputs)


def rule_required(sale: SaleRec) -> Rejection | None:
    # business_date may be empty: enrich takes it from the completion time in the store's zone
    for name in ("pos_transaction_id", "register_id"):
        if not sale.get(name):
            return _reject(ReasonCode.MISSING_FIELD, "required", f"{name} is empty", field=name)
    if not sale.get("store_id"):
        return _reject(ReasonCode.MISSING_LOCATION, "required.store", "store_id is empty",
                       pos_transaction_id=sale["pos_transaction_id"])
    if not sale["lines"]:
        return _reject(ReasonCode.MISSING_FIELD, "required", "the sale has no lines", field="lines")
    if not sale["tenders"]:
        return _reject(ReasonCode.MISSING_FIELD, "required", "the sale has no tenders",
                       field="tenders")
    for line in sale["lines"]:
        if not line.get("tax_code"):
            return _reject(ReasonCode.MISSING_TAX_CODE, "required.tax_code",
                           f"line {line['line_no']} ({line['sku']}) has no tax code",
                           line_no=line["line_no"], sku=line["sku"])
    return None


def rule_amounts_sane(sale: SaleRec) -> Rejection | None:
    for line in sale["lines"]:
        if line["quantity"] <= 0 or line["unit_price"] < 0 or line["tax_amount"] < 0:
            return _reject(ReasonCode.INVALID_AMOUNT, "amounts.sane",
                           f"line {line['line_no']}: quantity must be > 0 and amounts >= 0",
                           line_no=line["line_no"], quantity=line["quantity"],
                           unit_price=line["unit_price"], tax_amount=line["tax_amount"])
    return None


def rule_tender_amounts_sane(sale: SaleRec) -> Rejection | None:
    """Runs after the discount rule: an oversized discount also drives a tender negative,
    and the discount is the cause worth reporting."""
    for tender in sale["tenders"]:
        if tender["amount"] < 0:
            return _reject(ReasonCode.INVALID_AMOUNT, "amounts.sane", "a tender amount is negative",
                           tender_type=tender["tender_type"], amount=tender["amount"])
        change = change_of(tender)
        if change < 0 or (change > 0 and tender["tender_type"] != CASH):
            return _reject(ReasonCode.INVALID_AMOUNT, "amounts.change",
                           "change is handed back on cash tenders only, never negative",
                           tender_type=tender["tender_type"], change_given=change)
    return None


def rule_discounts(sale: SaleRec) -> Rejection | None:
    """No discount is negative; a line's discounts stay within the line, order discounts
    within what the lines leave. NetSuite books each as a negative discount line, so a
    discount bigger than its base would book a negative sale line."""
    subtotal = Decimal(0)
    line_disc_total = Decimal(0)
    for line in sale["lines"]:
        gross = cents(line["quantity"] * line["unit_price"])
        subtotal += gross
        amounts = [d["amount"] for d in line["discounts"]]
        line_disc = sum(amounts, Decimal(0))
        line_disc_total += line_disc
        if any(a < 0 for a in amounts) or line_disc > gross:
            return _reject(ReasonCode.INVALID_DISCOUNT, "discounts.line",
                           f"line {line['line_no']}: discounts {line_disc} on a line of {gross}",
                           line_no=line["line_no"], sku=line["sku"], line_gross=gross,
                           line_discounts=line_disc,
                           codes=",".join(d["code"] for d in line["discounts"]))
    amounts = [d["amount"] for d in sale["order_discounts"]]
    order_disc = sum(amounts, Decimal(0))
    if any(a < 0 for a in amounts) or order_disc > subtotal - line_disc_total:
        return _reject(ReasonCode.INVALID_DISCOUNT, "discounts.order",
                       f"order discounts {order_disc} exceed the net of the lines "
                       f"{subtotal - line_disc_total}",
                       order_discounts=order_disc, subtotal=subtotal,
                       line_discounts=line_disc_total,
                       codes=",".join(d["code"] for d in sale["order_discounts"]))
    return None


def rule_totals(sale: SaleRec) -> Rejection | None:
    """subtotal = sum(qty x price); discounts and tax add up; total = sub - disc + tax."""
    lines = sale["lines"]
    subtotal = sum((cents(ln["quantity"] * ln["unit_price"]) for ln in lines), Decimal(0))
    discounts = sum((d["amount"] for ln in lines for d in ln["discounts"]), Decimal(0))
    discounts += sum((d["amount"] for d in sale["order_discounts"]), Decimal(0))
    tax = sum((ln["tax_amount"] for ln in lines), Decimal(0))
    # VAT prices already hold their tax: the receipt total is what was rung less discounts
    expected_total = subtotal - discounts + (0 if sale.get("prices_include_tax") else tax)
    checks = (("subtotal", subtotal, sale["subtotal"]),
              ("discount_total", discounts, sale["discount_total"]),
              ("tax_total", tax, sale["tax_total"]),
              ("total", expected_total, sale["total"]))
    for name, computed, stated in checks:
        if computed != stated:
            return _reject(ReasonCode.TOTALS_MISMATCH, f"totals.{name}",
                           f"{name} is {stated} but lines give {computed}",
                           subtotal=subtotal, discount_total=discounts, tax_total=tax,
                           computed_total=expected_total, stated_total=sale["total"],
                           field=name, stated=stated, computed=computed)
    return None


def rule_tenders(sale: SaleRec) -> Rejection | None:
    """The booked tenders (cash change netted, ``stages/tenders.py``) add up to the total:
    an over-tender no change explains is refused, never booked as revenue."""
    tendered = sum((t["amount"] for t in booked_tenders(sale)), Decimal(0))
    if tendered != sale["total"]:
        return _reject(ReasonCode.TENDER_MISMATCH, "tenders.sum",
                       f"tenders add up to {tendered}, total is {sale['total']}",
                       tendered=tendered, total=sale["total"],
                       tenders=",".join(t["tender_type"] for t in sale["tenders"]))
    return None


SALE_RULES: tuple[Callable[[SaleRec], Rejection | None], ...] = (
    rule_required, rule_amounts_sane, rule_discounts, rule_tender_amounts_sane, rule_totals,
    rule_tenders,
)


def validate_sale(sale: SaleRec) -> Rejection | None:
    """First failing rule's rejection, or None when the sale may proceed."""
    for rule in SALE_RULES:
        rejection = rule(sale)
        if rejection is not None:
            return rejection
    return None
