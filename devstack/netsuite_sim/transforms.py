"""``!transform``: initialise a new record from an existing one, as ``record.transform`` does.

The matrix is the 2026.1 REST one (reference §5.5). An initialiser copies what NetSuite
copies (customer, location, lines with their ``orderLine``, an ``apply`` line for the
source document) and sets ``createdFrom``; the request body then overrides fields and
lines, and the target type's validator has the last word.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import SimError, required
from tillbridge.devstack.netsuite_sim.receipts import credit_authorisation, receive_authorisation
from tillbridge.devstack.netsuite_sim.records import RecordType
from tillbridge.devstack.netsuite_sim.sales import (
    INVENTORY_TYPES,
    billable,
    invoice_open,
    is_approved,
    not_initializable,
    order_progress,
)
from tillbridge.devstack.netsuite_sim.store import Record, Store

Body = dict[str, Any]
Initializer = Callable[[Store, Record, Body], Body]

# fromType -> every target NetSuite accepts (whether or not the sim stores that type).
MATRIX: dict[str, frozenset[str]] = {
    "salesOrder": frozenset({"cashSale", "invoice", "itemFulfillment", "fulfillmentRequest",
                             "returnAuthorization"}),
    "cashSale": frozenset({"cashRefund", "returnAuthorization"}),
    "invoice": frozenset({"creditMemo", "customerPayment", "returnAuthorization"}),
    "returnAuthorization": frozenset({"cashRefund", "creditMemo", "itemReceipt"}),
    "cashRefund": frozenset({"creditMemo"}),
    "creditMemo": frozenset({"customerRefund"}),
    "customerDeposit": frozenset({"customerRefund", "depositApplication"}),
    "customerPayment": frozenset({"customerRefund"}),
    "customer": frozenset({"cashSale", "customerPayment", "invoice", "estimate", "salesOrder",
                           "opportunity"}),
}
_HEADER = ("location", "subsidiary", "department", "class", "salesRep", "currency")


def unsupported(from_type: str, to_type: str) -> SimError:
    # NetSuite's exact code/wording for an impossible transformation is unconfirmed; a 400
    # INVALID_REQUEST naming both types is what a client has to handle either way.
    return SimError(400, "INVALID_REQUEST", f"The transformation from '{from_type}' to "
                    f"'{to_type}' is not supported.")


def initial_body(store: Store, source_rt: RecordType, source: Record, target: str,
                 body: Body) -> Body:
    """The target's body before validation: initialiser output overlaid with ``body``."""
    targets = {t.lower(): t for t in MATRIX.get(source_rt.name, ())}
    canonical = targets.get(target.lower())
    if canonical is None:
        raise unsupported(source_rt.name, target)
    init = _INITIALIZERS.get((source_rt.name, canonical))
    if init is None:
        raise SimError(400, "INVALID_REQUEST", f"Transform to '{canonical}' is valid in "
                       "NetSuite but that record type is not simulated.")
    return overlay(init(store, source, body), body)


def overlay(base: Body, body: Body) -> Body:
    """Body fields win; sublist lines merge on ``orderLine``/``line``, apply lines on ``doc``.

    A merged line with ``itemreceive: false`` or quantity 0 is dropped (not fulfilled /
    not billed), which is how a transform leaves a source line out.
    """
    out = dict(base)
    for key, value in body.items():
        old = base.get(key)
        if isinstance(old, dict) and isinstance(value, dict) and isinstance(
                value.get("items"), list):
            out[key] = {"items": _merge_lines(old.get("items", []), value["items"])}
        else:
            out[key] = value
    return out


def _line_key(line: dict[str, Any]) -> tuple[str, str] | None:
    if isinstance(line.get("doc"), dict):
        return ("doc", str(line["doc"].get("id")))
    for key in ("orderLine", "line"):
        if line.get(key) is not None:
            return ("line", str(line[key]))
    return None


def _merge_lines(base: list[dict[str, Any]], changes: list[Any]) -> list[dict[str, Any]]:
    lines = [dict(ln) for ln in base]
    index = {_line_key(ln): i for i, ln in enumerate(lines)}
    for change in changes:
        if not isinstance(change, dict):
            lines.append(change)
            continue
        at = index.get(_line_key(change))
        if at is None:
            lines.append(dict(change))
        else:
            lines[at].update(change)
    return [ln for ln in lines if not isinstance(ln, dict) or (
        ln.get("itemreceive") is not False and ln.get("quantity") not in (0, "0"))]


# -- initialisers --------------------------------------------------------------------------

def _header(source: Record) -> Body:
    out: Body = {"createdFrom": {"id": source.id}}
    for key in _HEADER:
        if source.fields.get(key) is not None:
            out[key] = source.fields[key]
    return out


def _copy_lines(source: Record) -> list[dict[str, Any]]:
    keep = ("item", "quantity", "rate", "taxCode", "description", "location", "price")
    return [{**{k: ln[k] for k in keep if k in ln}, "orderLine": ln["line"]}
            for ln in source.fields.get("item", {}).get("items", [])]


def _copy_sale(store: Store, source: Record, body: Body) -> Body:
    """Returns and credits: the customer and every item line of the source."""
    return {**_header(source), "entity": source.fields["entity"],
            "item": {"items": _copy_lines(source)}}


def _refund_from_sale(store: Store, source: Record, body: Body) -> Body:
    out = _copy_sale(store, source, body)
    for key in ("paymentOption", "account"):
        if source.fields.get(key) is not None:
            out[key] = source.fields[key]
    return out


def _bill_order(store: Store, order: Record, body: Body) -> Body:
    """Billing an order bills what is fulfilled and not yet billed (reference §2.7)."""
    if not is_approved(order):
        raise not_initializable("invoice/cashSale", order.id)
    progress = order_progress(store, order)
    lines = []
    for ln in order.fields["item"]["items"]:
        quantity = billable(store, order, ln, progress)
        if quantity > 0:
            lines.append({**{k: ln[k] for k in ("item", "rate", "taxCode", "location")
                             if k in ln}, "quantity": float(quantity), "orderLine": ln["line"]})
    return {**_header(order), "entity": order.fields["entity"], "item": {"items": lines}}


def _fulfill_order(store: Store, order: Record, body: Body) -> Body:
    """The body must name ``inventoryLocation`` (reference §2.7); lines default to it."""
    if body.get("inventoryLocation") is None:
        raise required("Inventory Location", "inventoryLocation")
    if not is_approved(order):
        raise not_initializable("itemFulfillment", order.id)
    progress = order_progress(store, order)
    lines = []
    for ln in order.fields["item"]["items"]:
        p = progress[ln["line"]]
        itemtype = store.items.get(ln["item"]["id"], {}).get("itemtype")
        if itemtype in INVENTORY_TYPES and p["ordered"] > p["fulfilled"] \
                and not ln.get("isClosed"):
            lines.append({"orderLine": ln["line"], "item": ln["item"],
                          "quantity": float(p["ordered"] - p["fulfilled"])})
    if not lines:
        raise not_initializable("itemFulfillment", order.id)
    return {"createdFrom": {"id": order.id}, "entity": order.fields["entity"],
            "item": {"items": lines}}


def _credit_invoice(store: Store, invoice: Record, body: Body) -> Body:
    # A credit memo made from an invoice is applied to that invoice.
    return {**_copy_sale(store, invoice, body),
            "apply": {"items": [{"doc": {"id": invoice.id}, "apply": True}]}}


def _pay_invoice(store: Store, invoice: Record, body: Body) -> Body:
    due = invoice_open(store, invoice)
    if due <= 0:
        raise not_initializable("customerPayment", invoice.id)
    return {"customer": invoice.fields["entity"], "payment": float(due),
            **{k: invoice.fields[k] for k in ("subsidiary", "location") if k in invoice.fields},
            "apply": {"items": [{"doc": {"id": invoice.id}, "apply": True}]}}


def _refund_credit(sublist: str) -> Initializer:
    def init(store: Store, source: Record, body: Body) -> Body:
        customer = source.fields.get("customer") or source.fields.get("entity")
        return {"customer": customer,
                sublist: {"items": [{"doc": {"id": source.id}, "apply": True}]}}
    return init


def _from_customer(field: str) -> Initializer:
    def init(store: Store, customer: Record, body: Body) -> Body:
        out: Body = {field: {"id": customer.id}}
        if customer.fields.get("subsidiary") is not None:
            out["subsidiary"] = customer.fields["subsidiary"]
        return out
    return init


_INITIALIZERS: dict[tuple[str, str], Initializer] = {
    ("salesOrder", "cashSale"): _bill_order,
    ("salesOrder", "invoice"): _bill_order,
    ("salesOrder", "itemFulfillment"): _fulfill_order,
    ("salesOrder", "returnAuthorization"): _copy_sale,
    ("cashSale", "cashRefund"): _refund_from_sale,
    ("cashSale", "returnAuthorization"): _copy_sale,
    ("invoice", "creditMemo"): _credit_invoice,
    ("invoice", "customerPayment"): _pay_invoice,
    ("invoice", "returnAuthorization"): _copy_sale,
    ("returnAuthorization", "cashRefund"): credit_authorisation,
    ("returnAuthorization", "creditMemo"): credit_authorisation,
    ("returnAuthorization", "itemReceipt"): receive_authorisation,
    ("cashRefund", "creditMemo"): _copy_sale,
    ("creditMemo", "customerRefund"): _refund_credit("apply"),
    ("customerPayment", "customerRefund"): _refund_credit("apply"),
    ("customerDeposit", "customerRefund"): _refund_credit("deposit"),
    ("customer", "cashSale"): _from_customer("entity"),
    ("customer", "invoice"): _from_customer("entity"),
    ("customer", "salesOrder"): _from_customer("entity"),
    ("customer", "customerPayment"): _from_customer("customer"),
}
