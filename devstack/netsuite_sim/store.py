"""In-memory account state: reference tables from the seed plus REST-writable records.

Records live per *group* (transaction, entity) because NetSuite shares internal ids and
external ids across a group, not per record type. External ids are compared
case-insensitively. Only the event loop thread touches the store, so no locks.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Seed keys for customers/employees -> REST body field names.
_CUSTOMER_FIELDS = {
    "entityid": "entityId", "firstname": "firstName", "lastname": "lastName",
    "isperson": "isPerson", "email": "email", "phone": "phone", "externalid": "externalId",
    "isinactive": "isInactive", "loyalty_id": "custentity_loyalty_id", "companyname": "companyName",
}
# Where each group's new internal ids start when the seed holds none of that group.
#: ``customrecord``: the loyalty custom record type, a namespace of its own (``custom.py``).
_ID_FLOOR = {"transaction": 100000, "entity": 10000, "customrecord": 1, "giftcertificate": 1}


def load_seed(seed_path: str | Path | None = None) -> dict[str, Any]:
    """Read the seed JSON; default is ``data/sandbox.json`` shipped in ``tillbridge.connectors``."""
    if seed_path is None:
        text = resources.files("tillbridge.connectors").joinpath("data/sandbox.json").read_text(
            encoding="utf-8")
    else:
        text = Path(seed_path).read_text(encoding="utf-8")
    return json.loads(text)


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Record:
    """One REST record: its canonical type, internal id and stored body fields."""

    type: str
    id: str
    fields: dict[str, Any]
    created: datetime = field(default_factory=now_utc)
    modified: datetime = field(default_factory=now_utc)

    @property
    def external_id(self) -> str | None:
        value = self.fields.get("externalId")
        return None if value is None else str(value)


@dataclass
class Stats:
    """What the admin ``/__sim/stats`` endpoint reports."""

    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    deleted: Counter[str] = field(default_factory=Counter)
    status_codes: Counter[int] = field(default_factory=Counter)
    transforms: Counter[str] = field(default_factory=Counter)  # "fromType->toType"
    faults: Counter[str] = field(default_factory=Counter)  # injected fault -> times fired


class Store:
    """Reference tables (read-only via REST) and records (read-write via REST)."""

    def __init__(self, seed: dict[str, Any]) -> None:
        self.items: dict[str, dict[str, Any]] = {str(i["id"]): dict(i) for i in seed["items"]}
        #: SuiteQL lastmodifieddate of seeded items; admin changes stamp the item itself.
        self.seeded_at = now_utc().strftime("%Y-%m-%d %H:%M:%S")
        self.locations = {str(r["id"]): dict(r) for r in seed["locations"]}
        self.payment_methods = {str(r["id"]): dict(r) for r in seed["payment_methods"]}
        self.tax_codes = {str(r["id"]): dict(r) for r in seed.get("tax_codes", [])}
        self.subsidiaries = {str(r["id"]): dict(r) for r in seed.get("subsidiaries", [])}
        self.employees = {str(r["id"]): dict(r) for r in seed.get("employees", [])}
        self.accounts = {str(r["id"]): dict(r) for r in seed.get("accounts", [])}
        self.price_levels = {str(r["id"]): dict(r) for r in seed.get("price_levels", [])}
        self.promotions = {str(r["id"]): dict(r) for r in seed.get("promotions", [])}
        self.guest_customer_id = str(seed.get("guest_customer_id", ""))
        self.stats = Stats()
        self._records: dict[str, dict[str, Record]] = {g: {} for g in _ID_FLOOR}
        self._eids: dict[str, dict[str, str]] = {g: {} for g in _ID_FLOOR}
        self._next_id: dict[str, int] = dict(_ID_FLOOR)
        self._indexes: dict[Hashable, tuple[tuple[int, ...], Any]] = {}  # see ``index``
        #: writes so far, per (group, record type) and (group, None); ``_writes`` in all
        self._versions: Counter[tuple[str, str | None]] = Counter()
        self._writes = 0
        #: ids written or deleted, per group, in order: what incremental views catch up on
        self._changed: dict[str, list[str]] = {g: [] for g in _ID_FLOOR}
        self._views: dict[Hashable, _View[Any]] = {}
        for emp in self.employees.values():  # employees are entities: they consume ids
            self._bump("entity", str(emp["id"]))
        for cust in seed.get("customers", []):
            fields = {_CUSTOMER_FIELDS.get(k, k): v for k, v in cust.items() if k != "id"}
            if "subsidiary" in fields and fields["subsidiary"] is not None:
                fields["subsidiary"] = {"id": str(fields["subsidiary"])}
            self.put(Record("customer", str(cust["id"]), fields), "entity")
        self._seed_balances(seed)

    def _seed_balances(self, seed: dict[str, Any]) -> None:
        """What the account held before go-live that POS tenders draw on: gift certificates
        sold earlier, and customers' open store credit (credit memos not yet applied)."""
        for cert in seed.get("gift_certificates", []):
            fields = {k: v for k, v in cert.items() if k != "id"}
            self.put(Record("giftCertificate", str(cert["id"]), fields), "giftcertificate")
        for memo in seed.get("credit_memos", []):
            fields = {k: v for k, v in memo.items() if k != "id"}
            fields["entity"] = {"id": str(fields["entity"])}
            self.put(Record("creditMemo", str(memo["id"]), fields), "transaction")

    # -- ids ---------------------------------------------------------------------------

    def _bump(self, group: str, record_id: str) -> None:
        if record_id.isdigit():
            self._next_id[group] = max(self._next_id[group], int(record_id) + 1)

    def new_id(self, group: str) -> str:
        """Allocate an internal id unique across the whole group."""
        value = self._next_id[group]
        self._next_id[group] = value + 1
        return str(value)

    # -- records -----------------------------------------------------------------------

    def put(self, record: Record, group: str) -> None:
        """Insert or replace a record and index its external id."""
        old = self._records[group].get(record.id)
        self._touch(group, record.type, None if old is None else old.type)
        self._changed[group].append(record.id)
        if old is not None and old.external_id:
            self._eids[group].pop(old.external_id.lower(), None)
        self._records[group][record.id] = record
        if record.external_id:
            self._eids[group][record.external_id.lower()] = record.id
        self._bump(group, record.id)

    def get(self, group: str, record_type: str, record_id: str) -> Record | None:
        """A record of this type by internal id (another type's id in the group is a miss)."""
        record = self._records[group].get(record_id)
        return record if record is not None and record.type == record_type else None

    def by_external_id(self, group: str, external_id: str) -> Record | None:
        """Any record of the group holding this external id (case-insensitive)."""
        record_id = self._eids[group].get(external_id.lower())
        return None if record_id is None else self._records[group][record_id]

    def delete(self, group: str, record: Record) -> None:
        self._touch(group, record.type)
        self._changed[group].append(record.id)
        self._records[group].pop(record.id, None)
        if record.external_id:
            self._eids[group].pop(record.external_id.lower(), None)

    def _touch(self, group: str, *record_types: str | None) -> None:
        self._writes += 1
        self._versions[(group, None)] += 1
        for record_type in {t for t in record_types if t is not None}:
            self._versions[(group, record_type)] += 1

    def index(self, key: Hashable, build: Callable[[Store], T],
              deps: Sequence[tuple[str, str | None]] | None = None) -> T:
        """``build(self)``, kept until a write it depends on: balances derived per record
        scan the store, so a SuiteQL query over N transactions would otherwise scan it N
        times. ``deps``: the (group, record type) pairs it reads (type None: the whole
        group); without them any write rebuilds it. Declaring them matters under steady
        load: a payments index rebuilt on every cashSale write made each write O(N)."""
        stamp = (self._writes,) if deps is None else tuple(self._versions[d] for d in deps)
        hit = self._indexes.get(key)
        if hit is None or hit[0] != stamp:
            hit = self._indexes[key] = (stamp, build(self))
        return hit[1]

    def records(self, group: str, record_type: str | None = None) -> list[Record]:
        """Records of a group (optionally one type), in id order; do not mutate the list.

        Kept in order as records are written (not sorted again after each write: the
        availability and status polls read every transaction while sales keep coming)."""
        def place(record: Record) -> list[tuple[Hashable, Record]]:
            return [((len(record.id), record.id), record)]
        view = self.view(("records", group, record_type), group, record_type, place)
        return view.ordered()

    def view(self, key: Hashable, group: str, record_type: str | None,
             contribute: Callable[[Record], list[tuple[Hashable, T]]],
             summing: bool = False) -> _View[T]:
        """An index of the records of ``group`` (of ``record_type``, or all): each record
        contributes ``(bucket, value)`` pairs. Brought up to date on each read from the
        ids written since, record by record, so its cost follows the writes, not the
        store's size: a payment's "applied by others" read after each payment write was
        a scan of every payment (quadratic over a soak). ``summing``: also keep each
        bucket's total (``totals``), for values that add up."""
        changed = self._changed[group]
        records = self._records[group]
        found = self._views.get(key)
        if found is None:
            found = self._views[key] = _View(contribute, summing)
            found.seen = len(changed)
            for rec in records.values():
                if record_type is None or rec.type == record_type:
                    found.add(rec)
            return found
        for rid in changed[found.seen:]:
            found.drop(rid)
            now = records.get(rid)
            if now is not None and (record_type is None or now.type == record_type):
                found.add(now)
        found.seen = len(changed)
        return found

    def transaction(self, record_id: str) -> Record | None:
        """Any transaction by internal id (ids are unique across the group)."""
        return self._records["transaction"].get(record_id)

    def created_from(self, source_id: str, record_type: str) -> list[Record]:
        """Transactions of ``record_type`` whose ``createdFrom`` points at ``source_id``,
        in id order."""
        def source(r: Record) -> list[tuple[Hashable, Record]]:
            found = (r.fields.get("createdFrom") or {}).get("id")
            return [] if found is None else [(str(found), r)]
        made = self.view(("created_from", record_type), "transaction", record_type, source)
        return sorted((r for rs in made.get(source_id).values() for r in rs),
                      key=lambda r: (len(r.id), r.id))

    def held(self) -> Counter[str]:
        """Records currently held, per type."""
        return Counter(r.type for group in self._records.values() for r in group.values())

    # -- reference data ----------------------------------------------------------------

    def customer(self, customer_id: str) -> Record | None:
        return self.get("entity", "customer", customer_id)

    def set_item(self, sku: str, active: bool) -> dict[str, Any]:
        """Add an item by SKU, or (de)activate an existing one; returns the item row."""
        for item in self.items.values():
            if str(item["itemid"]).lower() == sku.lower():
                item["isinactive"] = not active
                item["lastmodifieddate"] = now_utc().strftime("%Y-%m-%d %H:%M:%S")
                return item
        new_id = str(max((int(i) for i in self.items if i.isdigit()), default=1000) + 1)
        item = {"id": new_id, "itemid": sku, "displayname": sku, "itemtype": "InvtPart",
                "isinactive": not active, "basePrice": "0.00",
                "locations": sorted(self.locations),
                "lastmodifieddate": now_utc().strftime("%Y-%m-%d %H:%M:%S")}
        self.items[new_id] = item
        return item


class _View(Generic[T]):
    """Buckets of values, each remembered per contributing record so a rewrite of the
    record replaces its part (``Store.view``)."""

    def __init__(self, contribute: Callable[[Record], list[tuple[Hashable, T]]],
                 summing: bool = False) -> None:
        self.contribute = contribute
        self.summing = summing
        self.totals: dict[Hashable, Any] = {}
        self.seen = 0
        self.buckets: dict[Hashable, dict[str, list[T]]] = {}
        self._by_record: dict[str, list[Hashable]] = {}
        self._keys: list[Any] = []  # the buckets in order, kept by insertion
        self._ordered: list[T] | None = None

    def add(self, record: Record) -> None:
        pairs = self.contribute(record)
        self._by_record[record.id] = [bucket for bucket, _ in pairs]
        for bucket, value in pairs:
            held = self.buckets.get(bucket)
            if held is None:
                held = self.buckets[bucket] = {}
                bisect.insort(self._keys, bucket)
            held.setdefault(record.id, []).append(value)
            if self.summing:
                self.totals[bucket] = self.totals.get(bucket, 0) + value
        self._ordered = None

    def drop(self, record_id: str) -> None:
        for bucket in self._by_record.pop(record_id, ()):
            held = self.buckets.get(bucket)
            if held is not None:
                gone = held.pop(record_id, [])
                for value in gone if self.summing else ():
                    self.totals[bucket] -= value
                if not held:
                    del self.buckets[bucket]
                    self.totals.pop(bucket, None)
                    del self._keys[bisect.bisect_left(self._keys, bucket)]
                self._ordered = None

    def get(self, bucket: Hashable) -> dict[str, list[T]]:
        """The values in ``bucket``, per contributing record id."""
        return self.buckets.get(bucket, {})

    def ordered(self) -> list[T]:
        """Every value, in bucket order (buckets must be comparable)."""
        if self._ordered is None:
            self._ordered = [v for b in self._keys for vs in self.buckets[b].values()
                             for v in vs]
        return self._ordered
