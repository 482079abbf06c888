"""Tax as the simulated account books it, per subsidiary (seed ``subsidiaries[].taxModel``).

- ``legacy``: an item line's ``taxCode`` (a ``salesTaxItem``) gives the rate; the tax is the
  line amount x rate, rounded per line half away from zero; a line sent as ``grossAmt`` has
  its amount backed out of the gross with the rate (NetSuite 2026.1, reference §5.3) and the
  tax is the remainder. Every non-discount item line needs a tax code; ``taxDetails`` is
  refused (it belongs to SuiteTax).
- ``suiteTax``: a line ``taxCode`` is refused; the tax is the ``taxDetails`` sublist's:
  with ``taxDetailsOverride`` the amounts as sent, otherwise ``taxBasis`` x the detail's
  code's rate. Every detail must name an item line's ``taxDetailsReference``.
- no ``taxModel`` (older seeds): legacy arithmetic without the required-code rule.

``taxTotal`` is the sum of the booked tax and ``total`` = subtotal + taxTotal, so a test
that reads a record back checks the books, not an echo of the body.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import SimError, invalid_value
from tillbridge.devstack.netsuite_sim.store import Store

CENT = Decimal("0.01")
LEGACY = "legacy"
SUITETAX = "suiteTax"


def _dec(value: Any, path: str) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError as exc:
        raise SimError(400, "INVALID_CONTENT", f"Invalid number: {value}", path) from exc


def tax_model(store: Store, out: dict[str, Any]) -> str | None:
    """The model of the transaction's subsidiary (body, else its location's)."""
    sub = out.get("subsidiary")
    sub_id = sub.get("id") if isinstance(sub, dict) else sub
    if sub_id is None:
        loc = out.get("location")
        loc_id = loc.get("id") if isinstance(loc, dict) else loc
        sub_id = (store.locations.get(str(loc_id)) or {}).get("subsidiary")
    row = store.subsidiaries.get(str(sub_id)) if sub_id is not None else None
    return (row or {}).get("taxModel")


def code_rate(store: Store, holder: dict[str, Any], key: str, path: str) -> Decimal:
    """Normalise ``holder[key]`` to ``{"id"}`` as a tax code (an active ``salesTaxItem``);
    its rate (percent)."""
    value = holder[key]
    rid = value.get("id") if isinstance(value, dict) else value
    row = store.tax_codes.get(str(rid)) if rid is not None else None
    if row is None or row.get("isinactive"):
        raise invalid_value(rid, path.rsplit(".", 1)[-1], path)
    holder[key] = {"id": str(rid)}
    return _dec(row.get("rate", 0), path)


def check_line(store: Store, model: str | None, line: dict[str, Any], base: str,
               is_discount: bool) -> None:
    """Refuse a line the subsidiary's tax model does not allow."""
    if model == SUITETAX and line.get("taxCode") is not None:
        raise SimError(400, "USER_ERROR", "You cannot set a tax code on a transaction line "
                       "of a subsidiary that uses SuiteTax; send the taxDetails sublist.",
                       f"{base}.taxCode")
    if model == LEGACY and not is_discount and line.get("taxCode") is None:
        raise SimError(400, "USER_ERROR", "Please enter value(s) for: Tax Code",
                       f"{base}.taxCode")


def line_tax(store: Store, line: dict[str, Any], base: str) -> tuple[dict[str, Any], Decimal]:
    """Legacy tax on a line with an amount: amount x the code's rate, rounded per line."""
    tax = Decimal(0)
    if line.get("taxCode") is not None:
        pct = code_rate(store, line, "taxCode", f"{base}.taxCode")
        tax = (_dec(line["amount"], base) * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        line["taxAmount"] = float(tax)
    return line, tax


def gross_line(store: Store, line: dict[str, Any], base: str,
               quantity: Decimal) -> tuple[dict[str, Any], Decimal]:
    """2026.1: a line's ``grossAmt`` wins; ``amount`` is backed out of it with the tax rate.

    Oracle's cashSale sample sends only ``grossAmt`` + ``taxCode`` (reference §5.3/§5.4);
    the tax is the remainder, so amount + tax always equals the gross the POS charged.
    """
    gross = _dec(line["grossAmt"], f"{base}.grossAmt")
    pct = Decimal(0)
    if line.get("taxCode") is not None:
        pct = code_rate(store, line, "taxCode", f"{base}.taxCode")
    amount = (gross * 100 / (100 + pct)).quantize(CENT, rounding=ROUND_HALF_UP)
    tax = gross - amount
    line["quantity"] = float(quantity)
    line["rate"] = float(amount / quantity) if quantity else 0.0
    line["amount"] = float(amount)
    line["grossAmt"] = float(gross)
    if line.get("taxCode") is not None:
        line["taxAmount"] = float(tax)
    return line, tax


def details_tax(store: Store, out: dict[str, Any], model: str | None,
                lines: list[dict[str, Any]]) -> Decimal:
    """The ``taxDetails`` sublist's tax (SuiteTax); refused on a legacy subsidiary."""
    sublist = out.get("taxDetails")
    details = sublist.get("items") if isinstance(sublist, dict) else None
    if not details:
        out.pop("taxDetails", None)
        return Decimal(0)
    if model == LEGACY:
        raise SimError(400, "USER_ERROR", "The taxDetails sublist is only available with the "
                       "SuiteTax feature.", "taxDetails")
    refs = {ln.get("taxDetailsReference") for ln in lines} - {None}
    override = bool(out.get("taxDetailsOverride"))
    total = Decimal(0)
    kept: list[dict[str, Any]] = []
    for index, raw in enumerate(details):
        base = f"taxDetails.items[{index}]"
        detail = {k: v for k, v in dict(raw).items() if k != "links"}
        if detail.get("taxDetailsReference") not in refs:
            raise SimError(400, "USER_ERROR", "Invalid taxDetailsReference: no transaction line "
                           "has it.", f"{base}.taxDetailsReference")
        pct = (code_rate(store, detail, "taxCode", f"{base}.taxCode")
               if detail.get("taxCode") is not None else _dec(detail.get("taxRate", 0), base))
        basis = _dec(detail.get("taxBasis", 0), f"{base}.taxBasis")
        if override and detail.get("taxAmount") is not None:
            amount = _dec(detail["taxAmount"], f"{base}.taxAmount").quantize(CENT)
        else:
            amount = (basis * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        detail.update(taxBasis=float(basis), taxRate=float(pct), taxAmount=float(amount))
        total += amount
        kept.append(detail)
    out["taxDetails"] = {"items": kept}
    out["taxDetailsOverride"] = override
    return total
