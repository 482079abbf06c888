"""An online order returned at a till: NetSuite's whole chain (returnAuthorization ->
itemReceipt -> creditMemo -> customerRefund), and the loyalty ledger. Pure builders
first, then the flows against the simulator over real HTTP with the project's client,
read back by GET and SuiteQL."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from tests.factories import (
    created,
    make_order,
    make_return,
    make_sale,
    post_cash_sale,
    return_line,
    run_client,
    sandbox_refdata,
)
from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.loyalty import balance, with_earned
from tillbridge.streams.flows.order import post_order_event
from tillbridge.streams.flows.returns import ReturnFlow, post_return
from tillbridge.streams.ledger import loyalty
from tillbridge.streams.ledger.order_records import F_LINE_NO, F_RETURNED, parse_order
from tillbridge.streams.ledger.return_chain import (
    RaLine,
    build_authorisation,
    build_credit,
    build_receipt,
    build_refund,
    match_order_lines,
    paid_back,
    pick_ra_lines,
)
from tillbridge.streams.ledger.types import Posting, Written
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich_order import OrderMappings, OrderRefs, resolve_order
from tillbridge.streams.stages.enrich_return import ReturnRefs, resolve_return

MAPS = Mappings.load()
REF = sandbox_refdata()
OMNI = OrderMappings(locations={"W001": "9"}, tax_jurisdictions={"CA-SF": "TAX-CA-SF"})
RTN = "S001-R04-000900"  # the till's return transaction


def order_refs(ev: dict[str, Any]) -> OrderRefs:
    out = resolve_order(ev, MAPS, REF, OMNI)  # type: ignore[arg-type]
    assert isinstance(out, OrderRefs), out
    return out


def online_return(method: str = "ORIGINAL_TENDER", **overrides: Any) -> dict[str, Any]:
    """make_order()'s WEB-1001 back at S001: one tee (resalable, restocked) and the
    TEE-002 (defective, disposed), refunded 48.87 to the VISA; 48 points taken back."""
    lines = [return_line(),
             return_line(line_no=2, original_line_no=2, sku="TEE-002", description=None,
                         unit_price=D("26.00"), refund_amount=D("26.00"),
                         tax_refund_amount=D("2.24"), condition="DEFECTIVE",
                         disposition="DISPOSE", reason_code="DEFECTIVE")]
    ret = make_return(pos_transaction_id=RTN, register_id="R04", lines=lines,
                      refund_method=method, refund_total=D("48.87"), net_refund=D("48.87"),
                      loyalty_points_reversed=48)
    ret["original"] = {"pos_transaction_id": None, "store_id": None, "register_id": None,
                       "business_date": None, "channel": "ONLINE", "online_order_id": "WEB-1001"}
    ret["customer"] = dict(make_order()["customer"])
    ret["refund_tenders"][0]["amount"] = D("48.87")
    if method == "STORE_CREDIT":
        ret["refund_tenders"] = []
    ret.update(overrides)
    return ret


def return_refs(ret: dict[str, Any]) -> ReturnRefs:
    refs = resolve_return(ret, MAPS, REF)  # type: ignore[arg-type]
    assert isinstance(refs, ReturnRefs), refs
    return refs


def picked_up() -> list[dict[str, Any]]:
    """The web order placed, then picked up (fulfilled and billed) at S001."""
    pickup = make_order(sequence=2, status="PICKED_UP", kind="FULFILLMENT", store_id="S001",
                        register_id="R02", pos_transaction_id="S001-R02-000777")
    for line in pickup["lines"]:
        line["quantity_fulfilled"] = line["quantity_ordered"]
    return [make_order(), pickup]


def returned_in_store() -> dict[str, Any]:
    """The order's own RETURN_IN_STORE event of the same till return."""
    ev = make_order(sequence=3, kind="RETURN_IN_STORE", status="RETURNED", store_id="S001",
                    register_id="R04", pos_transaction_id=RTN)
    for line in ev["lines"]:
        line["quantity_fulfilled"] = line["quantity_ordered"]
    ev["lines"][0].update(quantity_returned=D("1"), return_condition="RESALABLE")
    ev["lines"][1].update(quantity_returned=D("1"), return_condition="DEFECTIVE")
    return ev


# -- pure ------------------------------------------------------------------------------------

def _order_record() -> dict[str, Any]:
    return {"id": "700", "location": {"id": "1"}, "item": {"items": [
        {"line": 1, "item": {"id": "1001"}, "quantity": 2, "amount": 37.98, F_LINE_NO: 1},
        {"line": 2, "item": {"id": "1002"}, "quantity": 1, "amount": 26.0, F_LINE_NO: 2,
         F_RETURNED: 0}]}}


def test_chain_bodies_from_the_pos_return() -> None:
    ret = online_return()
    refs = return_refs(ret)
    assert (refs.original, refs.original_types) == ("pos-ord-WEB-1001", ("salesOrder",))
    order = parse_order(_order_record())
    matched = match_order_lines(ret, refs, order)  # type: ignore[arg-type]
    assert [so.line if so else None for so in matched] == [1, 2]
    ra = build_authorisation(ret, refs, order, matched)  # type: ignore[arg-type]
    assert ra["orderStatus"] == "B" and ra["location"] == {"id": "1"}
    assert [(ln["orderLine"], ln["quantity"], ln["location"]) for ln in ra["item"]["items"]] == \
        [(1, D("1.000"), {"id": "1"}), (2, D("1.000"), {"id": "1"})]
    assert ra["item"]["items"][1]["custcol_pos_return_condition"] == "DEFECTIVE/DISPOSE/DEFECTIVE"
    ra_lines = [RaLine(1, 1, "1001", D(1), 1), RaLine(2, 2, "1002", D(1), 2),
                RaLine(3, 9, "1003", D(1), 3)]
    picks = pick_ra_lines(matched, ra_lines)
    receipt = build_receipt(ret, refs, ra_lines, picks)  # type: ignore[arg-type]
    assert receipt["item"]["items"] == [
        {"orderLine": 1, "quantity": D("1.000"), "location": {"id": "1"}},
        {"orderLine": 2, "quantity": D("1.000"), "location": {"id": "1"}},
        {"orderLine": 3, "itemreceive": False}]
    credit = build_credit(ret, refs, ra_lines, picks)  # type: ignore[arg-type]
    assert [(ln["orderLine"], ln.get("amount")) for ln in credit["item"]["items"]] == \
        [(1, D("18.99")), (2, D("26.00")), (3, None)]
    assert credit["otherRefNum"] == RTN and credit["custbody_pos_transaction_id"] == RTN
    refund = build_refund(ret, refs, "812")  # type: ignore[arg-type]
    assert refund["apply"]["items"] == [{"doc": {"id": "812"}, "apply": True,
                                         "amount": D("48.87")}]
    assert refund["paymentOption"] == {"id": "2"}  # the VISA the POS paid back to


def test_what_the_pos_paid_back() -> None:
    assert paid_back(online_return()) == D("48.87")  # type: ignore[arg-type]
    assert paid_back(online_return("STORE_CREDIT")) == 0  # type: ignore[arg-type]
    even = online_return(net_refund=D("0.00"))
    assert paid_back(even) == 0  # type: ignore[arg-type]


def test_online_return_routes_with_its_order() -> None:
    assert ReturnFlow().route_key(online_return()) == b"WEB-1001"  # type: ignore[arg-type]
    assert ReturnFlow().route_key(make_return()) == b"S001-R01-000042"  # type: ignore[arg-type]


def test_loyalty_movements_are_signed_and_skip_walk_ins() -> None:
    earn = loyalty.movement(loyalty.EARN, 41, "5001", "4000", ("cashSale", "9"), "S001", "T1")
    rev = loyalty.movement(loyalty.REVERSE, 20, "5001", "4000", ("cashRefund", "10"),
                           "S001", "T1R", "LOY1")
    assert earn is not None and rev is not None
    assert (earn.points, earn.external_id) == (41, "pos-loy-earn-S001-T1")
    assert (rev.points, rev.external_id) == (-20, "pos-loy-rev-S001-T1R")
    body = loyalty.build_record(rev)
    assert body[loyalty.F_CUSTOMER] == {"id": "5001"} and body[loyalty.F_POINTS] == -20
    assert body[loyalty.F_TRANSACTION] == {"id": "10"} and body[loyalty.F_MOVEMENT] == "REVERSE"
    audit = loyalty.audit_record(rev, "77")
    assert audit["netsuite_id"] == "77" and audit["loyalty_id"] == "LOY1"
    for points, customer in ((None, "5001"), (0, "5001"), (5, None), (5, "4000")):
        assert loyalty.movement(loyalty.EARN, points, customer, "4000", ("cashSale", "9"),
                                "S001", "T1") is None


# -- against the simulator -------------------------------------------------------------------

def stats(sim: SimServer) -> dict[str, Any]:
    return httpx.get(sim.base_url + "/__sim/stats").json()["records"]


def get(sim: SimServer, record_type: str, id_or_eid: str) -> dict[str, Any]:
    return run_client(sim, lambda c: c.get(record_type, id_or_eid, expand=True))


def _post_orders(client: ReliableClient, *events: dict[str, Any]) -> Any:
    async def go() -> list[Any]:
        return [await post_order_event(client, ev, order_refs(ev))  # type: ignore[arg-type]
                for ev in events]
    return go()


def test_online_return_completes_the_chain_in_netsuite(sim: SimServer) -> None:
    ret = online_return()

    async def use(client: ReliableClient) -> Any:
        await _post_orders(client, *picked_up())
        return await post_return(client, ret, return_refs(ret))  # type: ignore[arg-type]

    posting = run_client(sim, use)
    assert isinstance(posting, Posting)
    kinds = [w.record_type for w in posting.records]
    assert kinds == ["returnAuthorization", "itemReceipt", "creditMemo", "customerRefund",
                     "inventoryAdjustment", loyalty.RECORD_TYPE]
    order = get(sim, "salesOrder", eid("pos-ord-WEB-1001"))
    ra = get(sim, "returnAuthorization", eid("pos-ra-WEB-1001-S001-S001-R04-000900"))
    receipt = get(sim, "itemReceipt", eid("pos-rcpt-S001-S001-R04-000900"))
    memo = get(sim, "creditMemo", eid("pos-rtn-S001-S001-R04-000900"))
    refund = get(sim, "customerRefund", eid("pos-rfd-S001-S001-R04-000900"))
    assert ra["createdFrom"]["id"] == order["id"] and ra["status"]["refName"] == "Refunded"
    assert receipt["createdFrom"]["id"] == ra["id"]
    assert {ln["location"]["id"] for ln in receipt["item"]["items"]} == {"1"}  # S001
    assert memo["createdFrom"]["id"] == ra["id"]
    assert D(str(memo["total"])) == ret["refund_total"]  # 48.87 to the cent
    assert D(str(refund["total"])) == sum(t["amount"] for t in ret["refund_tenders"])
    assert refund["apply"]["items"][0]["doc"]["id"] == memo["id"]
    assert refund["paymentOption"]["id"] == "2" and memo["status"]["refName"] == "Fully Applied"
    assert {ln[F_LINE_NO]: ln[F_RETURNED] for ln in order["item"]["items"]} == {1: 1, 2: 1}
    adj = get(sim, "inventoryAdjustment", eid("pos-disp-S001-S001-R04-000900"))
    assert [(ln["item"]["id"], ln["adjustQtyBy"]) for ln in adj["inventory"]["items"]] == \
        [("1002", -1.0)]  # the defective unit: received, then written off
    assert posting.audit and posting.audit[0].topic == "tillbridge.audit.loyalty.v1"

    before = created(sim)
    again = run_client(sim, lambda c: post_return(c, ret, return_refs(ret)))  # type: ignore
    assert isinstance(again, Posting) and not again.created and created(sim) == before
    # The order's own event of the same till return finds the same authorisation.
    (order_ev,) = run_client(sim, lambda c: _post_orders(c, returned_in_store()))
    assert isinstance(order_ev, Posting) and not order_ev.created and created(sim) == before


class CrashBefore(ReliableClient):
    """The worker dies just before writing ``target`` (once): what it wrote stays."""

    def __init__(self, inner: ReliableClient, target: str) -> None:
        self.__dict__.update(inner.__dict__)
        self.target = target

    async def transform_or_find(self, from_type: str, from_id: str, to_type: str,
                                external_id: str, body: dict[str, Any] | None = None
                                ) -> tuple[str, bool]:
        if to_type == self.target:
            raise NetSuiteUnavailable(f"killed before the {to_type}")
        return await super().transform_or_find(from_type, from_id, to_type, external_id, body)


@pytest.mark.parametrize("target", ["itemReceipt", "creditMemo", "customerRefund"])
def test_a_crash_mid_chain_resumes_without_doubles(sim: SimServer, target: str) -> None:
    ret = online_return()

    async def use(client: ReliableClient) -> Any:
        await _post_orders(client, *picked_up())
        with pytest.raises(NetSuiteUnavailable):
            await post_return(CrashBefore(client, target), ret,  # type: ignore[arg-type]
                              return_refs(ret))
        return await post_return(client, ret, return_refs(ret))  # type: ignore[arg-type]

    posting = run_client(sim, use)
    assert isinstance(posting, Posting)
    counts = created(sim)
    for record_type in ("returnAuthorization", "itemReceipt", "creditMemo", "customerRefund"):
        assert counts[record_type] == 1, counts
    memo = get(sim, "creditMemo", eid("pos-rtn-S001-S001-R04-000900"))
    assert memo["status"]["refName"] == "Fully Applied"


def test_store_credit_stops_at_the_credit_memo(sim: SimServer) -> None:
    ret = online_return("STORE_CREDIT")

    async def use(client: ReliableClient) -> Any:
        await _post_orders(client, *picked_up())
        return await post_return(client, ret, return_refs(ret))  # type: ignore[arg-type]

    posting = run_client(sim, use)
    assert isinstance(posting, Posting)
    assert "customerRefund" not in created(sim)
    memo = get(sim, "creditMemo", eid("pos-rtn-S001-S001-R04-000900"))
    assert memo["amountRemaining"] == 48.87  # the credit stays on the account


def test_order_event_first_then_the_pos_return_completes_its_authorisation(
        sim: SimServer) -> None:
    ret = online_return()

    async def use(client: ReliableClient) -> Any:
        *_, ra = await _post_orders(client, *picked_up(), returned_in_store())
        assert isinstance(ra, Posting) and ra.created
        return await post_return(client, ret, return_refs(ret))  # type: ignore[arg-type]

    posting = run_client(sim, use)
    assert isinstance(posting, Posting) and not posting.records[0].created
    assert created(sim)["returnAuthorization"] == 1
    assert created(sim)["customerRefund"] == 1


def test_loyalty_balance_is_earned_less_reversed(sim: SimServer) -> None:
    sale = make_sale(customer=dict(make_order()["customer"]), loyalty_points_earned=41)

    async def use(client: ReliableClient) -> int:
        sale_id = await post_cash_sale(client, sale, MAPS, REF)
        posting = Posting((Written("cashSale", sale_id, "pos-sale-S001-S001-R01-000042"),),
                          result={"customer_id": "5001"})
        earned = await with_earned(client, sale, posting, MAPS.guest_customer)  # type: ignore
        assert isinstance(earned, Posting) and len(earned.records) == 2
        again = await with_earned(client, sale, posting, MAPS.guest_customer)  # type: ignore
        assert isinstance(again, Posting) and not again.records[1].created
        ret = make_return(customer=dict(sale["customer"]), loyalty_points_reversed=18)
        await post_return(client, ret, return_refs(ret))  # type: ignore[arg-type]
        return await balance(client, "5001")

    assert run_client(sim, use) == 41 - 18
    assert stats(sim)[loyalty.RECORD_TYPE]["created"] == 2


def test_stamped_writes_leave_custom_records_unstamped(sim: SimServer) -> None:
    """The worker's client stamps transactions with their Kafka source; a custom record has
    no transaction body fields, and NetSuite refuses unknown ones."""
    from tillbridge.streams.flows.loyalty import write_movement
    from tillbridge.streams.flows.stamp import StampedClient

    async def use(client: ReliableClient) -> Any:
        sale_id = await post_cash_sale(client, make_sale(), MAPS, REF)
        m = loyalty.movement(loyalty.EARN, 5, "5001", MAPS.guest_customer,
                             ("cashSale", sale_id), "S001", "T-STAMP")
        assert m is not None
        return await write_movement(StampedClient(client, "pos.sale.v1/0/7"), m)

    written, audit = run_client(sim, use)
    assert written.created and audit.key == b"5001"
    assert "custbody_tillbridge_source" not in get(sim, loyalty.RECORD_TYPE, written.netsuite_id)


def test_generated_loyalty_and_online_returns_are_valid() -> None:
    """The POS generator: identified shoppers earn a point per whole unit paid; a return
    takes back at most what its sale earned; an online order's till return resolves."""
    from tillbridge.devstack.pos.followups import with_followups
    from tillbridge.devstack.pos.generator import generate
    from tillbridge.devstack.pos.orders import generate_orders

    stream = list(with_followups(generate(400, seed=3), seed=3, return_rate=0.3))
    sales = {e.value["pos_transaction_id"]: e.value for e in stream
             if e.topic.name == "pos.sale.v1"}
    for sale in sales.values():
        member = sale["customer"]["loyalty_id"] is not None
        assert sale["loyalty_points_earned"] == (int(sale["total"]) if member else None)
    returns = [e.value for e in stream if e.topic.name == "pos.return.v1"]
    reversing = [r for r in returns if r["loyalty_points_reversed"]]
    assert reversing, "some returns take points back"
    for ret in reversing:
        earned = sales[ret["original"]["pos_transaction_id"]]["loyalty_points_earned"]
        assert 0 < ret["loyalty_points_reversed"] <= earned
    online = [e.value for e in generate_orders(60, seed=3, return_rate=1.0)
              if e.topic.name == "pos.return.v1"]
    assert online
    for ret in online:
        assert ret["original"]["channel"] == "ONLINE"
        assert isinstance(resolve_return(ret, MAPS, REF), ReturnRefs)  # type: ignore[arg-type]
