"""The SuiteQL ``transaction`` and ``transactionline`` tables of the simulated account.

Rows are rendered per record, so a query that names a key column with ``=`` or ``IN``
(``id`` or ``externalid`` of a transaction, ``transaction`` of a line) renders only the
records it names. A full render of every transaction per query made the simulator's CPU
grow with the account: the availability poll asks for a few hundred externalIds at a time,
and at 14,000 transactions each such query rendered all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tillbridge.devstack.netsuite_sim.catalog import type_of
from tillbridge.devstack.netsuite_sim.records import Deriver
from tillbridge.devstack.netsuite_sim.store import Record, Store

Row = dict[str, Any]  # a value may be a zero-argument callable (see suiteql ``_resolve``)
#: key column -> the rows of the records holding one of the values
Keyed = Callable[[Store, frozenset[str]], list[Row]]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: Callable[[Store], list[Row]]
    keys: dict[str, Keyed] = field(default_factory=dict)


def stamp(record: Record, attr: str) -> str:
    """A record's created/modified time as SuiteQL renders it."""
    return getattr(record, attr).strftime("%Y-%m-%d %H:%M:%S")


#: Custom body fields queryable as transaction columns (as custbody fields are in SuiteQL).
POS_BODY_FIELDS = ("custbody_pos_store_id", "custbody_pos_register_id",
                   "custbody_pos_transaction_id", "custbody_tillbridge_source",
                   "custbody_tillbridge_modified", "custbody_tillbridge_receipts")
TRAN_COLS = ("id", "tranid", "trandate", "type", "recordtype", "entity", "status", "externalid",
             "location", "foreigntotal", "taxtotal", "memo", "otherrefnum", "account",
             "createddate", "lastmodifieddate", "foreignamountunpaid", *POS_BODY_FIELDS)
# Sublists that become transactionline rows: item lines, adjustment lines, journal lines
# and a bank deposit's other/cash-back lines. Apply-type sublists are links, not lines.
_LINE_SUBLISTS = ("item", "inventory", "line", "other", "cashback")
LINE_COLS = ("transaction", "id", "mainline", "item", "quantity", "rate", "netamount",
             "location", "entity", "account", "debit", "credit", "createdfrom")


def _transaction_row(store: Store, rec: Record) -> Row:
    rt, f = type_of(rec), rec.fields
    # Only status is derived (RecordType.derive): computed only if the query names it.
    state = partial(_derived, rt.derive, store, rec, "status") if rt.derive \
        else f.get("status")
    unpaid = partial(_derived, rt.derive, store, rec, "amountRemaining") if rt.derive \
        else None
    return {
        "id": rec.id, "tranid": f.get("tranId"), "trandate": f.get("tranDate"),
        "type": rt.tran_type, "recordtype": rec.type.lower(),
        "entity": f.get("entity") or f.get("customer"), "status": state,
        "externalid": f.get("externalId"), "location": f.get("location"),
        "foreigntotal": f.get("total"), "taxtotal": f.get("taxTotal"), "memo": f.get("memo"),
        "otherrefnum": f.get("otherRefNum"), "account": f.get("account"),
        "createddate": stamp(rec, "created"), "lastmodifieddate": stamp(rec, "modified"),
        "foreignamountunpaid": unpaid, **{c: f.get(c) for c in POS_BODY_FIELDS},
    }


def _derived(derive: Deriver, store: Store, rec: Record, name: str) -> Any:
    """A derived field (status; amountRemaining is ``foreignamountunpaid``), None if none."""
    return derive(store, rec).get(name)


def _line_rows(rec: Record) -> list[Row]:
    """A mainline row (id 0, as in NetSuite) for the transaction, then one row per line."""
    f = rec.fields
    entity = f.get("entity") or f.get("customer")
    out: list[Row] = [{"transaction": rec.id, "id": 0, "mainline": True, "entity": entity,
                       "netamount": f.get("total"), "location": f.get("location"),
                       "account": f.get("account"), "createdfrom": f.get("createdFrom")}]
    for name in _LINE_SUBLISTS:
        sublist = f.get(name)
        lines = sublist.get("items", []) if isinstance(sublist, dict) else []
        for ln in lines:
            out.append({
                "transaction": rec.id, "id": ln.get("line"), "mainline": False,
                "item": ln.get("item"), "quantity": ln.get("quantity", ln.get("adjustQtyBy")),
                "rate": ln.get("rate"),
                "netamount": ln.get("amount", ln.get("debit") or (
                    -ln["credit"] if ln.get("credit") else None)),
                "location": ln.get("location") or f.get("location"),
                "entity": ln.get("entity") or entity, "account": ln.get("account"),
                "debit": ln.get("debit"), "credit": ln.get("credit"),
                "createdfrom": f.get("createdFrom"),
            })
    return out


def _in_id_order(found: Iterable[Record | None]) -> list[Record]:
    """Records found by key, once each, in the id order a full scan yields."""
    unique = {r.id: r for r in found if r is not None}
    return sorted(unique.values(), key=lambda r: (len(r.id), r.id))


def _by_id(store: Store, values: frozenset[str]) -> list[Record]:
    return _in_id_order(store.transaction(v) for v in values)


def _by_external_id(store: Store, values: frozenset[str]) -> list[Record]:
    # the store matches externalIds case-insensitively; the query's own = / IN filter,
    # applied after, keeps SuiteQL's exact comparison
    return _in_id_order(store.by_external_id("transaction", v) for v in values)


TRANSACTION_TABLE = Table(
    TRAN_COLS, lambda store: [_transaction_row(store, r) for r in store.records("transaction")],
    {"id": lambda store, values: [_transaction_row(store, r) for r in _by_id(store, values)],
     "externalid": lambda store, values: [_transaction_row(store, r)
                                          for r in _by_external_id(store, values)]})
LINE_TABLE = Table(
    LINE_COLS, lambda store: [row for r in store.records("transaction") for row in _line_rows(r)],
    {"transaction": lambda store, values: [row for r in _by_id(store, values)
                                           for row in _line_rows(r)]})
