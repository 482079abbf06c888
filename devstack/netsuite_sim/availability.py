"""Per-location availability as NetSuite reports it, and the item edits a NetSuite user
makes to it.

``aggregateitemlocation`` rows: on hand (seeded quantity moved by every stored
transaction, ``stock.py``), committed (open sales-order lines at that location not yet
fulfilled: lines neither closed nor on a cancelled order), available (on hand less
committed), on order, reorder point and preferred stock level (the item's Locations
sublist, kept on the item as ``levels``).

``PATCH /record/v1/inventoryItem/{id}`` edits that sublist as a user would
(``{"locations": {"items": [{"location": {"id": "1"}, "reorderPoint": 5,
"preferredStockLevel": 20}]}}``) and stamps the item's ``lastmodifieddate``; the sim keeps
items apart from its record store, so only this sublist is editable there.
``quantityOnOrder`` is accepted too (NetSuite derives it from purchase orders, which the sim
does not hold).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tillbridge.devstack.netsuite_sim.errors import SimError
from tillbridge.devstack.netsuite_sim.records import ref_id
from tillbridge.devstack.netsuite_sim.stock import as_quantity, stock_moves
from tillbridge.devstack.netsuite_sim.store import Store, now_utc

ITEM_PATH = "/services/rest/record/v1/inventoryItem/{id}"
#: Seeded on-hand quantity per stocked item/location unless the item's ``quantities`` says
#: otherwise; the transactions that move stock move it from there (``stock_moves``).
DEFAULT_QUANTITY = 25
COLUMNS = ("item", "location", "quantityavailable", "quantityonhand", "quantitycommitted",
           "quantityonorder", "reorderpoint", "preferredstocklevel")
#: Sublist fields a PATCH may set, and their SuiteQL columns.
LEVEL_FIELDS = {"reorderPoint": "reorderpoint", "preferredStockLevel": "preferredstocklevel",
                "quantityOnOrder": "quantityonorder"}
ZERO = Decimal(0)


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(str(value))


def committed(store: Store) -> dict[tuple[str, str], Decimal]:
    """Open sales-order quantity not yet fulfilled, per (item, location)."""
    fulfilled: dict[tuple[str, int], Decimal] = {}
    for ful in store.records("transaction", "itemFulfillment"):
        order = ref_id(ful.fields.get("createdFrom")) or ""
        for ln in (ful.fields.get("item") or {}).get("items", []):
            key = (order, ln.get("orderLine"))
            fulfilled[key] = fulfilled.get(key, ZERO) + _dec(ln.get("quantity"))
    out: dict[tuple[str, str], Decimal] = {}
    for so in store.records("transaction", "salesOrder"):
        if ref_id(so.fields.get("orderStatus")) == "C":
            continue
        for ln in (so.fields.get("item") or {}).get("items", []):
            item = ref_id(ln.get("item"))
            loc = ref_id(ln.get("location") or so.fields.get("location"))
            if ln.get("isClosed") or not item or not loc:
                continue
            left = _dec(ln.get("quantity")) - fulfilled.get((so.id, ln.get("line")), ZERO)
            if left > 0:
                out[(item, loc)] = out.get((item, loc), ZERO) + left
    return out


def item_location_rows(store: Store) -> list[dict[str, Any]]:
    moved = stock_moves(store)
    held = store.index("committed", committed,
                       [("transaction", "salesOrder"), ("transaction", "itemFulfillment")])
    out = []
    for i in store.items.values():
        levels = i.get("levels") or {}
        for loc in i.get("locations", []):
            key = (str(i["id"]), str(loc))
            seeded = Decimal(str((i.get("quantities") or {}).get(loc, DEFAULT_QUANTITY)))
            on_hand = seeded + moved.get(key, ZERO)
            row = {"item": i["id"], "location": loc, "quantityonhand": as_quantity(on_hand),
                   "quantitycommitted": as_quantity(held.get(key, ZERO)),
                   "quantityavailable": as_quantity(on_hand - held.get(key, ZERO)),
                   "quantityonorder": 0}
            row.update({col: levels.get(str(loc), {}).get(col) for col in LEVEL_FIELDS.values()
                        if levels.get(str(loc), {}).get(col) is not None})
            out.append(row)
    return out


def patch_levels(store: Store, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Apply a Locations sublist PATCH to an item; returns the item's levels."""
    item = store.items.get(item_id)
    if item is None:
        raise SimError(404, "NONEXISTENT_ID",
                       f"The record instance does not exist. Provide a valid record instance "
                       f"ID. inventoryItem {item_id}")
    lines = ((body.get("locations") or {}).get("items")) or []
    levels = item.setdefault("levels", {})
    for ln in lines:
        loc = ref_id(ln.get("location"))
        if loc is None or loc not in [str(x) for x in item.get("locations", [])]:
            raise SimError(400, "USER_ERROR", f"Invalid location reference key {loc}.")
        entry = levels.setdefault(loc, {})
        for field, col in LEVEL_FIELDS.items():
            if field in ln:
                entry[col] = None if ln[field] is None else as_quantity(Decimal(str(ln[field])))
    item["lastmodifieddate"] = now_utc().strftime("%Y-%m-%d %H:%M:%S")
    return levels


async def inventory_item(request: Request) -> Response:
    """``GET`` / ``PATCH`` ``/record/v1/inventoryItem/{id}`` (Locations sublist only)."""
    store: Store = request.app.state.sim.store
    item_id = request.path_params["id"]
    if request.method == "PATCH":
        raw = await request.body()
        patch_levels(store, item_id, json.loads(raw) if raw else {})
        return Response(status_code=204)
    item = store.items.get(item_id)
    if item is None:
        raise SimError(404, "NONEXISTENT_ID", f"inventoryItem {item_id} does not exist")
    rows = [r for r in item_location_rows(store) if str(r["item"]) == item_id]
    return JSONResponse({"id": item_id, "itemId": item["itemid"],
                         "locations": {"items": [{"location": {"id": str(r["location"])},
                                                  **{k: v for k, v in r.items()
                                                     if k not in ("item", "location")}}
                                                 for r in rows]}})
