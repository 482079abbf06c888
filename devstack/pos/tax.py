"""How a till computes tax, for the POS generator and the tax tests: per line or on the
receipt total (the till's choice, per store), on tax-exclusive prices or VAT-inclusive
ones. Line discounts come off before tax; receipt discounts after (as ``rule_totals``)."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
ZERO = Decimal(0)


def _cents(value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    return value.quantize(CENT, rounding=rounding)


def taxable(line: dict[str, Any]) -> Decimal:
    """The line as rung less its own discounts."""
    gross = _cents(line["quantity"] * line["unit_price"])
    return gross - sum((d["amount"] for d in line["discounts"]), ZERO)


def exact_tax(line: dict[str, Any], inclusive: bool) -> Decimal:
    rate = line["tax_rate"]
    return taxable(line) * rate / ((100 + rate) if inclusive else 100)


def ring_tax(sale: dict[str, Any], rounding: str = "LINE") -> dict[str, Any]:
    """Set each line's ``tax_amount`` and the receipt totals. ``LINE``: each line's tax
    rounded half up. ``TOTAL``: per rate, the receipt's tax rounded once and its cents
    allocated to the lines by largest remainder (so lines add up to the receipt)."""
    inclusive = bool(sale.get("prices_include_tax"))
    lines = sale["lines"]
    if rounding == "TOTAL":
        by_rate: dict[Decimal, list[dict[str, Any]]] = {}
        for line in lines:
            by_rate.setdefault(line["tax_rate"], []).append(line)
        for same in by_rate.values():
            exact = [exact_tax(ln, inclusive) for ln in same]
            floors = [_cents(e, ROUND_DOWN) for e in exact]
            spare = int((_cents(sum(exact, ZERO)) - sum(floors, ZERO)) / CENT)
            order = sorted(range(len(same)), key=lambda i: exact[i] - floors[i], reverse=True)
            for rank, i in enumerate(order):
                same[i]["tax_amount"] = floors[i] + (CENT if rank < spare else ZERO)
    else:
        for line in lines:
            line["tax_amount"] = _cents(exact_tax(line, inclusive))
    sale["tax_rounding"] = rounding
    subtotal = sum((_cents(ln["quantity"] * ln["unit_price"]) for ln in lines), ZERO)
    discounts = sum((d["amount"] for ln in lines for d in ln["discounts"]), ZERO)
    discounts += sum((d["amount"] for d in sale["order_discounts"]), ZERO)
    tax = sum((ln["tax_amount"] for ln in lines), ZERO)
    sale.update(subtotal=subtotal, discount_total=discounts, tax_total=tax,
                total=subtotal - discounts + (ZERO if inclusive else tax))
    return sale
