"""Record types the simulator serves: group, references, validation and GET rendering.

Add a record type by listing a ``RecordType`` in ``catalog.RECORD_TYPES``; the routes,
store, external-id rules and SuiteQL ``transaction`` table pick it up generically. The
helpers here (reference checks, item-line pricing) are shared by every transaction type.

Item-line validation and pricing live next to ``tax.py`` in ``pricing.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import SimError, invalid_value
from tillbridge.devstack.netsuite_sim.store import Record, Store

Validator = Callable[[Store, dict[str, Any]], dict[str, Any]]
Deriver = Callable[[Store, Record], dict[str, Any]]
CENT = Decimal("0.01")
GIFT_LINE_FIELDS = ("giftCertFrom", "giftCertMessage", "giftCertNumber",
                    "giftCertRecipientEmail", "giftCertRecipientName")


@dataclass(frozen=True)
class RecordType:
    """How one REST record type behaves in the sim."""

    name: str  # canonical path name, e.g. "cashSale"
    group: str  # "transaction" | "entity": shares internal ids and external ids
    validate: Validator
    refs: dict[str, str] = field(default_factory=dict)  # body field -> referenced type
    line_refs: dict[str, str] = field(default_factory=dict)  # line field -> referenced type
    tran_type: str | None = None  # SuiteQL transaction.type, e.g. "CashSale"
    known_fields: frozenset[str] | None = None  # None = accept any field name
    # Fields computed from other records at read time (status, amountRemaining, ...):
    # stored fields in, fields to render out. Derived, never stored, so deletes and
    # updates of linked records can't leave them stale.
    derive: Deriver | None = None


# -- references -------------------------------------------------------------------------

def ref_id(value: Any) -> str | None:
    """Id of a reference given as ``{"id": ..}``, a bare id, or ``None``."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
        return None if value is None else str(value)
    return str(value)


def normalize_ref(store: Store, target: str, value: Any, path: str) -> dict[str, str] | None:
    """Turn any accepted reference form into ``{"id": "<str>"}``; resolves ``externalId``."""
    if value is None:
        return None
    if isinstance(value, dict) and "id" not in value and "externalId" in value:
        group = "entity" if target == "customer" else \
            "transaction" if target in TRANSACTION_TARGETS else None
        record = store.by_external_id(group, str(value["externalId"])) if group else None
        if record is None:
            raise invalid_value(value["externalId"], path.rsplit(".", 1)[-1], path)
        return {"id": record.id}
    rid = ref_id(value)
    if rid is None:
        raise invalid_value(value, path.rsplit(".", 1)[-1], path)
    return {"id": rid}


# Reference targets that are transactions (resolved in the transaction group).
TRANSACTION_TARGETS = frozenset({
    "transaction", "salesOrder", "invoice", "cashSale", "customerPayment", "customerDeposit",
    "creditMemo", "cashRefund", "customerRefund", "returnAuthorization", "itemFulfillment",
    "itemReceipt",
})
_TRAN_LABELS = {
    "salesOrder": "Sales Order", "invoice": "Invoice", "cashSale": "Cash Sale",
    "customerPayment": "Payment", "customerDeposit": "Customer Deposit",
    "creditMemo": "Credit Memo", "cashRefund": "Cash Refund", "customerRefund": "Customer Refund",
    "returnAuthorization": "Return Authorization", "itemFulfillment": "Item Fulfillment",
    "itemReceipt": "Item Receipt",
    "inventoryAdjustment": "Inventory Adjustment", "deposit": "Deposit",
    "journalEntry": "Journal",
}


def ref_name(store: Store, target: str, rid: str) -> str | None:
    """Display name NetSuite would put in ``refName``."""
    if target in TRANSACTION_TARGETS:
        tran = store.transaction(rid)
        if tran is None:
            return None
        return f"{_TRAN_LABELS.get(tran.type, tran.type)} #{tran.fields.get('tranId', rid)}"
    if target == "customer":
        cust = store.customer(rid)
        if cust is None:
            return None
        f = cust.fields
        return f.get("entityId") or f.get("companyName") or \
            " ".join(x for x in (f.get("firstName"), f.get("lastName")) if x) or None
    table = {"item": store.items, "location": store.locations,
             "paymentMethod": store.payment_methods, "salesTaxItem": store.tax_codes,
             "subsidiary": store.subsidiaries, "employee": store.employees,
             "account": store.accounts}.get(target)
    row = table.get(rid) if table is not None else None
    if row is None:
        return None
    return row.get("itemid") or row.get("name") or row.get("entityid")


# -- amounts ----------------------------------------------------------------------------

def to_decimal(value: Any, path: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise invalid_value(value, path.rsplit(".", 1)[-1], path) from None
    if not result.is_finite():
        raise invalid_value(value, path.rsplit(".", 1)[-1], path)
    return result


def money(value: Decimal) -> float:
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


# -- customer ---------------------------------------------------------------------------

def validate_customer(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Entity checks kept minimal: a name of some kind, and a real subsidiary if given."""
    out = dict(body)
    if "subsidiary" in out and out["subsidiary"] is not None:
        out["subsidiary"] = normalize_ref(store, "subsidiary", out["subsidiary"], "subsidiary")
        if out["subsidiary"]["id"] not in store.subsidiaries:
            raise invalid_value(out["subsidiary"]["id"], "subsidiary", "subsidiary")
    names = ("entityId", "companyName", "firstName", "lastName")
    if not any(out.get(n) for n in names):
        raise SimError(400, "USER_ERROR", "Please enter value(s) for: Name")
    if not out.get("entityId"):
        out["entityId"] = out.get("companyName") or \
            " ".join(str(out[n]) for n in ("firstName", "lastName") if out.get(n))
    return out


# -- cashSale ---------------------------------------------------------------------------

CASH_SALE_FIELDS = frozenset({
    "externalId", "entity", "tranDate", "tranId", "subsidiary", "location", "department",
    "class", "currency", "exchangeRate", "memo", "otherRefNum", "postingPeriod", "account",
    "undepFunds", "paymentOption", "paymentOperation", "handlingMode",
    "paymentProcessingProfile", "checkNumber", "createdFrom", "discountItem", "discountRate",
    "promoCode", "giftCertRedemption", "taxDetails", "taxDetailsOverride", "taxItem", "taxRate",
    "isTaxable", "toBeEmailed", "toBePrinted", "customForm", "salesRep", "item", "promotions",
    "source", "giftCertApplied",
    # computed / read-only: accepted on input and recomputed
    "subtotal", "taxTotal", "total", "status", "createdDate", "lastModifiedDate", "id", "links",
})
LINE_FIELDS = frozenset({
    "item", "quantity", "rate", "amount", "grossAmt", "taxCode", "taxAmount", "tax1Amt",
    "taxRate1", "isTaxable", "location", "department", "class", "description", "price",
    "units", "line", "inventoryDetail", "serialNumbers", "options", "links",
    "orderLine", "orderDoc",  # set by transforms: the source transaction's line
    "isClosed",  # sales order / RA: a closed line is never fulfilled (reference §5.3/§5.4)
    "taxDetailsReference",  # SuiteTax: the line's taxDetails lines
    *GIFT_LINE_FIELDS,  # a gift certificate item sold (reference §5.3)
})
_COMPUTED = ("subtotal", "taxTotal", "total", "status", "createdDate", "lastModifiedDate",
             "id", "links")


def check_names(body: dict[str, Any], known: frozenset[str], prefix: str, custom: str) -> None:
    # The sim enforces X-NetSuite-PropertyNameValidation=error semantics (Oracle's default is
    # "warning", which silently drops the field): a misspelt or removed field such as
    # cashSale.paymentMethod must fail loudly in tests instead of posting a payment-less sale.
    # Case alone is no misspelling: Oracle's own samples send "exchangerate", "isclosed",
    # "discountitem" (reference §5.4), so such a name is renamed to its canonical casing.
    lower: dict[str, str] | None = None
    for name in list(body):
        if name in known or name.startswith(custom):
            continue
        lower = lower or {k.lower(): k for k in known}
        canonical = lower.get(name.lower())
        if canonical is None:
            raise SimError(400, "INVALID_CONTENT",
                           f"Error while accessing a resource. Invalid field name: {name}",
                           f"{prefix}{name}")
        body[canonical] = body.pop(name)


def check_ref(store: Store, holder: dict[str, Any], key: str, table: dict[str, Any],
               target: str, path: str) -> None:
    """Normalise ``holder[key]`` and refuse ids missing (or inactive) in ``table``."""
    holder[key] = normalize_ref(store, target, holder[key], path)
    row = table.get(holder[key]["id"])
    if row is None or (isinstance(row, dict) and row.get("isinactive")):
        raise invalid_value(holder[key]["id"], path.rsplit(".", 1)[-1], path)


def check_transaction(store: Store, holder: dict[str, Any], key: str, types: set[str],
                      path: str | None = None) -> Record:
    """Normalise a transaction reference and return the record; wrong type = invalid value."""
    path = path or key
    holder[key] = normalize_ref(store, "transaction", holder[key], path)
    record = store.transaction(holder[key]["id"])
    if record is None or record.type not in types:
        raise invalid_value(holder[key]["id"], path.rsplit(".", 1)[-1], path)
    return record


# -- sublist merge (PATCH / PUT-update) ---------------------------------------------------

def merge(old: dict[str, Any], patch: dict[str, Any], replace: set[str]) -> dict[str, Any]:
    """Apply NetSuite's update rules: omitted fields stay, item lines keyed by ``line``.

    Without ``replace`` unmatched request lines are appended after the existing lines;
    with ``?replace=item`` unmatched existing lines are dropped. ``None`` empties a sublist.
    """
    out = dict(old)
    for key, value in patch.items():
        old_value = old.get(key)
        if not (isinstance(old_value, dict) and "items" in old_value):
            out[key] = value
            continue
        new_lines = value.get("items") if isinstance(value, dict) else None
        if new_lines is None:
            out[key] = {"items": []}
            continue
        existing = {ln.get("line"): ln for ln in old_value["items"]}
        kept: list[dict[str, Any]] = [] if key in replace else list(old_value["items"])
        for ln in new_lines:
            if isinstance(ln, dict) and ln.get("line") in existing:
                merged = {**existing[ln["line"]], **ln}
                if key in replace:
                    kept.append(merged)
                else:
                    kept[kept.index(existing[ln["line"]])] = merged
            else:
                kept.append({k: v for k, v in ln.items() if k != "line"}
                            if isinstance(ln, dict) else ln)
        out[key] = {"items": kept}
    return out


def number_lines(fields: dict[str, Any]) -> None:
    """Give new sublist lines a 1-based ``line`` key, keeping existing keys stable."""
    for value in fields.values():
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            used = [ln["line"] for ln in value["items"] if isinstance(ln.get("line"), int)]
            nxt = max(used, default=0) + 1
            for ln in value["items"]:
                if not isinstance(ln.get("line"), int):
                    ln["line"] = nxt
                    nxt += 1


# -- GET rendering ------------------------------------------------------------------------

def render(store: Store, rt: RecordType, record: Record, rest_base: str,
           expand: bool) -> dict[str, Any]:
    """NetSuite GET shape: refs as ``{links,id,refName}``, sublists link-only unless expanded."""
    self_href = f"{rest_base}/record/v1/{rt.name}/{record.id}"
    out: dict[str, Any] = {"links": [{"rel": "self", "href": self_href}], "id": record.id}
    fields = rt.derive(store, record) if rt.derive else record.fields
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(value.get("items"), list):
            sub_href = f"{self_href}/{key}"
            if expand:
                out[key] = render_sublist(store, rt, value["items"], sub_href)
            else:
                out[key] = {"links": [{"rel": "self", "href": sub_href}]}
        elif key in rt.refs and isinstance(value, dict):
            out[key] = render_ref(store, rt.refs[key], value, rest_base)
        else:
            out[key] = value
    out["createdDate"] = record.created.strftime("%Y-%m-%dT%H:%M:%SZ")
    out["lastModifiedDate"] = record.modified.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out


def render_sublist(store: Store, rt: RecordType, lines: list[dict[str, Any]],
                   href: str) -> dict[str, Any]:
    """Expanded sublist: the collection shape with each line's refs rendered."""
    rest_base = href.split("/record/v1/", 1)[0]
    items = []
    for ln in lines:
        row: dict[str, Any] = {"links": [{"rel": "self", "href": f"{href}/{ln.get('line')}"}]}
        for key, value in ln.items():
            if key in rt.line_refs and isinstance(value, dict) and "id" in value:
                row[key] = render_ref(store, rt.line_refs[key], value, rest_base)
            else:
                row[key] = value
        items.append(row)
    return {"links": [{"rel": "self", "href": href}], "count": len(items), "hasMore": False,
            "items": items, "offset": 0, "totalResults": len(items)}


def render_ref(store: Store, target: str, value: dict[str, Any], rest_base: str) -> dict[str, Any]:
    """``{links, id, refName}``; a transaction link names the record's real type."""
    rid = str(value.get("id"))
    if target in TRANSACTION_TARGETS:
        tran = store.transaction(rid)
        target = tran.type if tran is not None else target
    out: dict[str, Any] = {
        "links": [{"rel": "self", "href": f"{rest_base}/record/v1/{target}/{rid}"}], "id": rid,
    }
    name = ref_name(store, target, rid)
    if name is not None:
        out["refName"] = name
    return out
