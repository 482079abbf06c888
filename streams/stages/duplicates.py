"""Duplicates beyond the POS transaction id: double-scans and partial syncs. Pure helpers.

Three cases, kept apart because each calls for a different action:

* **Same POS transaction id again** (a redelivery, a producer retry, a DLQ replay): dropped
  by the sink's dedupe table and counted (``tillbridge_duplicates_prevented_total``), when
  its content matches what was posted; other content is a ``conflicting_resend``
  (``stages/resend.py``).
* **Same basket under a new transaction id** within ``TILLBRIDGE_DOUBLE_SCAN_WINDOW_S``: a
  possible double-scan at the till. It may also be a genuine second purchase, so it is
  posted, flagged on the routed record and the result, and counted
  (``tillbridge_double_scan_suspected_total``) for someone to look at.
* **Partial sync**: a sale is written as up to two NetSuite records, the customer (only for
  a new or enriched shopper) and then the cashSale. "Partial" means the customer step
  landed and the cashSale did not (refused, NetSuite unavailable, or the worker stopped).
  The sink records that in the dedupe table (:func:`partial_entry`); when the sale comes
  back (DLQ replay or redelivery) it is not treated as a duplicate: the sink reuses the
  customer id and posts only the cashSale. A crash before the table write is covered too,
  because the customer upsert is idempotent by externalId.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from tillbridge.streams.stages.records import SaleRec

#: Routed-record header naming the earlier POS transaction a sale may be a double-scan of.
H_DOUBLE_SCAN = "tillbridge.double_scan_of"  # a hop header: see route.HOP_HEADERS

SyncState = Literal["new", "partial", "complete"]


def _num(value: Decimal) -> str:
    """One spelling per amount: 2, 2.0 and 2.000 are the same quantity."""
    return format(value.normalize(), "f")


def fingerprint(sale: SaleRec) -> str:
    """What a basket is, independent of its transaction id and of line/tender order.

    Store, register, every line's SKU, quantity and unit price, the total and the tenders
    (type and amount). Times, ids and the customer are left out on purpose: a double-scan
    repeats the basket, not the receipt number.
    """
    lines = sorted(f"{ln['sku']}x{_num(ln['quantity'])}@{_num(ln['unit_price'])}"
                   for ln in sale["lines"])
    tenders = sorted(f"{t['tender_type']}={_num(t['amount'])}" for t in sale["tenders"])
    text = "|".join([sale["store_id"], sale["register_id"], ";".join(lines),
                     _num(sale["total"]), ";".join(tenders)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class DoubleScanWindow:
    """Recent basket fingerprints per worker, bounded in time (event time) and size.

    In memory: a restart forgets the window, and the same basket routed to another worker
    is not compared. Both only lose a warning, never a sale.
    """

    def __init__(self, window_s: float, max_entries: int = 50_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, fp: str, txn_key: str, at: float) -> str | None:
        """The earlier transaction this one may be a double-scan of, else None; records it."""
        self._evict(at)
        previous = self._seen.get(fp)
        if previous is not None and previous[0] == txn_key:
            return None  # the same transaction again: the dedupe table's business
        self._seen[fp] = (txn_key, at)
        self._seen.move_to_end(fp)
        if previous is not None and abs(at - previous[1]) <= self.window_s:
            return previous[0]
        return None

    def _evict(self, now: float) -> None:
        while self._seen:
            _, (_, seen_at) = next(iter(self._seen.items()))
            if len(self._seen) < self.max_entries and now - seen_at <= self.window_s:
                break
            self._seen.popitem(last=False)


def sync_state(entry: Mapping[str, Any] | None) -> SyncState:
    """Where a POS transaction stands, from its dedupe-table entry."""
    if entry is None:
        return "new"
    return "partial" if entry.get("state") == "partial" else "complete"


def partial_entry(customer_id: str, customer_external_id: str | None) -> dict[str, Any]:
    """Dedupe-table entry for "customer written, cashSale not" (see the module docstring)."""
    return {"state": "partial", "record_type": "customer", "customer_id": customer_id,
            "customer_external_id": customer_external_id}
