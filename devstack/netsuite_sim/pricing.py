"""Item lines of a transaction as NetSuite prices them: each line validated (item, quantity,
rate, amount, discount lines, gift certificate fields, tax per the subsidiary's model) and
the body's subtotal, taxTotal and total set from them. Moved out of ``records.py``."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim import tax
from tillbridge.devstack.netsuite_sim.errors import SimError, invalid_value, no_lines
from tillbridge.devstack.netsuite_sim.records import (
    _COMPUTED,
    CASH_SALE_FIELDS,
    CENT,
    LINE_FIELDS,
    RecordType,
    check_names,
    check_ref,
    check_transaction,
    money,
    normalize_ref,
    to_decimal,
    validate_customer,
)
from tillbridge.devstack.netsuite_sim.store import Store, now_utc


def validate_cash_sale(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Checks a real account makes on a cash sale; computes line amounts and totals."""
    check_names(body, CASH_SALE_FIELDS, "", "custbody")
    out = {k: v for k, v in body.items() if k not in _COMPUTED}
    if out.get("entity") is None:
        raise SimError(400, "USER_ERROR", "Please enter value(s) for: Customer", "entity")
    out["entity"] = normalize_ref(store, "customer", out["entity"], "entity")
    if store.customer(out["entity"]["id"]) is None:
        raise invalid_value(out["entity"]["id"], "entity", "entity")
    # The sandbox has "Make Locations Mandatory" on, as most multi-store retailers do.
    if out.get("location") is None:
        raise SimError(400, "USER_ERROR", "Please enter value(s) for: Location", "location")
    check_ref(store, out, "location", store.locations, "location", "location")
    if out.get("subsidiary") is not None:
        check_ref(store, out, "subsidiary", store.subsidiaries, "subsidiary", "subsidiary")
    if out.get("paymentOption") is not None:
        check_ref(store, out, "paymentOption", store.payment_methods, "paymentMethod",
                   "paymentOption")
    if out.get("salesRep") is not None:
        check_ref(store, out, "salesRep", store.employees, "employee", "salesRep")
    if out.get("createdFrom") is not None:
        check_transaction(store, out, "createdFrom", {"salesOrder"})
    sublist = out.get("item") or {}
    lines = sublist.get("items") if isinstance(sublist, dict) else None
    if not lines:
        raise no_lines("item")
    out.setdefault("tranDate", now_utc().date().isoformat())
    price_items(store, out, lines)
    out["status"] = {"id": "B", "refName": "Not Deposited"}
    return out


def price_items(store: Store, out: dict[str, Any], lines: list[Any]) -> None:
    """Validate and price item lines into ``out["item"]``; set the body totals."""
    subtotal = tax_total = Decimal(0)
    new_lines: list[dict[str, Any]] = []
    model = tax.tax_model(store, out)
    for index, raw in enumerate(lines):
        previous = Decimal(str(new_lines[-1]["amount"])) if new_lines else Decimal(0)
        line, line_tax = validate_line(store, raw, index, previous, model)
        subtotal += Decimal(str(line["amount"]))
        tax_total += line_tax
        new_lines.append(line)
    tax_total += tax.details_tax(store, out, model, new_lines)
    out["item"] = {"items": new_lines}
    out["subtotal"] = money(subtotal)
    out["taxTotal"] = money(tax_total)
    out["total"] = money(subtotal + tax_total)


def validate_line(store: Store, raw: Any, index: int, previous: Decimal,
                  model: str | None = None) -> tuple[dict[str, Any], Decimal]:
    base = f"item.items[{index}]"
    if not isinstance(raw, dict):
        raise SimError(400, "INVALID_CONTENT", "Error while accessing a resource. "
                       "Invalid sublist line.", base)
    check_names(raw, LINE_FIELDS, f"{base}.", "custcol")
    line = {k: v for k, v in raw.items() if k != "links"}
    if line.get("item") is None:
        raise SimError(400, "USER_ERROR", "Please enter value(s) for: Item", f"{base}.item")
    line["item"] = normalize_ref(store, "item", line["item"], f"{base}.item")
    item = store.items.get(line["item"]["id"])
    if item is None or item.get("isinactive"):
        raise invalid_value(line["item"]["id"], "item", f"{base}.item")
    tax.check_line(store, model, line, base, item.get("itemtype") == "Discount")
    if line.get("location") is not None:
        check_ref(store, line, "location", store.locations, "location", f"{base}.location")
    quantity = to_decimal(line.get("quantity", 1), f"{base}.quantity")
    rate_text = str(line.get("rate", ""))
    if item.get("itemtype") == "Discount" and rate_text.endswith("%"):
        # A percentage discount line applies to the line just above it.
        pct = to_decimal(rate_text[:-1], f"{base}.rate")
        amount = (previous * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        line.pop("quantity", None)
        line["rate"] = rate_text
        line["amount"] = money(amount)
        return tax.line_tax(store, line, base)
    if line.get("grossAmt") is not None:
        return tax.gross_line(store, line, base, quantity)
    if line.get("rate") is not None:
        rate = to_decimal(line["rate"], f"{base}.rate")
        amount = rate * quantity  # rate given: amount is always quantity x rate
    elif line.get("amount") is not None:
        amount = to_decimal(line["amount"], f"{base}.amount")
        rate = amount / quantity if quantity else Decimal(0)
    else:
        rate = to_decimal(item.get("basePrice", 0), f"{base}.rate")
        amount = rate * quantity
    line["quantity"] = float(quantity)
    line["rate"] = float(rate)
    line["amount"] = money(amount)
    return tax.line_tax(store, line, base)


CORE_TYPES: tuple[RecordType, ...] = (
    RecordType("customer", "entity", validate_customer, refs={"subsidiary": "subsidiary"}),
    RecordType(
        "cashSale", "transaction", validate_cash_sale,
        refs={"entity": "customer", "location": "location", "subsidiary": "subsidiary",
              "paymentOption": "paymentMethod", "salesRep": "employee",
              "createdFrom": "salesOrder", "account": "account"},
        line_refs={"item": "item", "location": "location", "taxCode": "salesTaxItem"},
        tran_type="CashSale", known_fields=CASH_SALE_FIELDS,
    ),
)
