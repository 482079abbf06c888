"""Same POS transaction id, different content: tell an identical re-send from a changed one.

A sale's *content* is what it is worth: its lines (SKU, quantity, unit price, line
discounts, tax code and amount), order discounts, tenders (type and amount) and totals.
When a sale is posted the sink keeps its content fingerprint and a short summary in the
dedupe table. When the same transaction id comes again:

- same fingerprint: an identical re-send, a ``duplicate`` (or a crash replay: ``replayed``);
- other fingerprint: a ``conflicting_resend`` dead letter whose inputs say what differs
  (:func:`content_diff`); the posted record is never touched.

Times, ids, receipt text and the customer are left out: a re-send that only re-prints the
receipt is still the same sale. Pure functions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tillbridge.streams.stages.records import DiscountRec, SaleRec

#: Bump when the fingerprinted fields change, so old entries are not read as conflicts.
FINGERPRINT_VERSION = "c1"


def _num(value: Decimal) -> str:
    """One spelling per amount: 2, 2.0 and 2.000 are the same quantity."""
    return format(value.normalize(), "f")


def _discounts(discounts: list[DiscountRec]) -> list[str]:
    return sorted(f"{d['code']}={_num(d['amount'])}" for d in discounts)


def content_summary(sale: SaleRec) -> dict[str, Any]:
    """The economically meaningful fields, as plain JSON-safe strings (kept in the table)."""
    lines: dict[str, str] = {}
    for ln in sorted(sale["lines"], key=lambda x: x["line_no"]):
        text = (f"{_num(ln['quantity'])} x {_num(ln['unit_price'])}"
                f" disc[{','.join(_discounts(ln['discounts']))}]"
                f" tax {ln['tax_code'] or '-'}={_num(ln['tax_amount'])}")
        sku = ln["sku"]
        key, n = sku, 2
        while key in lines:  # the same SKU on two lines stays two entries
            key, n = f"{sku}#{n}", n + 1
        lines[key] = text
    return {
        "total": _num(sale["total"]), "subtotal": _num(sale["subtotal"]),
        "discount_total": _num(sale["discount_total"]), "tax_total": _num(sale["tax_total"]),
        "currency": sale["currency"], "lines": lines,
        "order_discounts": _discounts(sale["order_discounts"]),
        "tenders": sorted(f"{t['tender_type']}={_num(t['amount'])}" for t in sale["tenders"]),
    }


def content_fingerprint(summary: Mapping[str, Any]) -> str:
    """Canonical SHA-256 of a content summary (sorted keys, no whitespace), versioned."""
    text = json.dumps(summary, sort_keys=True, separators=(",", ":"))
    return f"{FINGERPRINT_VERSION}:{hashlib.sha256(text.encode()).hexdigest()}"


def content_diff(posted: Mapping[str, Any], resent: Mapping[str, Any]) -> dict[str, Any]:
    """What a re-send changed against the posted version: totals side by side, lines added,
    removed or changed (by SKU), tenders and order discounts when they differ."""
    diff: dict[str, Any] = {}
    for field in ("total", "subtotal", "discount_total", "tax_total", "currency"):
        if posted.get(field) != resent.get(field):
            diff[field] = {"posted": posted.get(field), "resent": resent.get(field)}
    old: Mapping[str, str] = posted.get("lines") or {}
    new: Mapping[str, str] = resent.get("lines") or {}
    added = {k: new[k] for k in sorted(new.keys() - old.keys())}
    removed = {k: old[k] for k in sorted(old.keys() - new.keys())}
    changed = {k: {"posted": old[k], "resent": new[k]}
               for k in sorted(old.keys() & new.keys()) if old[k] != new[k]}
    for name, part in (("lines_added", added), ("lines_removed", removed),
                       ("lines_changed", changed)):
        if part:
            diff[name] = part
    for field in ("tenders", "order_discounts"):
        if list(posted.get(field) or []) != list(resent.get(field) or []):
            diff[field] = {"posted": posted.get(field), "resent": resent.get(field)}
    return diff
