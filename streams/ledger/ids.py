"""Deterministic externalIds: one namespace for every transaction type.

NetSuite keeps externalIds unique per record *group*: all transaction types share one
namespace (reference §2.6, §9.4), so a sale and its refund must never derive the same id.
Every id therefore names its record kind, then the POS coordinates that make it unique.
The same POS event always derives the same id, which is what makes a replay idempotent and
lets anyone go from a NetSuite record back to the till (and back again, by ``eid:``).

Kinds (stable: changing one would re-post history):

=========  ===============================================  =========================
kind       record                                            unique by
=========  ===============================================  =========================
sale       cashSale / salesOrder / invoice of a POS sale     store, POS transaction
tnd        customerPayment of one tender of a split-tender   store, POS transaction,
           sale booked as invoice + payments                 tender index (0-based)
pay        customerDeposit / customerPayment, and the        store, POS payment id
           customerRefund of a REFUNDED payment event
rtn        cashRefund / creditMemo of a POS return           store, POS return txn
rfd        customerRefund paying out a return's credit       store, POS return txn
exch       cashSale of a return's exchange lines             store, POS return txn
disp       inventoryAdjustment writing off disposed units    store, POS return txn
ord        salesOrder of an omnichannel order                order id
ra         returnAuthorization of an omnichannel return      order id, event sequence;
           (in store, at a till: shared by the order event   order id, store, POS
           and the POS return, see ``in_store_ra_id``)       return txn
rcpt       itemReceipt of an online order's in-store return  store, POS return txn
loy        loyalty ledger movement (custom record, its own   earn|rev, store, POS txn
           namespace): points earned / reversed
ful        itemFulfillment of an omnichannel order           order id, fulfilment id
adj        inventoryAdjustment of an inventory window        store, window start
sum        cashSale summarising a register's window of       store, register, business
           sales (the ``summary`` sync mode)                 day, window start and shape
dep        bank deposit of a settlement                      store, settlement id
je         journalEntry (over/short) of a settlement         store, settlement id
=========  ===============================================  =========================

Customers are entities (another group) and keep ``pos-cust-<key>`` (see enrich).
``pos_fields`` gives the same POS coordinates as ``custbody_pos_*`` fields.
"""

from __future__ import annotations

import re

PREFIX = "pos"
KINDS = frozenset({"sale", "tnd", "pay", "rtn", "rfd", "exch", "disp", "ord", "ra", "rcpt", "ful",
                   "adj", "dep", "je", "loy", "sum"})
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


def _part(value: object) -> str:
    """A path-safe id part: NetSuite matches externalIds case-insensitively and they travel
    in URL paths, so keep to a conservative alphabet (others become ``_``)."""
    text = str(value).strip()
    if not text:
        raise ValueError("externalId parts must not be empty")
    return _UNSAFE.sub("_", text)


def external_id(kind: str, *parts: object) -> str:
    """``pos-<kind>-<part>-<part>...``; raises on an unknown kind or an empty part."""
    if kind not in KINDS:
        raise ValueError(f"unknown externalId kind {kind!r}; expected one of {sorted(KINDS)}")
    return "-".join((PREFIX, kind, *(_part(p) for p in parts)))


def sale_id(store_id: str, pos_transaction_id: str) -> str:
    return external_id("sale", store_id, pos_transaction_id)


def tender_payment_id(store_id: str, pos_transaction_id: str, index: int) -> str:
    """The customerPayment of tender ``index`` (its place on the receipt) of a sale."""
    return external_id("tnd", store_id, pos_transaction_id, index)


def order_external_id(order_id: str) -> str:
    return external_id("ord", order_id)


def in_store_ra_id(order_id: str, store_id: str, pos_transaction_id: str) -> str:
    """The returnAuthorization of an online order returned at a till. Both events of that
    return derive it (the order's RETURN_IN_STORE and the POS return), so whichever comes
    first creates it and the other finds it: one authorisation per return."""
    return external_id("ra", order_id, store_id, pos_transaction_id)


def pos_fields(store_id: str, register_id: str, pos_transaction_id: str,
               **extra: str | None) -> dict[str, str]:
    """The ``custbody_pos_*`` body fields that lead from a record back to the till."""
    out = {"custbody_pos_store_id": store_id, "custbody_pos_register_id": register_id,
           "custbody_pos_transaction_id": pos_transaction_id}
    out.update({f"custbody_pos_{k}": v for k, v in extra.items() if v})
    return out
