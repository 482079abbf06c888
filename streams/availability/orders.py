"""Order status back to the POS and storefronts, pure: NetSuite's changed transactions
become one status change per order, record and status, each published once.

Which orders: sales orders tillbridge created for the POS or a storefront (externalId in
tillbridge's ``pos-`` namespace). Which changes:

- on the order itself: its status (cancelled, closed, pending fulfillment, billed, ...);
- records made from it: ``itemFulfillment`` (fulfilled / shipped), ``cashSale`` and
  ``invoice`` (billed), ``returnAuthorization`` (return authorised).

Who made it: a record made from the order carries ``custbody_tillbridge_source`` when
tillbridge made it (``flows/stamp.py``), none when a NetSuite user or script did. The order
itself keeps tillbridge's creation stamp for life, so a change to it counts as
tillbridge's when it is the creation (``createddate`` = ``lastmodifieddate``) or when
tillbridge's own last edit (``custbody_tillbridge_modified``, written with each of its
order PATCHes) is within ``OWN_EDIT_S`` of the order's ``lastmodifieddate``. A status
NetSuite derives (partially fulfilled, billed) follows the order's last edit too; the
record that moved it is published beside it with its own mark.

Each change has an id, ``<record id>:<status>``: the cursor (``Cursor``) keeps the ids it
published at or after its time, so re-reading the overlap publishes nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: Seconds between tillbridge's own order edit and NetSuite's modification stamp within
#: which the change is taken as tillbridge's (one PATCH's round trip, plus clock skew).
OWN_EDIT_S = 5.0
STAMP = "%Y-%m-%d %H:%M:%S"
ORDER_STATUS = {"A": "pending_approval", "B": "pending_fulfillment", "C": "cancelled",
                "D": "partially_fulfilled", "E": "partially_fulfilled",
                "F": "pending_billing", "G": "billed", "H": "closed"}
CHILD_STATUS = {"itemfulfillment": "fulfilled", "cashsale": "billed", "invoice": "billed",
                "returnauthorization": "return_authorised"}
#: tillbridge's externalId namespace (``streams/ledger/ids.py``).
OWN_PREFIX = "pos-"


@dataclass(frozen=True, slots=True)
class TxnRow:
    """A changed transaction as SuiteQL returns it (plus its mainline ``createdfrom``)."""

    id: str
    recordtype: str
    status: str | None
    externalid: str | None
    modified: str
    source: str | None = None  # custbody_tillbridge_source
    own_edit: str | None = None  # custbody_tillbridge_modified
    created_from: str | None = None
    order_id: str | None = None  # otherrefnum: the POS/storefront order id
    store_id: str | None = None
    pos_transaction_id: str | None = None
    created: str | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any], created_from: str | None = None) -> TxnRow:
        def s(name: str) -> str | None:
            value = row.get(name)
            return None if value in (None, "") else str(value)
        return cls(str(row["id"]), str(row.get("recordtype") or "").lower(), s("status"),
                   s("externalid"), str(row.get("lastmodifieddate") or ""),
                   s("custbody_tillbridge_source"), s("custbody_tillbridge_modified"),
                   created_from, s("otherrefnum"), s("custbody_pos_store_id"),
                   s("custbody_pos_transaction_id"), s("createddate"))


@dataclass(frozen=True, slots=True)
class StatusChange:
    change_id: str
    order_id: str
    status: str
    netsuite_status: str | None
    record_type: str
    record_id: str
    record_external_id: str | None
    order_netsuite_id: str
    order_external_id: str
    store_id: str | None
    pos_transaction_id: str | None
    by_tillbridge: bool
    source_ref: str | None
    modified: str

    def doc(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


def _parse(stamp: str | None) -> datetime | None:
    try:
        return datetime.strptime(stamp or "", STAMP)
    except ValueError:
        return None


def own_order_edit(order: TxnRow) -> bool:
    """tillbridge made the order's last change: it created it (stamped, never modified
    since) or its own last PATCH is the order's last modification."""
    if order.source is not None and order.created is not None and \
            order.created == order.modified:
        return True
    edit, modified = _parse(order.own_edit), _parse(order.modified)
    return edit is not None and modified is not None and \
        abs(modified - edit) <= timedelta(seconds=OWN_EDIT_S)


def from_tillbridge(order: TxnRow) -> bool:
    return order.recordtype == "salesorder" and \
        (order.externalid or "").lower().startswith(OWN_PREFIX)


def changes(rows: Iterable[TxnRow], orders: Mapping[str, TxnRow]) -> list[StatusChange]:
    """The status changes in ``rows`` (oldest first) of the orders in ``orders`` (by id)."""
    out: list[StatusChange] = []
    for row in sorted(rows, key=lambda r: (r.modified, int(r.id) if r.id.isdigit() else 0)):
        if row.recordtype == "salesorder":
            order, status = orders.get(row.id), ORDER_STATUS.get(row.status or "")
            mine = order is not None and own_order_edit(order)
            source = order.source if order is not None else None
        else:
            order = orders.get(row.created_from or "")
            status = CHILD_STATUS.get(row.recordtype)
            mine, source = row.source is not None, row.source
        if order is None or status is None or not from_tillbridge(order):
            continue
        out.append(StatusChange(
            f"{row.id}:{status}", order.order_id or order.externalid or order.id, status,
            row.status, row.recordtype, row.id, row.externalid, order.id,
            order.externalid or "", order.store_id, order.pos_transaction_id, mine,
            source if mine else None, row.modified))
    return out


@dataclass
class Cursor:
    """Where the order-status poll is: the next ``lastmodifieddate`` to read from, and the
    changes already published at or after it (kept on a compacted topic, so a restarted
    worker publishes nothing twice)."""

    since: str | None = None
    seen: dict[str, str] = field(default_factory=dict)  # change id -> its modified stamp

    def fresh(self, found: Iterable[StatusChange]) -> list[StatusChange]:
        out, ids = [], set(self.seen)
        for change in found:
            if change.change_id not in ids:
                ids.add(change.change_id)
                out.append(change)
        return out

    def advance(self, published: Iterable[StatusChange], since: str) -> None:
        """Remember ``published``, move to ``since`` and forget what is older than it."""
        self.seen.update((c.change_id, c.modified) for c in published)
        self.since = since
        self.seen = {k: v for k, v in self.seen.items() if v >= since}

    def to_doc(self) -> dict[str, Any]:
        return {"since": self.since, "seen": dict(sorted(self.seen.items()))}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Cursor:
        if not doc:
            return cls()
        return cls(doc.get("since"), {str(k): str(v) for k, v in (doc.get("seen") or {}).items()})
