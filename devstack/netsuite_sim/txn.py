"""Building blocks shared by the order-to-cash transaction validators.

Amounts that depend on other records (what is still open on an invoice, what a payment
has left unapplied, whether a sale was banked) are computed on demand from store indexes
that every write drops, never stored, so deleting or editing a linked record can never
leave a stale balance behind.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from contextvars import ContextVar
from decimal import Decimal
from functools import partial
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import (
    SimError,
    invalid_value,
    no_lines,
    required,
    user_error,
)
from tillbridge.devstack.netsuite_sim.pricing import price_items
from tillbridge.devstack.netsuite_sim.records import (
    check_names,
    check_ref,
    money,
    normalize_ref,
    to_decimal,
)
from tillbridge.devstack.netsuite_sim.store import Record, Store, now_utc

# Internal id of the record being updated while its validator runs, so balance checks
# leave the record's own previous version out of "what others already applied".
SELF_ID: ContextVar[str | None] = ContextVar("SELF_ID", default=None)

# Body fields every transaction accepts (2026.1 common body fields, reference §5.2).
COMMON_FIELDS = frozenset({
    "externalId", "tranDate", "tranId", "subsidiary", "location", "department", "class",
    "currency", "exchangeRate", "memo", "otherRefNum", "postingPeriod", "customForm",
    "toBeEmailed", "toBePrinted", "source", "createdFrom", "links", "id", "createdDate",
    "lastModifiedDate", "status", "subtotal", "taxTotal", "total",
})
READ_ONLY = ("subtotal", "taxTotal", "total", "status", "createdDate", "lastModifiedDate",
             "id", "links", "amountRemaining", "applied", "unapplied")
TOTAL_FIELDS = frozenset({"subtotal", "taxTotal", "total"})
APPLY_LINE_FIELDS = frozenset({"doc", "apply", "amount", "line", "links", "applyDate", "total",
                               "due", "refNum", "type"})
ZERO = Decimal(0)
FUNDS = ("Bank", "OthCurrAsset")  # where received money may land: bank or undeposited funds


def status(code: str, label: str) -> dict[str, str]:
    """Enum value as NetSuite renders it."""
    return {"id": code, "refName": label}


def start(body: dict[str, Any], known: frozenset[str], custom: str = "custbody") -> dict[str, Any]:
    """Refuse unknown body fields (PropertyNameValidation=error) and drop read-only ones."""
    check_names(body, known, "", custom)
    out = {k: v for k, v in body.items() if k not in READ_ONLY}
    out.setdefault("tranDate", now_utc().date().isoformat())
    return out


def require_customer(store: Store, out: dict[str, Any], key: str,
                     path: str | None = None) -> str:
    """``entity``/``customer`` must name an existing, active customer; returns its id."""
    path = path or key
    if out.get(key) is None:
        raise required("Customer", path)
    out[key] = normalize_ref(store, "customer", out[key], path)
    customer = store.customer(out[key]["id"])
    if customer is None or customer.fields.get("isInactive"):
        raise invalid_value(out[key]["id"], key, path)
    return str(out[key]["id"])


def optional_refs(store: Store, out: dict[str, Any], keys: Iterable[str]) -> None:
    """Check the usual optional header references when present."""
    tables = {"location": (store.locations, "location"),
              "subsidiary": (store.subsidiaries, "subsidiary"),
              "salesRep": (store.employees, "employee"),
              "paymentOption": (store.payment_methods, "paymentMethod"),
              "account": (store.accounts, "account")}
    for key in keys:
        if out.get(key) is not None:
            table, target = tables[key]
            check_ref(store, out, key, table, target, key)


def require_location(store: Store, out: dict[str, Any], key: str = "location") -> None:
    """The sandbox has "Make Locations Mandatory" on, as multi-store retailers do."""
    if out.get(key) is None:
        raise required("Location", key)
    check_ref(store, out, key, store.locations, "location", key)


def check_account(store: Store, holder: dict[str, Any], key: str, path: str,
                  types: Iterable[str] | None = None) -> dict[str, Any]:
    """An active GL account, optionally of one of ``types`` (e.g. Bank); returns the row."""
    check_ref(store, holder, key, store.accounts, "account", path)
    row = store.accounts[holder[key]["id"]]
    if types is not None and row.get("accttype") not in set(types):
        raise invalid_value(holder[key]["id"], path.rsplit(".", 1)[-1], path)
    return row


def lines_of(out: dict[str, Any], sublist: str, need: bool = True) -> list[Any]:
    """The request lines of ``sublist``; NetSuite's message when a required one is empty."""
    value = out.get(sublist)
    lines = value.get("items") if isinstance(value, dict) else None
    if not lines:
        if need:
            raise no_lines(sublist)
        return []
    if not isinstance(lines, list):
        raise SimError(400, "INVALID_CONTENT", "Error while accessing a resource. Invalid "
                       "sublist.", sublist)
    return lines


def request_lines(out: dict[str, Any], sublist: str, known: frozenset[str],
                  need: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    """``lines_of`` checked line by line: (error path, the line without ``links``)."""
    for index, raw in enumerate(lines_of(out, sublist, need)):
        base = f"{sublist}.items[{index}]"
        if not isinstance(raw, dict):
            raise invalid_value(raw, sublist, base)
        check_names(raw, known, f"{base}.", "custcol")
        yield base, {k: v for k, v in raw.items() if k != "links"}


def kept_lines(out: dict[str, Any], known: frozenset[str],
               build: Callable[[str, dict[str, Any]], dict[str, Any] | None]) -> None:
    """Set ``out["item"]`` to the request's item lines that ``build`` keeps (None: the line
    is not carried over); none kept is NetSuite's "no lines" refusal (fulfilment, receipt)."""
    kept = [ln for ln in (build(base, line) for base, line in request_lines(out, "item", known))
            if ln is not None]
    if not kept:
        raise no_lines("item")
    out["item"] = {"items": kept}


def priced_items(store: Store, out: dict[str, Any]) -> None:
    """Validate and price the ``item`` sublist as on a cash sale; set the body totals."""
    price_items(store, out, lines_of(out, "item"))


def positive(value: Any, path: str, label: str) -> Decimal:
    """A required amount greater than zero."""
    if value is None:
        raise required(label, path)
    amount = to_decimal(value, path)
    if amount <= 0:
        raise invalid_value(value, path.rsplit(".", 1)[-1], path)
    return amount


def apply_lines(store: Store, out: dict[str, Any], sublist: str, doc_types: set[str],
                customer_id: str, open_amount: Any, budget: Decimal | None = None) -> Decimal:
    """Validate an apply-type sublist keyed by ``doc``; returns the total applied.

    Each applied doc must be a transaction of ``doc_types`` for the same customer, and
    the amount may not exceed what is still open on it (``open_amount(store, record)``).
    A line without ``amount`` applies as much as is open, capped by what is left of
    ``budget`` (the payment or credit being applied), as NetSuite's auto-apply does.
    """
    total = ZERO
    kept: list[dict[str, Any]] = []
    for base, line in request_lines(out, sublist, APPLY_LINE_FIELDS, need=False):
        if line.get("doc") is None:
            raise required("Document", f"{base}.doc")
        line["doc"] = normalize_ref(store, "transaction", line["doc"], f"{base}.doc")
        doc = store.transaction(line["doc"]["id"])
        if doc is None or doc.type not in doc_types or owner(doc) != customer_id:
            raise invalid_value(line["doc"]["id"], "doc", f"{base}.doc")
        if line.get("apply") is False or line.get("amount") in (0, "0"):
            line["apply"], line["amount"] = False, 0.0  # unapply: kept, not counted
            kept.append(line)
            continue
        available = open_amount(store, doc)
        default = available if budget is None else max(ZERO, min(available, budget - total))
        amount = to_decimal(line.get("amount", default), f"{base}.amount")
        if available <= 0:
            raise user_error(f"Nothing is left to apply on document {doc.id}.", f"{base}.amount")
        if amount <= 0 or amount > available:
            raise user_error(f"The amount applied ({amount}) exceeds the amount due "
                             f"({available}).", f"{base}.amount")
        line["apply"], line["amount"] = True, money(amount)
        total += amount
        kept.append(line)
    if kept or sublist in out:
        out[sublist] = {"items": kept}
    return total


def check_from_lines(out: dict[str, Any], source: Record, allowed: Callable[[Any], Decimal],
                     message: str) -> None:
    """Each item line that names an ``orderLine`` of ``source`` (the order or RA it is
    created from) asks for no more than ``allowed(source line)``: NetSuite's check on a bill,
    a receipt or a credit made from another transaction."""
    by_line = {ln["line"]: ln for ln in source.fields["item"]["items"]}
    for index, ln in enumerate(out["item"]["items"]):
        key = ln.get("orderLine")
        if key is None:
            continue
        if key not in by_line:
            raise invalid_value(key, "orderLine", f"item.items[{index}].orderLine")
        if dec(ln.get("quantity")) > allowed(by_line[key]):
            raise user_error(message, f"item.items[{index}].quantity")


def owner(record: Record) -> str | None:
    """The customer a transaction belongs to (``entity`` or ``customer``)."""
    ref = record.fields.get("customer") or record.fields.get("entity")
    return None if not isinstance(ref, dict) else str(ref.get("id"))


# -- balances computed from the store ----------------------------------------------------

def applied_by_others(store: Store, doc_id: str, sources: dict[str, tuple[str, ...]]) -> Decimal:
    """Sum of applied amounts pointing at ``doc_id`` from ``{recordType: (sublists)}``."""
    me = SELF_ID.get()
    total = ZERO
    for record_type, sublists in sources.items():
        for name in sublists:
            applied = store.view(("applied", record_type, name), "transaction", record_type,
                                 partial(_applications, sublist=name))
            total += sum((amount for rid, amounts in applied.get(doc_id).items() if rid != me
                          for amount in amounts), ZERO)
    return total


def _applications(record: Record, sublist: str) -> list[tuple[Hashable, Decimal]]:
    """(applied doc id, amount) of each applied line of one sublist of the record."""
    return [(str((line.get("doc") or {}).get("id")), dec(line.get("amount")))
            for line in (record.fields.get(sublist) or {}).get("items", [])
            if line.get("apply", True)]


def own_applied(record: Record, sublist: str = "apply") -> Decimal:
    """What this record applies through its own apply sublist."""
    lines = (record.fields.get(sublist) or {}).get("items", [])
    return sum((Decimal(str(ln.get("amount") or 0)) for ln in lines if ln.get("apply")), ZERO)


def deposited_in(store: Store, tran_id: str) -> Record | None:
    """The bank deposit that already holds this payment, if any."""
    me = SELF_ID.get()
    holders = store.index("deposits", _deposits_by_receipt,
                          [("transaction", "deposit")]).get(tran_id, ())
    return next((dep for dep in holders if dep.id != me), None)


def _deposits_by_receipt(store: Store) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for dep in store.records("transaction", "deposit"):
        for line in (dep.fields.get("payment") or {}).get("items", []):
            if line.get("deposit", True):
                out.setdefault(str(line.get("id")), []).append(dep)
    return out


def dec(value: Any) -> Decimal:
    """Stored amounts are floats rounded to cents; read them back exactly."""
    return Decimal(str(value or 0))
