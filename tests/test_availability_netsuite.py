"""The availability and order-status reads against the simulator over real HTTP: what
NetSuite reports per location (on hand, committed, available, on order, reorder point,
preferred level), the changes a NetSuite user makes (inventoryItem PATCH, an inventory
adjustment, a fulfilment transformed from a sales order, a cancellation), and which of them
the flows' incremental reads pick up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any, TypeVar

import httpx

from tillbridge.connectors.netsuite.auth import TbaSigner
from tillbridge.connectors.netsuite.client import NetSuiteClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.availability.orders import Cursor, changes
from tillbridge.streams.flows.availability import LevelsRead, read_levels, read_order_changes
from tillbridge.streams.flows.stamp import MODIFIED_FIELD
from tillbridge.streams.ledger.sale_records import SOURCE_FIELD
from tillbridge.streams.refdata.sync import STAMP

T = TypeVar("T")
REST = "/services/rest/record/v1"
SO = {"entity": {"id": "5001"}, "location": {"id": "1"}, "orderStatus": "B",
      "externalId": "pos-ord-WEB-1", "otherRefNum": "WEB-1",
      "item": {"items": [{"item": {"id": "1001"}, "quantity": 2, "rate": 10}]}}


def run(sim: SimServer, use: Callable[[NetSuiteClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with NetSuiteClient(sim.base_url, sim.credentials) as client:
            return await use(client)
    return asyncio.run(main())


def call(sim: SimServer, method: str, path: str, json: Any = None) -> httpx.Response:
    request = httpx.Request(method, sim.base_url + REST + path, json=json)
    request.headers["Authorization"] = TbaSigner(sim.credentials).authorization(
        method, str(request.url))
    with httpx.Client() as client:
        resp = client.send(request)
    assert resp.status_code < 300, resp.text
    return resp


def created(resp: httpx.Response) -> str:
    return resp.headers["Location"].rsplit("/", 1)[1]


def levels(sim: SimServer, cursor: str | None, pending: tuple[str, ...] = ()) -> LevelsRead:
    return run(sim, lambda c: read_levels(c, cursor, pending, "r1"))


def row(read: LevelsRead, location: str, item: str) -> Any:
    return next(lv for lv in read.levels if (lv.location, lv.item) == (location, item))


def test_full_read_then_incremental_sees_a_users_changes(sim: SimServer) -> None:
    full = levels(sim, None)
    assert full.full and len(full.levels) > 20
    tee = row(full, "1", "1001")
    assert (tee.on_hand, tee.committed, tee.available, tee.reorder_point) == \
        (D(25), D(0), D(25), None)
    time.sleep(1.05)  # stamps have whole seconds: the cursor after the seeding's second
    cursor = datetime.now(UTC).strftime(STAMP)
    assert levels(sim, cursor).levels == []  # nothing changed since
    # a NetSuite user sets the reorder point and preferred level on the item's Locations
    call(sim, "PATCH", "/inventoryItem/1001", {"locations": {"items": [
        {"location": {"id": "1"}, "reorderPoint": 10, "preferredStockLevel": 30}]}})
    # ... writes off 4 units of TEE-002 at S002 ...
    call(sim, "POST", "/inventoryAdjustment", {
        "account": {"id": "520"}, "adjLocation": {"id": "2"},
        "inventory": {"items": [{"item": {"id": "1002"}, "adjustQtyBy": -4}]}})
    # ... and a web order commits 2 x TEE-001 at S001
    call(sim, "POST", "/salesOrder", SO)
    inc = levels(sim, cursor, ("pos-sale-S001-NOT-POSTED",))
    assert not inc.full and inc.found == frozenset()
    assert {lv.item for lv in inc.levels} == {"1001", "1002"}
    tee = row(inc, "1", "1001")
    assert (tee.on_hand, tee.committed, tee.available) == (D(25), D(2), D(23))
    assert (tee.reorder_point, tee.preferred, tee.on_order) == (D(10), D(30), D(0))
    assert row(inc, "2", "1002").available == D(21)


def test_a_read_names_the_pending_records_netsuite_holds(sim: SimServer) -> None:
    call(sim, "POST", "/cashSale", {
        "entity": {"id": "5001"}, "location": {"id": "1"}, "paymentOption": {"id": "2"},
        "externalId": "pos-sale-S001-T1",
        "item": {"items": [{"item": {"id": "1001"}, "quantity": 1, "rate": 24.5}]}})
    read = levels(sim, None, ("pos-sale-S001-T1", "POS-SALE-S001-T2"))
    assert read.found == frozenset({"pos-sale-s001-t1"})


def order_changes(sim: SimServer, cursor: Cursor) -> list[Any]:
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime(STAMP)
    rows, orders = run(sim, lambda c: read_order_changes(c, since))
    fresh = cursor.fresh(changes(rows, orders))
    cursor.advance(fresh, since)
    return fresh


def test_order_changes_made_in_netsuite_are_read_once_and_told_apart(sim: SimServer) -> None:
    """tillbridge created the order, bills it (stamped) and closes what is left; a warehouse
    user fulfils it; a NetSuite user cancels another order."""
    so = created(call(sim, "POST", "/salesOrder", {**SO, SOURCE_FIELD: "pos.omnichannel.v1/0/7"}))
    call(sim, "POST", "/salesOrder", {**SO, "externalId": "someone-else", "otherRefNum": "X"})
    cursor = Cursor()
    first = order_changes(sim, cursor)
    assert [(c.order_id, c.status, c.by_tillbridge) for c in first] == \
        [("WEB-1", "pending_fulfillment", True)]  # created by tillbridge (stamped)
    ful = created(call(sim, "POST", f"/salesOrder/{so}/!transform/itemFulfillment",
                       {"inventoryLocation": {"id": "1"},
                        "item": {"items": [{"orderLine": 1, "quantity": 1}]}}))
    call(sim, "POST", f"/salesOrder/{so}/!transform/cashSale",
         {SOURCE_FIELD: "pos.omnichannel.v1/0/9", "externalId": "pos-ord-bill-1"})
    second = order_changes(sim, cursor)
    # the order's own status moves too: NetSuite derives it from the records made from it,
    # and it follows the order's last edit (here tillbridge's creation); the fulfilment
    # beside it says who fulfilled
    assert [(c.status, c.record_type, c.by_tillbridge) for c in second] == \
        [("partially_fulfilled", "salesorder", True), ("fulfilled", "itemfulfillment", False),
         ("billed", "cashsale", True)]
    assert second[1].record_id == ful and second[1].order_netsuite_id == so
    assert second[2].source_ref == "pos.omnichannel.v1/0/9"
    assert order_changes(sim, cursor) == []  # read again: nothing twice
    # tillbridge closes the rest of the order (its StampedClient stamps its PATCHes) ...
    now = datetime.now(UTC).strftime(STAMP)
    call(sim, "PATCH", f"/salesOrder/{so}", {"item": {"items": [{"line": 1, "isClosed": True}]},
                                            MODIFIED_FIELD: now})
    assert [(c.status, c.by_tillbridge) for c in order_changes(sim, cursor)] == \
        [("billed", True)]
    # ... while a NetSuite user cancels another POS order
    other = created(call(sim, "POST", "/salesOrder", {**SO, "externalId": "pos-ord-WEB-2",
                                                      "otherRefNum": "WEB-2"}))
    assert [c.status for c in order_changes(sim, cursor)] == ["pending_fulfillment"]
    call(sim, "PATCH", f"/salesOrder/{other}", {"orderStatus": "C"})
    assert [(c.order_id, c.status, c.by_tillbridge, c.source_ref)
            for c in order_changes(sim, cursor)] == [("WEB-2", "cancelled", False, None)]
