"""Omnichannel orders into NetSuite: pure resolution/builders, then flows against the
simulator over real HTTP with the project's own client (``ReliableClient``)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from tests.factories import (
    created,
    make_order,
    make_sale,
    order_line,
    run_client,
    sandbox_refdata,
)
from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.order import post_order_event
from tillbridge.streams.ledger.ids import order_external_id, sale_id
from tillbridge.streams.ledger.order_records import (
    F_LINE_NO,
    F_ORDER_ID,
    F_RETURNED,
    F_SEQ,
    OrderPolicy,
    bill_external_id,
    build_sales_order,
    build_sales_order_from_sale,
    fulfilment_external_id,
    return_external_id,
)
from tillbridge.streams.ledger.sale_records import sale_external_id
from tillbridge.streams.ledger.types import Missing, Posting, Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich import enrich_sale
from tillbridge.streams.stages.enrich_order import (
    OrderMappings,
    OrderRefs,
    order_action,
    resolve_order,
)
from tillbridge.streams.stages.records import Rejection

MAPS = Mappings.load()
REF = sandbox_refdata()
OMNI = OrderMappings(locations={"W001": "9"},
                     tax_jurisdictions={"CA-SF": "TAX-CA-SF", "OR": "103"})
ORDER = "pos-ord-WEB-1001"


def refs(ev: dict[str, Any]) -> OrderRefs:
    out = resolve_order(ev, MAPS, REF, OMNI)  # type: ignore[arg-type]
    assert isinstance(out, OrderRefs), out
    return out


def post(sim: SimServer, *events: dict[str, Any],
         policy: OrderPolicy | None = None) -> list[Posting | Missing | Skipped]:
    async def use(client: ReliableClient) -> list[Posting | Missing | Skipped]:
        return [await post_order_event(client, ev, refs(ev), policy)  # type: ignore[arg-type]
                for ev in events]
    return run_client(sim, use)


def get(sim: SimServer, record_type: str, id_or_eid: str) -> dict[str, Any]:
    return run_client(sim, lambda c: c.get(record_type, id_or_eid, expand=True))


def stats(sim: SimServer) -> dict[str, Any]:
    return httpx.get(sim.base_url + "/__sim/stats").json()["records"]


def so_lines(sim: SimServer, order: str = ORDER) -> dict[int, dict[str, Any]]:
    """The order's lines by POS line number."""
    return {ln[F_LINE_NO]: ln for ln in get(sim, "salesOrder", eid(order))["item"]["items"]}


def event(seq: int, status: str, kind: str = "FULFILLMENT", *,
          fulfilled: tuple[str | None, ...] = (), **overrides: Any) -> dict[str, Any]:
    """A later event of make_order() with the lines' cumulative quantity_fulfilled."""
    ev = make_order(sequence=seq, status=status, kind=kind, **overrides)
    for line, qty in zip(ev["lines"], fulfilled, strict=False):
        line["quantity_fulfilled"] = None if qty is None else D(qty)
    return ev


def ship_order(**overrides: Any) -> dict[str, Any]:
    """Bought in store at S002, shipped from the central warehouse W001 (3 + 2 units)."""
    fields: dict[str, Any] = dict(
        order_id="POS-ORD-9", kind="SHIP_FROM_WAREHOUSE", order_channel="POS",
        store_id="S002", register_id="R03", pos_transaction_id="S002-R03-000500",
        original_pos_transaction_id="S002-R03-000500", pickup_store_id=None,
        fulfillment_location="W001", tax_jurisdiction="OR",
        ship_to={"name": "Ava Garcia", "line1": "1 Pearl St", "line2": None,
                 "city": "Portland", "region": "OR", "postal_code": "97209", "country": "US"},
        lines=[order_line(1, "TEE-001", "3", "19.99"), order_line(2, "TEE-002", "2", "26.00")])
    return make_order(**{**fields, **overrides})


def ship_event(seq: int, status: str, fulfilled: tuple[str, ...], **overrides: Any) -> dict:
    ev = ship_order(sequence=seq, status=status, kind="FULFILLMENT", **overrides)
    for line, qty in zip(ev["lines"], fulfilled, strict=True):
        line["quantity_fulfilled"] = D(qty)
    return ev


# -- pure: resolution and builders -----------------------------------------------------------

def test_resolve_bopis_books_to_the_pickup_store_with_the_jurisdiction_tax() -> None:
    r = refs(make_order())
    assert (r.location, r.subsidiary, r.items) == ("1", "1", ["1001", "1002"])
    assert r.line_locations == ["1", "1"]
    assert r.tax_codes == ["101", "101"]  # CA-SF mapped to TAX-CA-SF (id 101)
    assert r.customer.rule == "loyalty_id" and r.customer.id == "5001"


def test_resolve_mixed_fulfilment_and_unmapped_jurisdiction() -> None:
    ev = ship_order(tax_jurisdiction="TX-AUS",
                    lines=[order_line(1, "TEE-001", "1", "19.99"),
                           order_line(2, "TEE-002", "1", "26.00", fulfillment_location="S003",
                                      tax_code="TAX-OR")])
    r = refs(ev)
    assert r.location == "9" and r.line_locations == ["9", "3"]
    assert r.store_location == "2"  # the till that took the order
    assert r.tax_codes == ["101", "103"]  # no TX-AUS mapping: each line keeps its own code


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"fulfillment_location": "W404", "kind": "SHIP_FROM_WAREHOUSE", "pickup_store_id": None},
     "unknown_store"),
    ({"lines": [order_line(1, "NOPE-1")]}, "unknown_sku"),
    ({"pickup_store_id": None, "kind": "SHIP_FROM_STORE"}, "missing_location"),
    ({"tax_jurisdiction": None, "lines": [order_line(1, tax_code="TAX-XX")]},
     "unknown_tax_code"),
])
def test_resolve_rejections(overrides: dict[str, Any], reason: str) -> None:
    out = resolve_order(make_order(**overrides), MAPS, REF, OMNI)  # type: ignore[arg-type]
    assert isinstance(out, Rejection) and out.reason == reason, out


def test_actions_follow_kind_then_status() -> None:
    assert order_action(make_order()) == "place"  # type: ignore[arg-type]
    assert order_action(make_order(status="PICKED_UP")) == "fulfil"  # type: ignore[arg-type]
    assert order_action(make_order(kind="CANCEL")) == "cancel"  # type: ignore[arg-type]
    assert order_action(make_order(kind="X", status="Y")) is None  # type: ignore[arg-type]


def test_sales_order_body_is_exact_and_traceable() -> None:
    ev = ship_order(shipping_total=D("7.95"),
                    lines=[order_line(1, "TEE-001", "3", "19.99", discount_amount=D("1.00"))])
    body = build_sales_order(ev, refs(ev), "5001")  # type: ignore[arg-type]
    line = body["item"]["items"][0]
    assert line["amount"] == D("58.97") and isinstance(line["amount"], D)  # 59.97 - 1.00
    assert (line["rate"] * 3).quantize(D("0.01")) == D("58.97")
    assert body["orderStatus"] == "B" and body["location"] == {"id": "9"}
    assert body["otherRefNum"] == "POS-ORD-9" and body[F_ORDER_ID] == "POS-ORD-9"
    assert body["shippingAddress"]["zip"] == "97209"
    assert "shipping 7.95" in body["memo"] and "S002-R03-000500" in body["memo"]
    with_item = build_sales_order(ev, refs(ev), "5001",  # type: ignore[arg-type]
                                  OrderPolicy(shipping_item="2001"))
    assert with_item["item"]["items"][-1]["amount"] == D("7.95")
    assert "shippingAddress" not in build_sales_order(
        make_order(), refs(make_order()), "5001")  # type: ignore[arg-type]


def _taxed_order() -> dict[str, Any]:
    """make_order() with the OMS's own tax per line: 3.27 + 2.25 (NetSuite's per-line
    rounding at 8.625 % would give 3.28 + 2.24; same 5.52 in all)."""
    ev = make_order()
    ev["lines"][0]["tax_amount"], ev["lines"][1]["tax_amount"] = D("3.27"), D("2.25")
    return ev


def test_sales_order_books_the_orders_tax_in_legacy(sim: SimServer) -> None:
    """Legacy tax is NetSuite's per line from the code's rate. An OMS that rounds on the
    total (2 x 10.02 at 8.625 %: 1.73, where NetSuite's per-line rounding gives 0.86 + 0.86)
    still gets its tax and total: a cent of amount moves between the lines (ledger/tax.py)."""
    ev = make_order(lines=[order_line(1, "TEE-001", "1", "10.02", tax_amount=D("0.86")),
                           order_line(2, "TEE-002", "1", "10.02", tax_amount=D("0.87"))],
                    subtotal=D("20.04"), discount_total=D("0.00"), tax_total=D("1.73"),
                    total=D("21.77"))
    post(sim, ev)
    order = get(sim, "salesOrder", eid(ORDER))
    assert sum(D(str(ln["amount"])) for ln in order["item"]["items"]) == D("20.04")
    assert D(str(order["taxTotal"])) == ev["tax_total"]
    assert D(str(order["total"])) == ev["total"]


def test_sales_order_on_a_suitetax_subsidiary_carries_tax_details(sim: SimServer) -> None:
    """The simulator refuses a line tax code on a SuiteTax subsidiary (as NetSuite does):
    the order goes with taxDetails carrying the OMS's tax instead."""
    httpx.post(sim.base_url + "/__sim/reset").raise_for_status()
    sim.state.store.subsidiaries["2"] = {"id": "2", "name": "SuiteTax sub", "currency": "USD",
                                         "taxModel": "suiteTax"}
    sim.state.store.locations["1"]["subsidiary"] = "2"
    ev = _taxed_order()
    r = dataclasses.replace(refs(ev), subsidiary="2", tax_model="suitetax", tax_type="13")
    assert "taxCode" not in json.dumps(build_sales_order(ev, r, "5001")["item"],  # type: ignore
                                       default=str)
    result = run_client(sim, lambda c: post_order_event(c, ev, r))  # type: ignore[arg-type]
    assert isinstance(result, Posting) and result.created
    order = get(sim, "salesOrder", eid(ORDER))
    details = order["taxDetails"]["items"]
    assert [D(str(d["taxAmount"])) for d in details] == [D("3.27"), D("2.25")]
    assert D(str(order["taxTotal"])) == ev["tax_total"] and D(str(order["total"])) == ev["total"]


def test_order_records_are_dated_on_the_stores_business_day(sim: SimServer) -> None:
    """20:30 in Los Angeles is 04:30 UTC the next day: the order, its fulfilment and its
    bill are the store's day, as NetSuite holds them."""
    placed = make_order(occurred_at=datetime(2026, 11, 27, 4, 30, tzinfo=UTC))
    pickup = event(2, "PICKED_UP", "BOPIS", fulfilled=("2", "1"), store_id="S001",
                   register_id="R02", pos_transaction_id="S001-R02-000778",
                   occurred_at=datetime(2026, 11, 28, 5, 0, tzinfo=UTC))
    assert refs(placed).timezone == "America/Los_Angeles"
    post(sim, placed, pickup)
    assert get(sim, "salesOrder", eid(ORDER))["tranDate"] == "2026-11-26"
    assert get(sim, "itemFulfillment", eid("pos-ful-WEB-1001-2"))["tranDate"] == "2026-11-27"
    sale = get(sim, "cashSale", eid(sale_id("S001", "S001-R02-000778")))
    assert sale["tranDate"] == "2026-11-27"


def test_bill_id_is_the_pickup_till_transaction_else_order_derived() -> None:
    at_till = make_order(status="PICKED_UP", store_id="S001", pos_transaction_id="T9")
    assert bill_external_id(at_till) == sale_id("S001", "T9")  # type: ignore[arg-type]
    assert bill_external_id(make_order(sequence=4)) == \
        "pos-ord-WEB-1001-bill-4"  # type: ignore[arg-type]
    placing_txn = make_order(sequence=4, store_id="S001", pos_transaction_id="T1",
                             original_pos_transaction_id="T1")
    assert bill_external_id(placing_txn) == "pos-ord-WEB-1001-bill-4"  # type: ignore


def test_events_without_sequence_get_distinct_ids() -> None:
    a = make_order(sequence=0, event_id="e-1")
    b = make_order(sequence=0, event_id="e-2")
    assert fulfilment_external_id(a) != fulfilment_external_id(b)  # type: ignore[arg-type]
    assert return_external_id(a) == "pos-ra-WEB-1001-e-1"  # type: ignore[arg-type]
    assert fulfilment_external_id(make_order(fulfillment_id="F7")) == \
        "pos-ful-WEB-1001-F7"  # type: ignore[arg-type]


def test_refs_travel_as_json() -> None:
    r = refs(ship_order())
    assert OrderRefs.from_json(r.to_json()) == r


# -- flows against the simulator ---------------------------------------------------------------

def test_bopis_placed_then_picked_up_is_fulfilled_billed_and_linked(sim: SimServer) -> None:
    placed = make_order()
    pickup = event(2, "PICKED_UP", "BOPIS", fulfilled=("2", "1"), store_id="S001",
                   register_id="R02", pos_transaction_id="S001-R02-000777")
    first, second = post(sim, placed, pickup)
    assert isinstance(first, Posting) and first.created
    assert isinstance(second, Posting)
    assert [w.record_type for w in second.records] == ["itemFulfillment", "cashSale"]

    order = get(sim, "salesOrder", eid(ORDER))
    assert order["id"] == first.primary.netsuite_id
    assert order["orderStatus"]["id"] == "B" and order["location"]["id"] == "1"
    assert order["status"]["refName"] == "Billed"
    assert order[F_ORDER_ID] == "WEB-1001" and order[F_SEQ] == 2
    assert {ln["taxCode"]["id"] for ln in order["item"]["items"]} == {"101"}
    assert D(str(order["subtotal"])) == D("63.98")  # 2 x 19.99 - 2.00 + 26.00

    ful = get(sim, "itemFulfillment", eid("pos-ful-WEB-1001-2"))
    sale = get(sim, "cashSale", eid(sale_id("S001", "S001-R02-000777")))
    for record in (ful, sale):
        assert record["createdFrom"]["id"] == order["id"]
    assert {(ln["orderLine"], ln["quantity"]) for ln in ful["item"]["items"]} == {(1, 2), (2, 1)}
    assert ful["item"]["items"][0]["location"]["id"] == "1"
    assert D(str(sale["total"])) == D(str(order["total"]))
    assert "S001-R02-000777" in sale["memo"] and sale["otherRefNum"] == "WEB-1001"

    before = stats(sim)
    again = post(sim, placed, pickup)
    assert all(isinstance(p, Posting) and not p.created for p in again)
    assert stats(sim) == before  # a replay writes nothing at all


def test_ship_from_warehouse_two_partial_fulfilments_add_up(sim: SimServer) -> None:
    part1 = ship_event(2, "PARTIALLY_FULFILLED", ("1", "0"), fulfillment_id="F1",
                       carrier="UPS", tracking_number="1Z999")
    part2 = ship_event(3, "SHIPPED", ("3", "2"), fulfillment_id="F2")
    placed, r1, r2 = post(sim, ship_order(), part1, part2)
    assert isinstance(r1, Posting) and isinstance(r2, Posting)
    order = get(sim, "salesOrder", eid("pos-ord-POS-ORD-9"))
    assert order["location"]["id"] == "9" and order["shippingAddress"]["city"] == "Portland"
    f1 = get(sim, "itemFulfillment", eid("pos-ful-POS-ORD-9-F1"))
    f2 = get(sim, "itemFulfillment", eid("pos-ful-POS-ORD-9-F2"))
    assert [(ln["orderLine"], ln["quantity"]) for ln in f1["item"]["items"]] == [(1, 1)]
    assert [(ln["orderLine"], ln["quantity"]) for ln in f2["item"]["items"]] == [(1, 2), (2, 2)]
    assert "1Z999" in f1["memo"] and f1["inventoryLocation"]["id"] == "9"
    assert {ln["quantityFulfilled"] for ln in order["item"]["items"]} == {3, 2}
    assert order["status"]["refName"] == "Pending Billing"  # shipped, not billed on SHIPPED

    before = created(sim)
    third, late = post(sim, part2, part1)  # the same event again; then an older one
    assert isinstance(third, Posting) and not third.created
    assert third.primary.netsuite_id == r2.primary.netsuite_id
    assert isinstance(late, Skipped) and "older" in late.why
    assert created(sim) == before
    assert created(sim).get("cashSale", 0) == 0


def test_out_of_order_fulfilments_never_over_fulfil(sim: SimServer) -> None:
    part1 = ship_event(2, "PARTIALLY_FULFILLED", ("1", "0"), fulfillment_id="F1")
    part2 = ship_event(2, "SHIPPED", ("3", "2"), fulfillment_id="F2")  # same seq: no guard
    results = post(sim, ship_order(), part2, part1)
    assert isinstance(results[2], Skipped) and "nothing left" in results[2].why
    assert created(sim)["itemFulfillment"] == 1


def test_fulfilment_before_its_order_is_missing(sim: SimServer) -> None:
    (result,) = post(sim, event(2, "SHIPPED", fulfilled=("1", "1")))
    assert result == Missing(ORDER, ("salesOrder",), result.detail)  # type: ignore[union-attr]
    assert created(sim) == {}


def test_cancel_closes_the_remaining_lines(sim: SimServer) -> None:
    placed = ship_order()
    part = ship_event(2, "PARTIALLY_FULFILLED", ("1", "0"), fulfillment_id="F1")
    cancel = ship_order(sequence=3, kind="CANCEL", status="CANCELLED",
                        cancel_reason="CUSTOMER_REQUEST")
    *_, result = post(sim, placed, part, cancel)
    assert isinstance(result, Posting) and result.primary.links["changedLines"] == "1,2"
    order = get(sim, "salesOrder", eid("pos-ord-POS-ORD-9"))
    assert [ln["isClosed"] for ln in order["item"]["items"]] == [True, True]
    assert "CUSTOMER_REQUEST" in order["memo"] and order[F_SEQ] == 3

    updated = stats(sim)["salesOrder"]["updated"]
    post(sim, cancel)  # replay: the lines are already closed, nothing to send
    assert stats(sim)["salesOrder"]["updated"] == updated
    late = ship_event(4, "SHIPPED", ("3", "2"), fulfillment_id="F2")
    (after,) = post(sim, late)
    assert isinstance(after, Skipped)  # closed lines are never fulfilled
    with pytest.raises(NetSuiteError, match="initialize"):  # and NetSuite refuses it too
        run_client(sim, lambda c: c.transform_idempotent(
            "salesOrder", order["id"], "itemFulfillment", "pos-ful-x",
            {"inventoryLocation": {"id": "9"}, "item": {"items": [
                {"orderLine": 1, "quantity": 1}, {"orderLine": 2, "quantity": 1}]}}))


def test_partial_cancel_shrinks_a_line(sim: SimServer) -> None:
    cancel = ship_order(sequence=2, kind="CANCEL", status="PARTIALLY_FULFILLED",
                        lines=[order_line(1, "TEE-001", "3", "19.99",
                                          quantity_cancelled=D("1")),
                               order_line(2, "TEE-002", "2", "26.00")])
    post(sim, ship_order(), cancel)
    lines = so_lines(sim, "pos-ord-POS-ORD-9")
    assert (lines[1]["quantity"], lines[1].get("isClosed")) == (2, None)
    assert lines[1]["amount"] == 39.98 and lines[2]["quantity"] == 2


def test_modify_changes_lines_and_an_older_modify_is_skipped(sim: SimServer) -> None:
    placed = make_order()
    modify = make_order(sequence=3, kind="MODIFY", status="MODIFIED",
                        modification_note="size swap",
                        lines=[order_line(1, "TEE-001", "1", "19.99", discount_amount=D("1.00")),
                               order_line(3, "TEE-003", "2", "16.00")])
    stale = make_order(sequence=2, kind="MODIFY", status="MODIFIED",
                       lines=[order_line(1, "TEE-001", "5", "19.99")])
    _, changed, old = post(sim, placed, modify, stale)
    assert isinstance(changed, Posting) and isinstance(old, Skipped)
    lines = so_lines(sim)
    assert (lines[1]["quantity"], lines[1]["amount"]) == (1, 18.99)
    assert lines[2]["isClosed"] is True  # dropped from the order
    assert (lines[3]["item"]["id"], lines[3]["quantity"], lines[3]["location"]["id"]) == \
        ("1003", 2, "1")
    order = get(sim, "salesOrder", eid(ORDER))
    assert "size swap" in order["memo"] and order[F_SEQ] == 3


def test_allocation_moves_a_placed_order(sim: SimServer) -> None:
    allocated = ship_order(sequence=2, status="ALLOCATED", fulfillment_location="S003")
    first, second = post(sim, ship_order(), allocated)
    assert isinstance(second, Posting) and not second.created
    order = get(sim, "salesOrder", eid("pos-ord-POS-ORD-9"))
    assert order["location"]["id"] == "3"
    assert {ln["location"]["id"] for ln in order["item"]["items"]} == {"3"}
    assert created(sim) == {"salesOrder": 1}


def test_return_in_store_of_an_online_order(sim: SimServer) -> None:
    pickup = event(2, "PICKED_UP", "BOPIS", fulfilled=("2", "1"), store_id="S001",
                   pos_transaction_id="S001-R02-000777")

    def returned(seq: int, qty: str) -> dict[str, Any]:
        ev = make_order(sequence=seq, kind="RETURN_IN_STORE", status="RETURNED",
                        store_id="S002", register_id="R01", pos_transaction_id=f"RT-{seq}")
        ev["lines"][0].update(quantity_fulfilled=D("2"), quantity_returned=D(qty),
                              return_condition="RESALABLE", restock_location="S002")
        return ev

    *_, ra1 = post(sim, make_order(), pickup, returned(3, "1"))
    assert isinstance(ra1, Posting) and ra1.primary.record_type == "returnAuthorization"
    order = get(sim, "salesOrder", eid(ORDER))
    ra = get(sim, "returnAuthorization", eid("pos-ra-WEB-1001-S002-RT-3"))
    assert ra["createdFrom"]["id"] == order["id"] and ra["orderStatus"]["id"] == "B"
    assert ra["entity"]["id"] == "5001" and ra["location"]["id"] == "2"
    (line,) = ra["item"]["items"]
    assert (line["orderLine"], line["quantity"], line["location"]["id"]) == (1, 1, "2")
    assert line["custcol_pos_return_condition"] == "RESALABLE"
    assert line["rate"] == 18.99  # the net price paid, not the list price
    assert "RT-3" in ra["memo"] and so_lines(sim)[1][F_RETURNED] == 1

    before = created(sim)
    (replay,) = post(sim, returned(3, "1"))
    assert isinstance(replay, Posting) and not replay.created and created(sim) == before
    (ra2,) = post(sim, returned(4, "2"))  # cumulative 2: one more unit back
    assert isinstance(ra2, Posting) and ra2.created
    ra_b = get(sim, "returnAuthorization", eid("pos-ra-WEB-1001-S002-RT-4"))
    assert [ln["quantity"] for ln in ra_b["item"]["items"]] == [1]


def test_bill_as_invoice_for_prepaid_orders(sim: SimServer) -> None:
    pickup = event(2, "PICKED_UP", "BOPIS", fulfilled=("2", "1"))
    *_, result = post(sim, make_order(), pickup, policy=OrderPolicy(bill_type="invoice"))
    assert isinstance(result, Posting)
    bill = result.records[-1]
    assert (bill.record_type, bill.external_id) == ("invoice", "pos-ord-WEB-1001-bill-2")
    assert get(sim, "invoice", eid(bill.external_id))["createdFrom"]["id"] == \
        result.primary.links["createdFrom"]


def test_order_records_are_found_from_the_order_id(sim: SimServer) -> None:
    pickup = event(2, "PICKED_UP", "BOPIS", fulfilled=("2", "1"), store_id="S001",
                   pos_transaction_id="S001-R02-000777")
    post(sim, make_order(), pickup)
    rows = run_client(sim, lambda c: c.suiteql(
        "SELECT id, recordtype, externalid FROM transaction WHERE otherrefnum = 'WEB-1001'"))
    assert {r["recordtype"] for r in rows} == {"salesorder", "cashsale"}
    assert order_external_id("WEB-1001") in {r["externalid"] for r in rows}


def test_a_pos_sale_posted_as_a_sales_order(sim: SimServer) -> None:
    sale = make_sale()
    enr = enrich_sale(sale, MAPS, REF)  # type: ignore[arg-type]
    assert not isinstance(enr, Rejection), enr
    body = build_sales_order_from_sale(sale, enr, "5001", MAPS.discount_item)  # type: ignore
    assert "paymentOption" not in body and body["orderStatus"] == "B"
    so_id, was_new = run_client(sim, lambda c: c.create_or_find(
        "salesOrder", sale_external_id(sale), body))  # type: ignore[arg-type]
    order = get(sim, "salesOrder", so_id)
    assert was_new and order["externalId"] == sale_id("S001", "S001-R01-000042")
    items = [ln["item"]["id"] for ln in order["item"]["items"]]
    assert items[0] == "1001" and len(items) == 2  # the tee and its discount line
    assert D(str(order["subtotal"])) == D("37.98")


def test_pickup_without_line_quantities_hands_over_everything(sim: SimServer) -> None:
    pickup = make_order(sequence=2, status="PICKED_UP", fulfillment_id="P1")
    _, result = post(sim, make_order(), pickup)
    assert isinstance(result, Posting)
    ful = get(sim, "itemFulfillment", eid("pos-ful-WEB-1001-P1"))
    assert [(ln["orderLine"], ln["quantity"]) for ln in ful["item"]["items"]] == [(1, 2), (2, 1)]
    assert get(sim, "salesOrder", eid(ORDER))["status"]["refName"] == "Billed"


def test_a_new_shopper_becomes_a_customer_first(sim: SimServer) -> None:
    ev = make_order(customer={"customer_id": None, "loyalty_id": None,
                              "email": "new.shopper@example.com", "phone": None,
                              "first_name": "New", "last_name": "Shopper",
                              "anonymous_tag": None})
    assert refs(ev).customer.rule == "new_identified"
    (result,) = post(sim, ev)
    assert isinstance(result, Posting)
    customer = get(sim, "customer", eid("pos-cust-new.shopper@example.com"))
    assert result.primary.links["entity"] == customer["id"]
    assert get(sim, "salesOrder", eid(ORDER))["entity"]["id"] == customer["id"]
