"""Returned goods: the itemReceipt against a return authorisation, and the order NetSuite
enforces between authorisation, receipt and credit.

The sandbox models an account with **Advanced Receiving** on, the usual setting for
retailers with stock at several locations: an approved returnAuthorization (Pending
Receipt) is received by ``!transform/itemReceipt`` at a location, and only what was
received can then be credited (``!transform/creditMemo`` or ``cashRefund``). Lines of
items that carry no stock (services, charges) need no receipt. Refusals use NetSuite's
envelope: an unapproved authorisation or nothing left to receive/credit is the
``USER_ERROR`` "You can not initialize ..." that ``record.transform`` reports, and too
large a quantity names the line in ``o:errorPath`` (reference §2.7, §5.5, §3.1).

Progress (authorised, received, credited per RA line) is derived from the records
created from the RA, never stored on it, like a sales order's fulfilment progress.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import invalid_value, required, user_error
from tillbridge.devstack.netsuite_sim.records import check_ref, check_transaction, to_decimal
from tillbridge.devstack.netsuite_sim.sales import (
    INVENTORY_TYPES,
    is_approved,
    line_progress,
    not_initializable,
)
from tillbridge.devstack.netsuite_sim.store import Record, Store
from tillbridge.devstack.netsuite_sim.txn import (
    COMMON_FIELDS,
    ZERO,
    check_from_lines,
    kept_lines,
    start,
    status,
)

RECEIPT_FIELDS = COMMON_FIELDS | {"entity", "item"}
RECEIPT_LINE_FIELDS = frozenset({"orderLine", "item", "location", "quantity", "itemreceive",
                                 "inventoryDetail", "line", "links", "description"})
CREDITS = ("creditMemo", "cashRefund")
Progress = dict[int, dict[str, Decimal]]


def ra_progress(store: Store, ra: Record) -> Progress:
    """Per RA line: authorised, received and credited quantities (from linked records)."""
    return line_progress(store, ra, "authorised", (("received", ("itemReceipt",)),
                                                   ("credited", CREDITS)))


def _stocked(store: Store, line: dict[str, Any]) -> bool:
    item = store.items.get(str((line.get("item") or {}).get("id")), {})
    return item.get("itemtype") in INVENTORY_TYPES


def creditable(store: Store, ra_line: dict[str, Any], p: dict[str, Decimal]) -> Decimal:
    """Stock lines credit what was received; other lines what was authorised; less credits."""
    base = p["received"] if _stocked(store, ra_line) else p["authorised"]
    return max(ZERO, base - p["credited"])


# -- itemReceipt -----------------------------------------------------------------------------

def validate_item_receipt(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Only from an approved RA; each line at a location that stocks the item, at most
    what is authorised and not yet received."""
    out = start(body, RECEIPT_FIELDS)
    if out.get("createdFrom") is None:
        raise required("Created From", "createdFrom")
    ra = check_transaction(store, out, "createdFrom", {"returnAuthorization"})
    if not is_approved(ra):
        raise not_initializable("itemReceipt", ra.id)
    out["entity"] = dict(ra.fields["entity"])
    if out.get("location") is not None:
        check_ref(store, out, "location", store.locations, "location", "location")
    progress = ra_progress(store, ra)
    by_line = {ln["line"]: ln for ln in ra.fields["item"]["items"]}
    kept_lines(out, RECEIPT_LINE_FIELDS,
               lambda base, line: _receive_line(store, out, base, line, by_line, progress))
    return out


def _receive_line(store: Store, out: dict[str, Any], base: str, line: dict[str, Any],
                  by_line: dict[int, dict[str, Any]], progress: Progress) -> dict[str, Any] | None:
    if line.get("itemreceive") is False:
        return None
    key = line.get("orderLine")
    if key not in by_line:
        raise invalid_value(key, "orderLine", f"{base}.orderLine")
    ra_line = by_line[key]
    line["item"] = dict(ra_line["item"])
    if line.get("location") is None:
        line["location"] = ra_line.get("location") or out.get("location")
    if line.get("location") is None:
        raise required("Location", f"{base}.location")
    check_ref(store, line, "location", store.locations, "location", f"{base}.location")
    item = store.items.get(line["item"]["id"], {})
    if _stocked(store, line) and line["location"]["id"] not in item.get("locations", []):
        raise invalid_value(line["location"]["id"], "location", f"{base}.location")
    p = progress[key]
    left = p["authorised"] - p["received"]
    quantity = to_decimal(line.get("quantity", left), f"{base}.quantity")
    if quantity <= 0 or quantity > left:
        raise user_error(f"You cannot receive more than the remaining quantity ({left}).",
                         f"{base}.quantity")
    line["quantity"] = float(quantity)
    line["itemreceive"] = True
    return line


def receive_authorisation(store: Store, ra: Record, body: dict[str, Any]) -> dict[str, Any]:
    """``!transform/itemReceipt``: every line still to receive, at the RA line's location."""
    if not is_approved(ra):
        raise not_initializable("itemReceipt", ra.id)
    progress = ra_progress(store, ra)
    lines = []
    for ln in ra.fields["item"]["items"]:
        p = progress[ln["line"]]
        if _stocked(store, ln) and p["authorised"] > p["received"]:
            line = {"orderLine": ln["line"], "item": ln["item"],
                    "quantity": float(p["authorised"] - p["received"])}
            if ln.get("location") is not None:
                line["location"] = ln["location"]
            lines.append(line)
    if not lines:
        raise not_initializable("itemReceipt", ra.id)
    out: dict[str, Any] = {"createdFrom": {"id": ra.id}, "entity": ra.fields["entity"],
                           "item": {"items": lines}}
    for key in ("location", "subsidiary"):
        if ra.fields.get(key) is not None:
            out[key] = ra.fields[key]
    return out


# -- credits from an RA ----------------------------------------------------------------------

def credit_authorisation(store: Store, ra: Record, body: dict[str, Any]) -> dict[str, Any]:
    """``!transform/creditMemo|cashRefund``: the RA's lines at what can be credited now
    (received, less credited); refused while nothing is (goods not received yet)."""
    if not is_approved(ra):
        raise not_initializable("creditMemo", ra.id)
    progress = ra_progress(store, ra)
    keep = ("item", "rate", "taxCode", "description", "location", "price")
    lines = []
    for ln in ra.fields["item"]["items"]:
        quantity = creditable(store, ln, progress[ln["line"]])
        if quantity > 0:
            lines.append({**{k: ln[k] for k in keep if k in ln}, "quantity": float(quantity),
                          "orderLine": ln["line"]})
    if not lines:
        raise not_initializable("creditMemo", ra.id)
    out: dict[str, Any] = {"createdFrom": {"id": ra.id}, "entity": ra.fields["entity"],
                           "item": {"items": lines}}
    for key in ("location", "subsidiary", "department", "class", "currency"):
        if ra.fields.get(key) is not None:
            out[key] = ra.fields[key]
    return out


def check_ra_credit(store: Store, out: dict[str, Any]) -> dict[str, Any]:
    """A credit created from an RA credits no line beyond what may be credited now."""
    source = (out.get("createdFrom") or {}).get("id")
    ra = store.transaction(str(source)) if source is not None else None
    if ra is None or ra.type != "returnAuthorization":
        return out
    progress = ra_progress(store, ra)
    check_from_lines(out, ra, lambda line: creditable(store, line, progress[line["line"]]),
                     "You cannot credit more than the received, uncredited quantity.")
    return out


def derive_return_authorization(store: Store, ra: Record) -> dict[str, Any]:
    """NetSuite's RA statuses, from what was received and credited against it."""
    fields = ra.fields
    if not is_approved(ra):
        return {**fields, "status": fields["orderStatus"]}
    progress = ra_progress(store, ra)
    by_line = {ln["line"]: ln for ln in fields["item"]["items"]}
    stock = [k for k in progress if _stocked(store, by_line[k])]
    received_all = all(progress[k]["received"] >= progress[k]["authorised"] for k in stock)
    received_some = any(progress[k]["received"] > 0 for k in stock)
    credited_all = all(p["credited"] >= p["authorised"] for p in progress.values())
    credited_some = any(p["credited"] > 0 for p in progress.values())
    if credited_all:
        state = status("G", "Refunded")
    elif received_all:
        state = status("F", "Pending Refund")
    elif received_some and credited_some:
        state = status("E", "Pending Refund/Partially Received")
    elif received_some:
        state = status("D", "Partially Received")
    else:
        state = status("B", "Pending Receipt")
    return {**fields, "status": state}
