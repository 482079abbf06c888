"""Custom records: the loyalty ledger's ``customrecord_tillbridge_loyalty``.

On a real account a custom record type is defined once (Customization > Lists, Records &
Fields > Record Types, or as a SuiteCloud object) and is then a REST record type named by
its script id: ``/record/v1/customrecord_tillbridge_loyalty``, with the usual verbs,
``eid:`` look-ups and upsert, and a SuiteQL table of the same name. Instances support
externalId (only the record *type* definition does not, reference §2.6); each custom
record type is its own id and externalId namespace, so the sim keeps it in a group of its
own. Fields are ``custrecord_*``; ``name`` is the standard name field.

The type here is the one ``streams/ledger/loyalty.py`` writes: one record per points
movement (earned on a sale, reversed on a return), linked to the customer and the
NetSuite transaction, and summed per customer by SuiteQL for the balance.
"""

from __future__ import annotations

from typing import Any

from tillbridge.devstack.netsuite_sim.errors import invalid_value, required
from tillbridge.devstack.netsuite_sim.records import (
    RecordType,
    check_names,
    normalize_ref,
    ref_id,
    to_decimal,
)
from tillbridge.devstack.netsuite_sim.store import Record, Store

LOYALTY = "customrecord_tillbridge_loyalty"
GROUP = "customrecord"
F_CUSTOMER = "custrecord_tb_loyalty_customer"
F_TRANSACTION = "custrecord_tb_loyalty_transaction"
F_POINTS = "custrecord_tb_loyalty_points"
F_MOVEMENT = "custrecord_tb_loyalty_movement"
#: free-text fields of the type (a real account makes each custom field a SuiteQL column)
F_TEXT = ("custrecord_tb_loyalty_pos_txn", "custrecord_tb_loyalty_store")
MOVEMENTS = frozenset({"EARN", "REVERSE"})
_FIELDS = frozenset({"externalId", "name", "isInactive", "id", "links", "created",
                     "lastModified"})


def validate_loyalty(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """A movement: an existing customer and transaction, whole non-zero points, a known
    movement type; custom fields beyond these (``custrecord_*``) are kept as sent."""
    check_names(body, _FIELDS, "", "custrecord")
    out = {k: v for k, v in body.items() if k not in ("id", "links", "created", "lastModified")}
    for key, label in ((F_CUSTOMER, "Customer"), (F_TRANSACTION, "Transaction"),
                       (F_POINTS, "Points"), (F_MOVEMENT, "Movement")):
        if out.get(key) is None:
            raise required(label, key)
    out[F_CUSTOMER] = normalize_ref(store, "customer", out[F_CUSTOMER], F_CUSTOMER)
    if store.customer(out[F_CUSTOMER]["id"]) is None:
        raise invalid_value(out[F_CUSTOMER]["id"], F_CUSTOMER, F_CUSTOMER)
    out[F_TRANSACTION] = normalize_ref(store, "transaction", out[F_TRANSACTION], F_TRANSACTION)
    if store.transaction(out[F_TRANSACTION]["id"]) is None:
        raise invalid_value(out[F_TRANSACTION]["id"], F_TRANSACTION, F_TRANSACTION)
    points = to_decimal(out[F_POINTS], F_POINTS)
    if points != points.to_integral_value() or points == 0:
        raise invalid_value(out[F_POINTS], F_POINTS, F_POINTS)
    out[F_POINTS] = int(points)
    if out[F_MOVEMENT] not in MOVEMENTS:
        raise invalid_value(out[F_MOVEMENT], F_MOVEMENT, F_MOVEMENT)
    out.setdefault("name", out.get("externalId") or f"{out[F_MOVEMENT]} {out[F_POINTS]}")
    out.setdefault("isInactive", False)
    return out


LOYALTY_TYPE = RecordType(LOYALTY, GROUP, validate_loyalty,
                          refs={F_CUSTOMER: "customer", F_TRANSACTION: "transaction"})

COLUMNS = ("id", "name", "externalid", "isinactive", F_CUSTOMER, F_TRANSACTION, F_POINTS,
         F_MOVEMENT, *F_TEXT, "created", "lastmodified")


def _stamp(record: Record, attr: str) -> str:
    return str(getattr(record, attr).strftime("%Y-%m-%d %H:%M:%S"))


def loyalty_rows(store: Store) -> list[dict[str, Any]]:
    """The SuiteQL table's rows (``suiteql.TABLES`` names it)."""
    out = []
    for rec in store.records(GROUP, LOYALTY):
        f = rec.fields
        out.append({"id": rec.id, "name": f.get("name"), "externalid": f.get("externalId"),
                    "isinactive": f.get("isInactive", False),
                    F_CUSTOMER: ref_id(f.get(F_CUSTOMER)),
                    F_TRANSACTION: ref_id(f.get(F_TRANSACTION)),
                    F_POINTS: f.get(F_POINTS), F_MOVEMENT: f.get(F_MOVEMENT),
                    **{name: f.get(name) for name in F_TEXT},
                    "created": _stamp(rec, "created"), "lastmodified": _stamp(rec, "modified")})
    return out
