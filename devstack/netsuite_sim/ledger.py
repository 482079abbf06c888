"""Non-customer postings: inventory adjustments and journal entries.

Both are what a POS integration uses for shrinkage, stock counts and daily summary
postings; both are refused unless they would post cleanly (an adjustment account and
a location per line; journal debits equal to credits).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import invalid_value, required, user_error
from tillbridge.devstack.netsuite_sim.records import check_ref, money, to_decimal
from tillbridge.devstack.netsuite_sim.sales import INVENTORY_TYPES
from tillbridge.devstack.netsuite_sim.store import Store
from tillbridge.devstack.netsuite_sim.txn import (
    COMMON_FIELDS,
    ZERO,
    check_account,
    optional_refs,
    request_lines,
    require_customer,
    start,
)

ADJUSTMENT_FIELDS = COMMON_FIELDS | {"account", "adjLocation", "inventory", "customer",
                                     "estimatedTotalValue"}
_ADJ_LINE = frozenset({"item", "location", "adjustQtyBy", "unitCost", "description", "memo",
                       "line", "links", "inventoryDetail", "department", "class", "units",
                       "binNumbers", "serialNumbers"})
JOURNAL_FIELDS = COMMON_FIELDS | {"line", "approved", "reversalDate", "reversalDefer",
                                  "isBookSpecific", "accountingBook"}
_JE_LINE = frozenset({"account", "debit", "credit", "memo", "entity", "location", "department",
                      "class", "line", "links", "eliminate"})
_NOT_ADJUSTMENT = ("Bank", "AcctRec", "AcctPay")  # NetSuite filters these out of the field


def validate_inventory_adjustment(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Adjustment account, inventory items, a location per line and a non-zero quantity."""
    out = start(body, ADJUSTMENT_FIELDS)
    if out.get("account") is None:
        raise required("Adjustment Account", "account")
    row = check_account(store, out, "account", "account")
    if row.get("accttype") in _NOT_ADJUSTMENT:
        raise invalid_value(out["account"]["id"], "account", "account")
    optional_refs(store, out, ("subsidiary",))
    if out.get("adjLocation") is not None:
        check_ref(store, out, "adjLocation", store.locations, "location", "adjLocation")
    lines = [_adjust_line(store, out, base, line)
             for base, line in request_lines(out, "inventory", _ADJ_LINE)]
    out["inventory"] = {"items": lines}
    out["estimatedTotalValue"] = money(sum(
        (Decimal(str(ln["adjustQtyBy"])) * Decimal(str(ln.get("unitCost", 0))) for ln in lines),
        ZERO))
    return out


def _adjust_line(store: Store, out: dict[str, Any], base: str,
                 line: dict[str, Any]) -> dict[str, Any]:
    if line.get("item") is None:
        raise required("Item", f"{base}.item")
    check_ref(store, line, "item", store.items, "item", f"{base}.item")
    if store.items[line["item"]["id"]].get("itemtype") not in INVENTORY_TYPES:
        raise invalid_value(line["item"]["id"], "item", f"{base}.item")
    if line.get("location") is None:
        if out.get("adjLocation") is None:
            raise required("Location", f"{base}.location")
        line["location"] = dict(out["adjLocation"])
    check_ref(store, line, "location", store.locations, "location", f"{base}.location")
    if line.get("adjustQtyBy") is None:
        raise required("Adjust Qty. By", f"{base}.adjustQtyBy")
    qty = to_decimal(line["adjustQtyBy"], f"{base}.adjustQtyBy")
    if qty == 0:
        raise invalid_value(line["adjustQtyBy"], "adjustQtyBy", f"{base}.adjustQtyBy")
    line["adjustQtyBy"] = float(qty)
    if line.get("unitCost") is not None:
        cost = to_decimal(line["unitCost"], f"{base}.unitCost")
        if cost < 0:
            raise invalid_value(line["unitCost"], "unitCost", f"{base}.unitCost")
        line["unitCost"] = float(cost)
    return line


def validate_journal_entry(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Subsidiary (OneWorld), one debit or credit per line, and debits equal to credits."""
    out = start(body, JOURNAL_FIELDS)
    if out.get("subsidiary") is None:
        raise required("Subsidiary", "subsidiary")
    optional_refs(store, out, ("subsidiary",))
    debits = credits = ZERO
    lines = []
    for base, line in request_lines(out, "line", _JE_LINE):
        debit, credit = _journal_line(store, base, line)
        debits += debit
        credits += credit
        lines.append(line)
    if debits != credits:
        # Wording of NetSuite's out-of-balance refusal over REST is unconfirmed.
        raise user_error(f"The transaction is not in balance: debits {money(debits)}, "
                         f"credits {money(credits)}.", "line")
    out["line"] = {"items": lines}
    out["total"] = money(debits)
    return out


def _journal_line(store: Store, base: str, line: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """Check and normalise one line in place; returns its (debit, credit)."""
    if line.get("account") is None:
        raise required("Account", f"{base}.account")
    row = check_account(store, line, "account", f"{base}.account")
    sides = [k for k in ("debit", "credit") if line.get(k) not in (None, 0, "0")]
    if len(sides) != 1:
        raise user_error("Each journal line needs either a debit or a credit amount.", base)
    amount = to_decimal(line[sides[0]], f"{base}.{sides[0]}")
    if amount <= 0:
        raise invalid_value(line[sides[0]], sides[0], f"{base}.{sides[0]}")
    line[sides[0]] = money(amount)
    if line.get("entity") is not None:
        require_customer(store, line, "entity", f"{base}.entity")
    elif row.get("accttype") == "AcctRec":
        raise required("Name", f"{base}.entity")  # A/R lines must name the customer
    if line.get("location") is not None:
        check_ref(store, line, "location", store.locations, "location", f"{base}.location")
    debit = amount if sides[0] == "debit" else ZERO
    return debit, amount - debit
