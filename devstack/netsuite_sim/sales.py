"""Item-bearing sales transactions: sales order, invoice, fulfillment, returns and credits.

All of them use ``entity`` for the customer and an ``item`` sublist priced like a cash
sale. Order progress (fulfilled, billed, refunded) is derived from the records created
from the order, never stored on it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import (
    SimError,
    invalid_value,
    required,
    user_error,
)
from tillbridge.devstack.netsuite_sim.records import check_ref, check_transaction, to_decimal
from tillbridge.devstack.netsuite_sim.store import Record, Store
from tillbridge.devstack.netsuite_sim.txn import (
    COMMON_FIELDS,
    FUNDS,
    SELF_ID,
    ZERO,
    applied_by_others,
    apply_lines,
    check_account,
    check_from_lines,
    dec,
    kept_lines,
    optional_refs,
    own_applied,
    owner,
    priced_items,
    require_customer,
    require_location,
    start,
    status,
)

SALES_FIELDS = COMMON_FIELDS | {
    "entity", "item", "salesRep", "discountItem", "discountRate", "promoCode", "promotions",
    "taxDetails", "taxDetailsOverride", "isTaxable", "taxItem", "taxRate", "shipDate",
    "shipMethod", "shippingAddress", "billingAddress", "account", "paymentOption",
}
ORDER_FIELDS = SALES_FIELDS | {"orderStatus"}
INVOICE_FIELDS = SALES_FIELDS | {"giftCertRedemption", "giftCertApplied"}
CREDIT_FIELDS = SALES_FIELDS | {"apply"}
REFUND_FIELDS = SALES_FIELDS | {"paymentOperation", "handlingMode", "paymentProcessingProfile"}
FULFILL_FIELDS = COMMON_FIELDS | {"entity", "item", "inventoryLocation", "shipStatus",
                                  "shipMethod", "shippingAddress"}
FULFILL_LINE_FIELDS = frozenset({"orderLine", "item", "location", "quantity", "itemreceive",
                                 "inventoryDetail", "line", "links", "description"})
_APPROVAL = {"A": "Pending Approval", "B": "Pending Fulfillment", "C": "Cancelled"}
_RA_APPROVAL = {"A": "Pending Approval", "B": "Pending Receipt", "C": "Cancelled"}
INVENTORY_TYPES = frozenset({"InvtPart", "Assembly", "Kit"})


def not_initializable(target: str, source_id: str) -> SimError:
    # SuiteScript reports this as INVALID_INITIALIZE_REF with this text; which code REST
    # puts in o:errorDetails is unconfirmed, USER_ERROR is REST's business-rule code.
    return user_error(f"You can not initialize {target.lower()}: invalid reference {source_id}.")


def _approval(out: dict[str, Any], labels: dict[str, str]) -> None:
    # Oracle: POST with orderStatus "B" creates the order approved, so the default is "A".
    value = out.get("orderStatus", "A")
    code = value.get("id") if isinstance(value, dict) else value
    if code not in labels:
        raise invalid_value(code, "orderStatus", "orderStatus")
    out["orderStatus"] = status(str(code), labels[str(code)])


def is_approved(order: Record) -> bool:
    """Approved orders/RAs are past "Pending Approval" and not cancelled."""
    return (order.fields.get("orderStatus") or {}).get("id") == "B"


def _sale(store: Store, body: dict[str, Any], known: frozenset[str],
          refs: tuple[str, ...] = ("subsidiary", "salesRep")) -> tuple[dict[str, Any], str]:
    """The header every sales transaction checks first: customer, location, references."""
    out = start(body, known)
    customer = require_customer(store, out, "entity")
    require_location(store, out)
    optional_refs(store, out, refs)
    return out, customer


def _same_customer(source: Record, customer_id: str, key: str) -> None:
    if owner(source) != customer_id:
        raise invalid_value(source.id, key, key)


# -- sales order ---------------------------------------------------------------------------

def validate_sales_order(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Customer, location and active items required; prices and totals computed."""
    out, _ = _sale(store, body, ORDER_FIELDS, ("subsidiary", "salesRep", "paymentOption"))
    _approval(out, _APPROVAL)
    priced_items(store, out)
    return out


def line_progress(store: Store, source: Record, base: str,
                  kinds: tuple[tuple[str, tuple[str, ...]], ...]
                  ) -> dict[int, dict[str, Decimal]]:
    """Per line of ``source``: its own quantity (as ``base``) and, per kind, the quantities
    of the records of those types created from it (the record being saved left out)."""
    me = SELF_ID.get()
    progress = {ln["line"]: {base: dec(ln.get("quantity")), **dict.fromkeys(
        (k for k, _ in kinds), ZERO)} for ln in source.fields["item"]["items"]}
    for kind, types in kinds:
        for record_type in types:
            for rec in store.created_from(source.id, record_type):
                if rec.id == me:
                    continue
                for ln in rec.fields.get("item", {}).get("items", []):
                    if ln.get("orderLine") in progress:
                        progress[ln["orderLine"]][kind] += dec(ln.get("quantity"))
    return progress


def order_progress(store: Store, order: Record) -> dict[int, dict[str, Decimal]]:
    """Per order line: ordered, fulfilled and billed quantities (from linked records)."""
    return line_progress(store, order, "ordered", (("fulfilled", ("itemFulfillment",)),
                                                   ("billed", ("cashSale", "invoice"))))


def billable(store: Store, order: Record, line: dict[str, Any],
             progress: dict[int, dict[str, Decimal]]) -> Decimal:
    """Inventory lines bill what was fulfilled; other lines bill what was ordered."""
    p = progress[line["line"]]
    item = store.items.get(str((line.get("item") or {}).get("id")), {})
    base = p["fulfilled"] if item.get("itemtype") in INVENTORY_TYPES else p["ordered"]
    return max(ZERO, base - p["billed"])


def derive_sales_order(store: Store, order: Record) -> dict[str, Any]:
    """Adds per-line quantityFulfilled/quantityBilled and the order status."""
    fields = dict(order.fields)
    progress = order_progress(store, order)
    lines = []
    for ln in order.fields["item"]["items"]:
        p = progress[ln["line"]]
        lines.append({**ln, "quantityFulfilled": float(p["fulfilled"]),
                      "quantityBilled": float(p["billed"])})
    fields["item"] = {"items": lines}
    code = fields["orderStatus"]["id"]
    closed = {ln["line"] for ln in order.fields["item"]["items"] if ln.get("isClosed")}
    if code == "B" and closed == set(progress) and not any(
            p["fulfilled"] > 0 for p in progress.values()):
        fields["status"] = status("H", "Closed")
    elif code == "B":
        # A closed line asks for nothing more: it counts as done once closed.
        done = all(p["fulfilled"] >= p["ordered"] or k in closed for k, p in progress.items())
        some = any(p["fulfilled"] > 0 for p in progress.values())
        billed = all(p["billed"] >= (p["fulfilled"] if k in closed else p["ordered"])
                     for k, p in progress.items())
        if done and billed:
            fields["status"] = status("G", "Billed")
        elif done:
            fields["status"] = status("F", "Pending Billing")
        elif some:
            fields["status"] = status("E", "Pending Billing/Partially Fulfilled")
        else:
            fields["status"] = status("B", "Pending Fulfillment")
    else:
        fields["status"] = fields["orderStatus"]
    return fields


def check_order_billing(store: Store, out: dict[str, Any],
                        target: str = "invoice") -> dict[str, Any]:
    """A bill created from an order may not bill more than is fulfilled and unbilled."""
    source = (out.get("createdFrom") or {}).get("id")
    order = store.transaction(str(source)) if source is not None else None
    if order is None or order.type != "salesOrder":
        return out
    if not is_approved(order):
        raise not_initializable(target, order.id)
    if owner(order) != (out.get("entity") or {}).get("id"):
        raise invalid_value(order.id, "createdFrom", "createdFrom")
    progress = order_progress(store, order)
    check_from_lines(out, order, lambda line: billable(store, order, line, progress),
                     "You cannot bill more than the fulfilled, unbilled quantity.")
    return out


# -- invoice -----------------------------------------------------------------------------

def validate_invoice(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Like a sales order without approval; may be billed from an approved order."""
    out, customer = _sale(store, body, INVOICE_FIELDS)
    if out.get("account") is not None:
        check_account(store, out, "account", "account", ("AcctRec",))
    if out.get("createdFrom") is not None:
        _same_customer(check_transaction(store, out, "createdFrom", {"salesOrder"}), customer,
                       "createdFrom")
    priced_items(store, out)
    return check_order_billing(store, out)


def invoice_open(store: Store, invoice: Record) -> Decimal:
    """Invoice total less gift certificates redeemed on it, payments and credits applied."""
    paid = applied_by_others(store, invoice.id, {"customerPayment": ("apply",),
                                                 "creditMemo": ("apply",)})
    return dec(invoice.fields.get("total")) - dec(invoice.fields.get("giftCertApplied")) - paid


def derive_invoice(store: Store, invoice: Record) -> dict[str, Any]:
    remaining = invoice_open(store, invoice)
    state = status("B", "Paid In Full") if remaining <= 0 else status("A", "Open")
    return {**invoice.fields, "amountRemaining": float(remaining), "status": state}


# -- item fulfillment ----------------------------------------------------------------------

def validate_item_fulfillment(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Only from an approved order; each line needs a stocking location and open quantity."""
    out = start(body, FULFILL_FIELDS)
    if out.get("createdFrom") is None:
        raise required("Created From", "createdFrom")
    order = check_transaction(store, out, "createdFrom", {"salesOrder"})
    if not is_approved(order):
        raise not_initializable("itemFulfillment", order.id)
    if out.get("entity") is None:
        out["entity"] = dict(order.fields["entity"])
    _same_customer(order, require_customer(store, out, "entity"), "entity")
    if out.get("inventoryLocation") is not None:
        check_ref(store, out, "inventoryLocation", store.locations, "location",
                  "inventoryLocation")
    progress = order_progress(store, order)
    by_line = {ln["line"]: ln for ln in order.fields["item"]["items"]}
    kept_lines(out, FULFILL_LINE_FIELDS,
               lambda base, line: _fulfill_line(store, out, base, line, by_line, progress))
    out["shipStatus"] = status("C", "Shipped")
    return out


def _fulfill_line(store: Store, out: dict[str, Any], base: str, line: dict[str, Any],
                  by_line: dict[int, dict[str, Any]],
                  progress: dict[int, dict[str, Decimal]]) -> dict[str, Any] | None:
    if line.get("itemreceive") is False:
        return None
    key = line.get("orderLine")
    if key not in by_line:
        raise invalid_value(key, "orderLine", f"{base}.orderLine")
    order_line = by_line[key]
    if order_line.get("isClosed"):
        raise user_error("You cannot fulfill a closed line.", f"{base}.orderLine")
    line["item"] = dict(order_line["item"])
    if line.get("location") is None:
        if out.get("inventoryLocation") is None:
            raise required("Inventory Location", f"{base}.location")
        line["location"] = dict(out["inventoryLocation"])
    check_ref(store, line, "location", store.locations, "location", f"{base}.location")
    item = store.items.get(line["item"]["id"], {})
    if line["location"]["id"] not in item.get("locations", []):
        raise invalid_value(line["location"]["id"], "location", f"{base}.location")
    p = progress[key]
    quantity = to_decimal(line.get("quantity", p["ordered"] - p["fulfilled"]), f"{base}.quantity")
    if quantity <= 0 or quantity > p["ordered"] - p["fulfilled"]:
        raise user_error("You cannot fulfill more than the remaining quantity "
                         f"({p['ordered'] - p['fulfilled']}).", f"{base}.quantity")
    line["quantity"] = float(quantity)
    line["itemreceive"] = True
    return line


# -- returns and credits ---------------------------------------------------------------------

def validate_return_authorization(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """A priced return request, optionally from the sale/order/invoice being returned."""
    out, customer = _sale(store, body, ORDER_FIELDS)
    if out.get("createdFrom") is not None:
        source = check_transaction(store, out, "createdFrom",
                                   {"salesOrder", "cashSale", "invoice"})
        _same_customer(source, customer, "createdFrom")
    _approval(out, _RA_APPROVAL)
    priced_items(store, out)
    return out


def _refund_source(store: Store, out: dict[str, Any], customer: str, types: set[str],
                   target: str) -> None:
    if out.get("createdFrom") is None:
        return
    source = check_transaction(store, out, "createdFrom", types)
    _same_customer(source, customer, "createdFrom")
    if source.type == "returnAuthorization" and not is_approved(source):
        raise not_initializable(target, source.id)


def validate_credit_memo(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Items credited; credit applied to the customer's open invoices if ``apply`` given."""
    out, customer = _sale(store, body, CREDIT_FIELDS)
    _refund_source(store, out, customer, {"invoice", "returnAuthorization", "cashRefund"},
                   "creditMemo")
    priced_items(store, out)
    applied = apply_lines(store, out, "apply", {"invoice"}, customer, invoice_open,
                          dec(out["total"]))
    if applied > dec(out["total"]):
        raise user_error("The total applied exceeds the credit memo total.", "apply")
    return out


def credit_open(store: Store, memo: Record) -> Decimal:
    """Credit still available: total less own applications and customer refunds."""
    refunded = applied_by_others(store, memo.id, {"customerRefund": ("apply",)})
    return dec(memo.fields.get("total")) - own_applied(memo) - refunded


def derive_credit_memo(store: Store, memo: Record) -> dict[str, Any]:
    remaining = credit_open(store, memo)
    state = status("B", "Fully Applied") if remaining <= 0 else status("A", "Open")
    return {**memo.fields, "applied": float(own_applied(memo)),
            "unapplied": float(remaining), "amountRemaining": float(remaining), "status": state}


def validate_cash_refund(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Money back over the counter, usually from a cash sale or an approved RA."""
    out, customer = _sale(store, body, REFUND_FIELDS, ("subsidiary", "salesRep", "paymentOption"))
    if out.get("account") is not None:
        check_account(store, out, "account", "account", FUNDS)
    _refund_source(store, out, customer, {"cashSale", "returnAuthorization"}, "cashRefund")
    priced_items(store, out)
    return out
