"""Each POS line's tax on the NetSuite record, so that NetSuite's ``taxTotal`` is the till's
tax and its ``total`` the till's total, to the cent (README "NetSuite" / "Tax").

Two models, chosen per subsidiary in the mappings' ``tax.subsidiaries``:

- ``legacy``: a ``taxCode`` on every taxed line; NetSuite computes each line's tax from the
  code's rate, rounded per line. Where that would not give the till's tax (a discount line
  rounded on its own, tax rounded on the receipt total, a VAT price), the line is sent as
  ``grossAmt`` (amount + tax), from which NetSuite 2026.1 backs the amount out with the
  code's rate; this module checks the back-out gives the intended amount before using it.
  When no line of a code can carry a rounding cent, a few cents of amount move between two
  of its lines (``shift_amounts``), so the record's subtotal, tax and total stay the till's.
- ``suitetax``: no line tax code; ``taxDetailsOverride: true`` and one ``taxDetails`` line
  per POS line carrying the till's own tax (``taxAmount``) on its net basis.

Line discounts are discounts before tax (their discount lines carry the line's tax code);
receipt-level discounts are after tax (no tax code), as the tills and ``rule_totals`` model
them. Pure functions; the NetSuite rounding rule they assume is ``ns_line_tax``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tillbridge.streams.refdata.mappings import TaxSetup, tax_setup

__all__ = ["TaxSetup", "tax_setup", "apply_tax", "net_amounts", "TaxGroup", "TaxLine"]

CENT = Decimal("0.01")
ZERO = Decimal(0)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def ns_line_tax(amount: Decimal, rate: Decimal) -> Decimal:
    """Legacy tax NetSuite books on a line of ``amount`` at ``rate`` percent: rounded per
    line, half away from zero (a negative discount line rounds like a positive one)."""
    return cents(amount * rate / 100)


def ns_gross_split(gross: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """(amount, tax) NetSuite 2026.1 derives from a line's ``grossAmt`` and tax code: the
    amount is backed out with the rate and rounded; the tax is the remainder."""
    amount = cents(gross * 100 / (100 + rate))
    return amount, gross - amount


@dataclass(slots=True)
class TaxLine:
    """One body line of a POS line's group: the item line, then its discount lines."""

    index: int  # position in the body's item list
    amount: Decimal  # net amount NetSuite should book
    tax: Decimal = ZERO  # tax NetSuite should book on it


@dataclass(slots=True)
class TaxGroup:
    """A POS line and the discount lines that discount it before tax."""

    code: str | None  # NetSuite tax code id
    rate: Decimal  # percent
    tax: Decimal  # the till's tax on the line
    lines: list[TaxLine] = field(default_factory=list)
    reference: str = ""  # SuiteTax taxDetailsReference

    @property
    def basis(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), ZERO)


def net_amounts(gross: Decimal, discounts: list[Decimal], tax: Decimal, rate: Decimal,
                inclusive: bool) -> list[Decimal]:
    """Net amount of the item line then each discount line. Tax-exclusive prices: as rung.
    Tax-inclusive (VAT): each backed out of its gross, the item line absorbing the cents
    so the group nets to the till's gross less discounts less tax exactly."""
    if not inclusive:
        return [gross] + [-d for d in discounts]
    nets = [-cents(d * 100 / (100 + rate)) for d in discounts]
    item = gross - sum(discounts, ZERO) - tax - sum(nets, ZERO)
    return [item] + nets


def _representable(amount: Decimal, tax: Decimal, rate: Decimal) -> bool:
    return ns_line_tax(amount, rate) == tax or ns_gross_split(amount + tax, rate) == (amount, tax)


def legacy_allocate(group_lines: list[TaxLine], rate: Decimal, target: Decimal) -> bool:
    """Spread ``target`` (the till's tax for lines at one rate) over the lines as NetSuite
    would book them: each starts at NetSuite's own per-line tax, and the cents the till's
    rounding differs by go one at a time to lines that can carry them (via ``grossAmt``).
    False when some cent fits no line (the caller sends NetSuite's own tax then)."""
    for ln in group_lines:
        ln.tax = ns_line_tax(ln.amount, rate)
    diff = target - sum((ln.tax for ln in group_lines), ZERO)
    step = CENT if diff > 0 else -CENT
    while diff != 0:
        for ln in group_lines:
            if _representable(ln.amount, ln.tax + step, rate):
                ln.tax += step
                diff -= step
                break
        else:
            return False
    return True


def shift_amounts(lines: list[TaxLine], rate: Decimal, target: Decimal,
                  most: int = 3) -> bool:
    """Last resort when no line can carry a rounding cent: move up to ``most`` cents of
    amount from one line of the code to another (the code's net stays the till's) until an
    allocation books the till's tax exactly. Line amounts then differ from the receipt's by
    those cents; the record's subtotal, tax and total do not. False (and NetSuite's own
    per-line tax) when no such move exists."""
    for cents_moved in range(1, most + 1):
        for sign in (1, -1):
            step = CENT * cents_moved * sign
            for give in lines:
                for take in lines:
                    if give is take:
                        continue
                    give.amount -= step
                    take.amount += step
                    if legacy_allocate(lines, rate, target):
                        return True
                    give.amount += step
                    take.amount -= step
    legacy_allocate(lines, rate, target)
    return False


def set_amount(body_line: dict[str, Any], amount: Decimal) -> None:
    """The line's net amount; its ``rate`` goes when it no longer multiplies out to it
    (a VAT line's net), since NetSuite recomputes amount from a given rate."""
    body_line["amount"] = amount
    rate = body_line.get("rate")
    if rate is not None and cents(Decimal(rate) * Decimal(body_line.get("quantity", 1))) != amount:
        body_line.pop("rate")


def legacy_body_line(body_line: dict[str, Any], line: TaxLine, code: str,
                     rate: Decimal) -> None:
    """Set the legacy tax fields: the code, and ``grossAmt`` when NetSuite's own per-line
    rounding of the amount would not give the tax wanted."""
    body_line["taxCode"] = {"id": code}
    if ns_line_tax(line.amount, rate) == line.tax:
        set_amount(body_line, line.amount)
        return
    for key in ("rate", "amount"):
        body_line.pop(key, None)
    body_line["grossAmt"] = line.amount + line.tax


def apply_legacy(items: list[dict[str, Any]], groups: list[TaxGroup]) -> None:
    """Legacy tax on the body lines: one allocation per tax code, over its groups."""
    by_code: dict[tuple[str | None, Decimal], list[TaxGroup]] = {}
    for group in groups:
        by_code.setdefault((group.code, group.rate), []).append(group)
    for (code, rate), same in by_code.items():
        if code is None:
            continue
        lines = [ln for g in same for ln in g.lines]
        target = sum((g.tax for g in same), ZERO)
        if not legacy_allocate(lines, rate, target):
            shift_amounts(lines, rate, target)
        for ln in lines:
            legacy_body_line(items[ln.index], ln, code, rate)


def apply_suitetax(body: dict[str, Any], items: list[dict[str, Any]], groups: list[TaxGroup],
                   setup: TaxSetup) -> None:
    """SuiteTax: the till's tax per POS line as ``taxDetails`` with ``taxDetailsOverride``;
    each line of the group (item and its discounts) names the detail's reference."""
    details: list[dict[str, Any]] = []
    for group in groups:
        for ln in group.lines:
            set_amount(items[ln.index], ln.amount)
            items[ln.index]["taxDetailsReference"] = group.reference
        detail: dict[str, Any] = {"taxDetailsReference": group.reference,
                                  "taxBasis": group.basis, "taxRate": group.rate,
                                  "taxAmount": group.tax}
        if group.code:
            detail["taxCode"] = {"id": group.code}
        if setup.tax_type:
            detail["taxType"] = {"id": setup.tax_type}
        details.append(detail)
    body["taxDetailsOverride"] = True
    body["taxDetails"] = {"items": details}


def apply_tax(body: dict[str, Any], groups: list[TaxGroup], setup: TaxSetup) -> None:
    """Put the groups' tax on ``body`` in the subsidiary's model."""
    items: list[dict[str, Any]] = body["item"]["items"]
    if setup.model == "suitetax":
        apply_suitetax(body, items, groups, setup)
    else:
        apply_legacy(items, groups)
