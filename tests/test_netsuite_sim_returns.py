"""The return chain in the simulator, in the order NetSuite enforces it (Advanced Receiving):
returnAuthorization approved -> itemReceipt at a location -> creditMemo of what was
received -> customerRefund of the credit; and the loyalty custom record with its SuiteQL
balance. Driven over HTTP with TBA-signed requests, read back by GET and SuiteQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_netsuite_sim_o2c import (
    CUST,
    LOC,
    SALES_ORDER,
    call,
    created,
    detail,
    get,
    post,
    transform,
)
from tillbridge.devstack.netsuite_sim import SimServer

LOYALTY = "customrecord_tillbridge_loyalty"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(async_delay_ms=5) as server:
        yield server


def _ra(sim: SimServer, approved: bool = True) -> tuple[str, str]:
    """A sales order and an RA of 2 of its 2 units on line 1 (line 2 left out)."""
    so = post(sim, "salesOrder", SALES_ORDER)
    body = {"orderStatus": "B" if approved else "A",
            "item": {"items": [{"orderLine": 1, "quantity": 2, "location": {"id": "2"}},
                               {"orderLine": 2, "quantity": 0}]}}
    return so, created(transform(sim, "salesOrder", so, "returnAuthorization", body))


def suiteql(sim: SimServer, q: str, *params: Any) -> list[dict[str, Any]]:
    resp = call(sim, "POST", "/query/v1/suiteql", {"q": q, "params": list(params)},
                headers={"Prefer": "transient"})
    assert resp.status_code == 200, resp.text
    return [{k: v for k, v in row.items() if k != "links"} for row in resp.json()["items"]]


def test_unapproved_authorisation_cannot_be_received(sim: SimServer) -> None:
    _, ra = _ra(sim, approved=False)
    resp = transform(sim, "returnAuthorization", ra, "itemReceipt")
    assert resp.status_code == 400
    err = detail(resp)
    assert err["o:errorCode"] == "USER_ERROR" and "initialize itemreceipt" in err["detail"]
    posted = call(sim, "POST", "/record/v1/itemReceipt",
                  {"createdFrom": {"id": ra}, "item": {"items": [{"orderLine": 1}]}})
    assert posted.status_code == 400 and "initialize itemreceipt" in detail(posted)["detail"]


def test_credit_needs_the_goods_received_first(sim: SimServer) -> None:
    _, ra = _ra(sim)
    assert get(sim, "returnAuthorization", ra)["status"]["refName"] == "Pending Receipt"
    for target in ("creditMemo", "cashRefund"):
        resp = transform(sim, "returnAuthorization", ra, target)
        assert resp.status_code == 400
        assert detail(resp)["o:errorCode"] == "USER_ERROR"
    # A credit posted directly against the RA is held to the same rule.
    direct = call(sim, "POST", "/record/v1/creditMemo",
                  {"entity": CUST, "location": LOC, "createdFrom": {"id": ra},
                   "item": {"items": [{"item": {"id": "1001"}, "orderLine": 1,
                                       "quantity": 1, "rate": 10}]}})
    assert direct.status_code == 400
    assert detail(direct)["o:errorPath"] == "item.items[0].quantity"


def test_receive_part_credit_part_then_the_rest(sim: SimServer) -> None:
    _, ra = _ra(sim)
    over = transform(sim, "returnAuthorization", ra, "itemReceipt",
                     {"item": {"items": [{"orderLine": 1, "quantity": 3}]}})
    assert over.status_code == 400 and detail(over)["o:errorPath"] == "item.items[0].quantity"
    nowhere = transform(sim, "returnAuthorization", ra, "itemReceipt",
                        {"item": {"items": [{"orderLine": 1, "quantity": 1,
                                             "location": {"id": "99"}}]}})
    assert nowhere.status_code == 400
    first = get(sim, "itemReceipt", created(transform(
        sim, "returnAuthorization", ra, "itemReceipt",
        {"item": {"items": [{"orderLine": 1, "quantity": 1}]}})))
    assert first["createdFrom"]["id"] == ra and first["entity"]["id"] == CUST["id"]
    assert [(ln["quantity"], ln["location"]["id"]) for ln in first["item"]["items"]] == \
        [(1.0, "2")]  # at the RA line's location
    assert get(sim, "returnAuthorization", ra)["status"]["refName"] == "Partially Received"
    memo = get(sim, "creditMemo", created(transform(sim, "returnAuthorization", ra,
                                                    "creditMemo")))
    assert [ln["quantity"] for ln in memo["item"]["items"]] == [1.0]  # only what came back
    assert memo["total"] == 10.0
    assert transform(sim, "returnAuthorization", ra, "creditMemo").status_code == 400
    created(transform(sim, "returnAuthorization", ra, "itemReceipt"))
    assert get(sim, "returnAuthorization", ra)["status"]["refName"] == "Pending Refund"
    assert transform(sim, "returnAuthorization", ra, "itemReceipt").status_code == 400
    memo2 = created(transform(sim, "returnAuthorization", ra, "creditMemo",
                              {"item": {"items": [{"orderLine": 1, "rate": 7.5}]}}))
    assert get(sim, "returnAuthorization", ra)["status"]["refName"] == "Refunded"
    refund = get(sim, "customerRefund", created(transform(
        sim, "creditMemo", memo2, "customerRefund",
        {"account": {"id": "110"}, "paymentOption": {"id": "1"},
         "apply": {"items": [{"doc": {"id": memo2}, "apply": True, "amount": 7.5}]}})))
    assert refund["total"] == 7.5 and refund["customer"]["id"] == CUST["id"]
    rows = suiteql(sim, "SELECT id, type, status FROM transaction WHERE recordtype = ?",
                   "itemreceipt")
    assert {r["type"] for r in rows} == {"ItemRcpt"}


def test_loyalty_record_idempotent_by_external_id_and_summed(sim: SimServer) -> None:
    sale = post(sim, "cashSale", {"entity": CUST, "location": LOC, "paymentOption": {"id": "2"},
                                  "item": {"items": [{"item": {"id": "1001"}, "rate": 10}]}})
    customer = "5003"
    earn = {"externalId": "pos-loy-earn-T1", "custrecord_tb_loyalty_customer": {"id": customer},
            "custrecord_tb_loyalty_transaction": {"id": sale},
            "custrecord_tb_loyalty_points": 120, "custrecord_tb_loyalty_movement": "EARN"}
    rid = created(call(sim, "POST", f"/record/v1/{LOYALTY}", earn))
    again = call(sim, "POST", f"/record/v1/{LOYALTY}", earn)
    assert again.status_code == 400 and "already exists" in detail(again)["detail"]
    put = call(sim, "PUT", f"/record/v1/{LOYALTY}/eid:pos-loy-earn-T1",
               {k: v for k, v in earn.items() if k != "externalId"})
    assert put.status_code == 204
    back = get(sim, LOYALTY, "eid:pos-loy-earn-T1")
    assert back["id"] == rid and back["custrecord_tb_loyalty_customer"]["id"] == customer
    assert back["custrecord_tb_loyalty_transaction"]["id"] == sale
    reverse = {**earn, "externalId": "pos-loy-rev-T1R", "custrecord_tb_loyalty_points": -45,
               "custrecord_tb_loyalty_movement": "REVERSE"}
    created(call(sim, "POST", f"/record/v1/{LOYALTY}", reverse))
    for bad, path in (({"custrecord_tb_loyalty_points": 1.5}, "custrecord_tb_loyalty_points"),
                      ({"custrecord_tb_loyalty_customer": {"id": "999"}},
                       "custrecord_tb_loyalty_customer"),
                      ({"custrecord_tb_loyalty_movement": "GIFT"},
                       "custrecord_tb_loyalty_movement")):
        resp = call(sim, "POST", f"/record/v1/{LOYALTY}", {**earn, "externalId": "x", **bad})
        assert resp.status_code == 400 and detail(resp)["o:errorPath"] == path
    rows = suiteql(sim, f"SELECT SUM(custrecord_tb_loyalty_points) AS balance, COUNT(*) AS n "
                   f"FROM {LOYALTY} WHERE custrecord_tb_loyalty_customer = ?", customer)
    assert rows == [{"balance": "75", "n": "2"}]
    assert suiteql(sim, f"SELECT SUM(custrecord_tb_loyalty_points) AS balance FROM {LOYALTY} "
                   "WHERE custrecord_tb_loyalty_customer = ?", "5004") == [{}]
