"""Order-to-cash in the simulator: record types, transforms, async + batch, injected faults.

Driven with the project's real ``NetSuiteClient`` where it has the call, and with raw
signed httpx for what it lacks (transforms, async jobs, batches, admin endpoints).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from tillbridge.connectors.netsuite.auth import TbaSigner
from tillbridge.connectors.netsuite.client import NetSuiteClient, id_from_location
from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.devstack.netsuite_sim import SimServer, create_app
from tillbridge.devstack.netsuite_sim.faults import Latency
from tillbridge.devstack.netsuite_sim.governance import SimConfig
from tillbridge.devstack.netsuite_sim.store import load_seed

T = TypeVar("T")
REST = "/services/rest"
CUST = {"id": "5001"}
LOC = {"id": "1"}
#: records the seed holds before any test writes (customers' store credit from before go-live)
SEEDED = {"creditMemo": len(load_seed()["credit_memos"])}
LINES = {"items": [{"item": {"id": "1001"}, "quantity": 2, "rate": 10},
                   {"item": {"id": "1002"}, "quantity": 1, "rate": 5}]}
CASH_SALE = {"entity": CUST, "location": LOC, "paymentOption": {"id": "2"}, "item": LINES}
SALES_ORDER = {"entity": CUST, "location": LOC, "orderStatus": "B", "item": LINES}
INVOICE = {"entity": CUST, "location": LOC, "item": LINES}
COLLECTION = "application/vnd.oracle.resource+json; type=collection"


# -- fixtures and helpers ----------------------------------------------------------------

@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(async_delay_ms=5) as sim:
        yield sim


def call(sim: SimServer, method: str, path: str, json: Any = None,
         headers: dict[str, str] | None = None, params: dict[str, Any] | None = None,
         timeout: float = 10.0) -> httpx.Response:
    """A TBA-signed request; ``path`` is below ``/services/rest`` unless it starts there."""
    url = sim.base_url + (path if path.startswith(REST) else REST + path)
    request = httpx.Request(method, url, json=json, params=params, headers=headers)
    request.headers["Authorization"] = TbaSigner(sim.credentials).authorization(
        method, str(request.url))
    with httpx.Client(timeout=timeout) as client:
        return client.send(request)


def run(sim: SimServer, use: Callable[[NetSuiteClient], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        async with NetSuiteClient(sim.base_url, sim.credentials, **kwargs) as client:
            return await use(client)
    return asyncio.run(main())


def admin(sim: SimServer, path: str, json: Any = None, method: str = "POST") -> Any:
    resp = httpx.request(method, sim.base_url + "/__sim/" + path, json=json)
    resp.raise_for_status()
    return resp.json()


def stats(sim: SimServer) -> dict[str, Any]:
    return httpx.get(sim.base_url + "/__sim/stats").json()


def detail(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) >= {"type", "title", "status", "o:errorDetails"}
    assert body["status"] == resp.status_code
    return body["o:errorDetails"][0]


def created(resp: httpx.Response) -> str:
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    return id_from_location(resp.headers["Location"])


def transform(sim: SimServer, src: str, src_id: str, target: str,
              body: dict[str, Any] | None = None) -> httpx.Response:
    return call(sim, "POST", f"/record/v1/{src}/{src_id}/!transform/{target}", body or {})


def get(sim: SimServer, rtype: str, rid: str) -> dict[str, Any]:
    resp = call(sim, "GET", f"/record/v1/{rtype}/{rid}", params={"expandSubResources": "true"})
    assert resp.status_code == 200, resp.text
    return resp.json()


def post(sim: SimServer, rtype: str, body: dict[str, Any]) -> str:
    return created(call(sim, "POST", f"/record/v1/{rtype}", body))


def poll(sim: SimServer, location: str, seconds: float = 3.0) -> dict[str, Any]:
    """Poll a job until completed; returns the job body."""
    deadline = time.monotonic() + seconds
    while True:
        job = call(sim, "GET", location).json()
        if job["completed"] or time.monotonic() > deadline:
            return job
        time.sleep(0.01)


# -- per-type bodies: async factories that create what each record needs first ---------------

Factory = Callable[[NetSuiteClient], Awaitable[dict[str, Any]]]


async def _so(c: NetSuiteClient) -> dict[str, Any]:
    return dict(SALES_ORDER)


async def _invoice(c: NetSuiteClient) -> dict[str, Any]:
    return dict(INVOICE)


async def _payment(c: NetSuiteClient) -> dict[str, Any]:
    inv = await c.create("invoice", INVOICE)
    return {"customer": CUST, "payment": 20, "paymentOption": {"id": "2"},
            "apply": {"items": [{"doc": {"id": inv}, "apply": True, "amount": 20}]}}


async def _cust_deposit(c: NetSuiteClient) -> dict[str, Any]:
    so = await c.create("salesOrder", SALES_ORDER)
    return {"customer": CUST, "salesOrder": {"id": so}, "payment": 10,
            "paymentOption": {"id": "1"}}


async def _credit_memo(c: NetSuiteClient) -> dict[str, Any]:
    return {"entity": CUST, "location": LOC, "item": LINES}


async def _cash_refund(c: NetSuiteClient) -> dict[str, Any]:
    sale = await c.create("cashSale", CASH_SALE)
    return {"entity": CUST, "location": LOC, "createdFrom": {"id": sale},
            "item": {"items": [{"item": {"id": "1001"}, "quantity": 1, "rate": 10}]}}


async def _cust_refund(c: NetSuiteClient) -> dict[str, Any]:
    memo = await c.create("creditMemo", await _credit_memo(c))
    return {"customer": CUST, "account": {"id": "110"},
            "apply": {"items": [{"doc": {"id": memo}, "apply": True, "amount": 12.5}]}}


async def _rma(c: NetSuiteClient) -> dict[str, Any]:
    sale = await c.create("cashSale", CASH_SALE)
    return {"entity": CUST, "location": LOC, "createdFrom": {"id": sale}, "item": LINES}


async def _fulfillment(c: NetSuiteClient) -> dict[str, Any]:
    so = await c.create("salesOrder", SALES_ORDER)
    return {"createdFrom": {"id": so}, "inventoryLocation": {"id": "2"},
            "item": {"items": [{"orderLine": 1, "quantity": 2}]}}


async def _adjustment(c: NetSuiteClient) -> dict[str, Any]:
    return {"account": {"id": "520"}, "adjLocation": {"id": "2"},
            "inventory": {"items": [{"item": {"id": "1001"}, "adjustQtyBy": -2},
                                    {"item": {"id": "1002"}, "location": {"id": "3"},
                                     "adjustQtyBy": 5, "unitCost": 4}]}}


async def _deposit(c: NetSuiteClient) -> dict[str, Any]:
    sale = await c.create("cashSale", CASH_SALE)
    return {"account": {"id": "110"}, "payment": {"items": [{"deposit": True, "id": sale}]},
            "other": {"items": [{"account": {"id": "620"}, "amount": 1.25}]}}


async def _journal(c: NetSuiteClient) -> dict[str, Any]:
    return {"subsidiary": {"id": "1"}, "memo": "store S001 Z-report",
            "line": {"items": [{"account": {"id": "120"}, "debit": 107.5},
                               {"account": {"id": "410"}, "credit": 100},
                               {"account": {"id": "230"}, "credit": 7.5}]}}


# (type, factory, sublist replaced on replay, body fields to expect on GET)
TYPES: list[tuple[str, Factory, str, dict[str, Any]]] = [
    ("salesOrder", _so, "item", {"total": 25.0, "status": "B"}),
    ("invoice", _invoice, "item", {"total": 25.0, "amountRemaining": 25.0}),
    ("customerPayment", _payment, "apply", {"payment": 20.0, "applied": 20.0}),
    ("customerDeposit", _cust_deposit, "", {"payment": 10.0, "status": "A"}),
    ("creditMemo", _credit_memo, "item", {"total": 25.0, "unapplied": 25.0}),
    ("cashRefund", _cash_refund, "item", {"total": 10.0}),
    ("customerRefund", _cust_refund, "apply", {"total": 12.5}),
    ("returnAuthorization", _rma, "item", {"total": 25.0, "status": "A"}),
    ("itemFulfillment", _fulfillment, "item", {"shipStatus": "C"}),
    ("inventoryAdjustment", _adjustment, "inventory", {"estimatedTotalValue": 20.0}),
    ("deposit", _deposit, "payment", {"total": 26.25}),
    ("journalEntry", _journal, "line", {"total": 107.5}),
]
TYPE_IDS = [t[0] for t in TYPES]


def _value(v: Any) -> Any:
    return v["id"] if isinstance(v, dict) and "id" in v else v


# -- every record type: create, GET shape, idempotent upsert ---------------------------------

@pytest.mark.parametrize(("rtype", "factory", "sublist", "expect"), TYPES, ids=TYPE_IDS)
def test_each_type_creates_reads_and_upserts_idempotently(
        sim: SimServer, rtype: str, factory: Factory, sublist: str,
        expect: dict[str, Any]) -> None:
    async def use(c: NetSuiteClient) -> tuple[str, dict, str | None, str | None, dict]:
        body = await factory(c)
        new_id = await c.create(rtype, body)
        record = await c.get(rtype, new_id, expand=True)
        # Records that consume their source (payment, fulfilment, banking) need a fresh one.
        fresh = rtype in ("customerPayment", "deposit", "itemFulfillment")
        replay = await factory(c) if fresh else body
        first = await c.upsert(rtype, f"EID-{rtype}", replay, replace=sublist or None)
        second = await c.upsert(rtype, f"eid-{rtype}", replay, replace=sublist or None)
        return new_id, record, first, second, await c.get(rtype, f"eid:EID-{rtype}")

    new_id, record, first, second, again = run(sim, use)
    assert record["id"] == new_id and new_id.isdigit()
    assert record["links"] == [{"rel": "self", "href":
                                f"{sim.base_url}{REST}/record/v1/{rtype}/{new_id}"}]
    assert record["createdDate"].endswith("Z") and record["tranId"] == new_id
    for key, value in expect.items():
        assert _value(record[key]) == value, key
    if sublist:
        assert record[sublist]["items"] and record[sublist]["count"] == len(
            record[sublist]["items"])
        assert again[sublist] == {"links": [{"rel": "self", "href": f"{sim.base_url}{REST}"
                                             f"/record/v1/{rtype}/{first}/{sublist}"}]}
    customer = record.get("entity") or record.get("customer")
    if customer is not None:
        assert customer["refName"] == "Sam Garcia"
    # Replayed upsert: one record, updated once.
    assert first == second == again["id"]
    counts = stats(sim)["records"][rtype]
    assert (counts["created"], counts["updated"], counts["held"] - SEEDED.get(rtype, 0)) == \
        (2, 1, 2)


# -- every record type: refused with NetSuite's error when a reference is missing ------------

REFUSALS: list[tuple[str, Factory, dict[str, Any], int, str, str]] = [
    ("salesOrder", _so, {"entity": {"id": "424242"}}, 400, "INVALID_CONTENT", "entity"),
    ("salesOrder", _so, {"item": {"items": [{"item": {"id": "1007"}}]}}, 400,
     "INVALID_CONTENT", "item.items[0].item"),
    ("invoice", _invoice, {"location": {"id": "77"}}, 400, "INVALID_CONTENT", "location"),
    ("customerPayment", _payment, {"apply": {"items": [{"doc": {"id": "99999"}}]}}, 400,
     "INVALID_CONTENT", "apply.items[0].doc"),
    ("customerPayment", _payment, {"entity": CUST}, 400, "INVALID_CONTENT", "entity"),
    ("customerPayment", _payment, {"customer": None}, 400, "USER_ERROR", "customer"),
    ("customerDeposit", _cust_deposit, {"salesOrder": {"id": "99999"}}, 400,
     "INVALID_CONTENT", "salesOrder"),
    ("customerDeposit", _cust_deposit, {"paymentOption": {"id": "99"}}, 400,
     "INVALID_CONTENT", "paymentOption"),
    ("creditMemo", _credit_memo, {"item": {"items": [{"item": {"id": "5"}}]}}, 400,
     "INVALID_CONTENT", "item.items[0].item"),
    ("cashRefund", _cash_refund, {"createdFrom": {"id": "99999"}}, 400, "INVALID_CONTENT",
     "createdFrom"),
    ("customerRefund", _cust_refund, {"apply": {"items": [{"doc": {"id": "99999"}}]}}, 400,
     "INVALID_CONTENT", "apply.items[0].doc"),
    ("returnAuthorization", _rma, {"entity": None}, 400, "USER_ERROR", "entity"),
    ("itemFulfillment", _fulfillment, {"createdFrom": {"id": "99999"}}, 400,
     "INVALID_CONTENT", "createdFrom"),
    ("itemFulfillment", _fulfillment, {"inventoryLocation": None}, 400, "USER_ERROR",
     "item.items[0].location"),
    ("inventoryAdjustment", _adjustment, {"account": None}, 400, "USER_ERROR", "account"),
    ("inventoryAdjustment", _adjustment, {"adjLocation": None}, 400, "USER_ERROR",
     "inventory.items[0].location"),
    ("inventoryAdjustment", _adjustment,
     {"inventory": {"items": [{"item": {"id": "1001"}, "location": LOC}]}}, 400,
     "USER_ERROR", "inventory.items[0].adjustQtyBy"),
    ("deposit", _deposit, {"payment": {"items": [{"deposit": True, "id": "99999"}]}}, 400,
     "INVALID_CONTENT", "payment.items[0].id"),
    ("deposit", _deposit, {"account": {"id": "130"}}, 400, "INVALID_CONTENT", "account"),
    ("journalEntry", _journal, {"line": {"items": [{"account": {"id": "110"}, "debit": 5},
                                                   {"account": {"id": "410"}, "credit": 4}]}},
     400, "USER_ERROR", "line"),
    ("journalEntry", _journal, {"line": {"items": [{"account": {"id": "9"}, "debit": 5},
                                                   {"account": {"id": "410"}, "credit": 5}]}},
     400, "INVALID_CONTENT", "line.items[0].account"),
]


@pytest.mark.parametrize(("rtype", "factory", "change", "status", "code", "path"), REFUSALS,
                         ids=[f"{r[0]}-{r[5]}" for r in REFUSALS])
def test_missing_references_are_refused(sim: SimServer, rtype: str, factory: Factory,
                                        change: dict[str, Any], status: int, code: str,
                                        path: str) -> None:
    async def use(c: NetSuiteClient) -> None:
        body = {k: v for k, v in {**(await factory(c)), **change}.items() if v is not None}
        await c.create(rtype, body)

    with pytest.raises(NetSuiteError) as info:
        run(sim, use)
    err = info.value
    assert (err.status, err.code, err.error_path) == (status, code, path), err
    assert err.permanent
    assert stats(sim)["records"].get(rtype, {}).get("held", 0) == SEEDED.get(rtype, 0)


# -- transforms and links ----------------------------------------------------------------------

def test_sales_order_fulfil_then_bill_links_everything(sim: SimServer) -> None:
    so = post(sim, "salesOrder", SALES_ORDER)
    refused = transform(sim, "salesOrder", so, "itemFulfillment")
    assert refused.status_code == 400
    assert detail(refused) == {"detail": "Please enter value(s) for: Inventory Location",
                               "o:errorCode": "USER_ERROR", "o:errorPath": "inventoryLocation"}
    # Nothing fulfilled yet: billing has nothing to bill.
    assert transform(sim, "salesOrder", so, "cashSale").status_code == 400

    resp = transform(sim, "salesOrder", so, "itemFulfillment",
                     {"inventoryLocation": {"id": "2"}, "memo": "first box",
                      "item": {"items": [{"orderLine": 2, "itemreceive": False}]}})
    assert resp.headers["Location"].startswith(f"{sim.base_url}{REST}/record/v1/itemFulfillment/")
    ful = get(sim, "itemFulfillment", created(resp))
    assert ful["createdFrom"]["id"] == so and ful["createdFrom"]["refName"].startswith("Sales")
    assert ful["entity"]["id"] == "5001" and ful["memo"] == "first box"
    assert [(ln["orderLine"], ln["quantity"], ln["location"]["id"])
            for ln in ful["item"]["items"]] == [(1, 2.0, "2")]
    order = get(sim, "salesOrder", so)
    assert order["status"]["refName"] == "Pending Billing/Partially Fulfilled"
    assert [ln["quantityFulfilled"] for ln in order["item"]["items"]] == [2.0, 0.0]

    sale = get(sim, "cashSale", created(transform(
        sim, "salesOrder", so, "cashSale", {"paymentOption": {"id": "2"}})))
    assert sale["createdFrom"]["id"] == so and sale["entity"]["id"] == "5001"
    assert [(ln["orderLine"], ln["quantity"]) for ln in sale["item"]["items"]] == [(1, 2.0)]
    assert sale["total"] == 20.0
    created(transform(sim, "salesOrder", so, "itemFulfillment", {"inventoryLocation": LOC}))
    created(transform(sim, "salesOrder", so, "invoice"))
    order = get(sim, "salesOrder", so)
    assert order["status"] == {"id": "G", "refName": "Billed"}
    assert [ln["quantityBilled"] for ln in order["item"]["items"]] == [2.0, 1.0]
    # Fully fulfilled: a further fulfillment cannot be initialised.
    again = transform(sim, "salesOrder", so, "itemFulfillment", {"inventoryLocation": LOC})
    assert again.status_code == 400 and "can not initialize" in detail(again)["detail"]
    rows = run(sim, lambda c: c.suiteql(
        "SELECT transaction, item, quantity FROM transactionline WHERE createdfrom = ? "
        "AND mainline = 'F'", params=[so]))
    assert len(rows) == 4
    stats_now = stats(sim)["transforms"]
    assert stats_now["by_pair"]["salesOrder->itemFulfillment"] == 2
    assert stats_now["total"] == 4


def test_unapproved_order_cannot_be_fulfilled(sim: SimServer) -> None:
    so = post(sim, "salesOrder", {**SALES_ORDER, "orderStatus": "A"})
    assert get(sim, "salesOrder", so)["status"]["refName"] == "Pending Approval"
    resp = transform(sim, "salesOrder", so, "itemFulfillment", {"inventoryLocation": LOC})
    assert resp.status_code == 400
    assert detail(resp)["detail"].endswith(
        f"You can not initialize itemfulfillment: invalid reference {so}.")
    assert call(sim, "PATCH", f"/record/v1/salesOrder/{so}", {"orderStatus": "B"}
                ).status_code == 204
    created(transform(sim, "salesOrder", so, "itemFulfillment", {"inventoryLocation": LOC}))


def test_returns_refunds_and_credits_chain(sim: SimServer) -> None:
    sale = post(sim, "cashSale", CASH_SALE)
    refund = get(sim, "cashRefund", created(transform(
        sim, "cashSale", sale, "cashRefund",
        {"memo": "changed mind", "item": {"items": [{"orderLine": 2, "quantity": 0}]}})))
    assert refund["createdFrom"]["id"] == sale and refund["memo"] == "changed mind"
    assert refund["paymentOption"]["id"] == "2" and refund["total"] == 20.0

    ra = created(transform(sim, "cashSale", sale, "returnAuthorization"))
    blocked = transform(sim, "returnAuthorization", ra, "creditMemo")
    assert blocked.status_code == 400  # pending approval
    call(sim, "PATCH", f"/record/v1/returnAuthorization/{ra}", {"orderStatus": "B"})
    unreceived = transform(sim, "returnAuthorization", ra, "creditMemo")
    assert unreceived.status_code == 400  # Advanced Receiving: goods first
    created(transform(sim, "returnAuthorization", ra, "itemReceipt"))
    memo = created(transform(sim, "returnAuthorization", ra, "creditMemo"))
    assert get(sim, "returnAuthorization", ra)["status"]["refName"] == "Refunded"
    cust_refund = get(sim, "customerRefund", created(transform(
        sim, "creditMemo", memo, "customerRefund", {"account": {"id": "110"}})))
    assert cust_refund["customer"]["id"] == "5001" and cust_refund["total"] == 25.0
    assert cust_refund["apply"]["items"][0]["doc"]["id"] == memo
    assert get(sim, "creditMemo", memo)["status"]["refName"] == "Fully Applied"
    # The memo is spent: refunding it again has nothing left to apply.
    assert transform(sim, "creditMemo", memo, "customerRefund").status_code == 400


def test_invoice_payment_credit_and_deposit_refund(sim: SimServer) -> None:
    inv = post(sim, "invoice", INVOICE)
    pay = get(sim, "customerPayment", created(transform(sim, "invoice", inv,
                                                        "customerPayment")))
    assert pay["customer"]["id"] == "5001" and pay["payment"] == 25.0
    assert pay["apply"]["items"][0]["doc"]["id"] == inv
    assert get(sim, "invoice", inv)["status"]["refName"] == "Paid In Full"
    overpay = call(sim, "POST", "/record/v1/customerPayment",
                   {"customer": CUST, "payment": 5,
                    "apply": {"items": [{"doc": {"id": inv}, "amount": 5}]}})
    assert overpay.status_code == 400 and detail(overpay)["o:errorPath"] == "apply.items[0].amount"

    inv2 = post(sim, "invoice", INVOICE)
    memo = get(sim, "creditMemo", created(transform(sim, "invoice", inv2, "creditMemo")))
    assert memo["apply"]["items"][0] == {**memo["apply"]["items"][0], "amount": 25.0,
                                         "apply": True}
    assert get(sim, "invoice", inv2)["amountRemaining"] == 0.0

    so = post(sim, "salesOrder", SALES_ORDER)
    dep = post(sim, "customerDeposit", {"customer": CUST, "salesOrder": {"id": so},
                                        "payment": 15})
    assert get(sim, "customerDeposit", dep)["salesOrder"]["id"] == so
    # The trap: a deposit is not a transform of the order.
    wrong = transform(sim, "salesOrder", so, "customerDeposit")
    assert wrong.status_code == 400 and detail(wrong)["o:errorCode"] == "INVALID_REQUEST"
    ref = get(sim, "customerRefund", created(transform(sim, "customerDeposit", dep,
                                                       "customerRefund")))
    assert ref["total"] == 15.0 and ref["deposit"]["items"] == []  # always empty on GET
    assert get(sim, "customerDeposit", dep)["status"]["refName"] == "Fully Applied"
    other = call(sim, "POST", "/record/v1/customerDeposit",
                 {"customer": {"id": "5002"}, "salesOrder": {"id": so}, "payment": 1})
    assert detail(other)["o:errorPath"] == "salesOrder"  # someone else's order


@pytest.mark.parametrize(("src", "target"), [("journalEntry", "invoice"),
                                             ("itemFulfillment", "cashSale"),
                                             ("cashSale", "invoice"),
                                             ("deposit", "customerRefund")])
def test_transform_outside_the_matrix_is_400(sim: SimServer, src: str, target: str) -> None:
    bodies = {"journalEntry": _journal, "itemFulfillment": _fulfillment,
              "cashSale": lambda c: asyncio.sleep(0, CASH_SALE), "deposit": _deposit}

    async def use(c: NetSuiteClient) -> str:
        return await c.create(src, await bodies[src](c))

    src_id = run(sim, use)
    resp = transform(sim, src, src_id, target)
    assert resp.status_code == 400
    assert detail(resp)["o:errorCode"] == "INVALID_REQUEST"
    assert stats(sim)["transforms"]["total"] == 0
    assert transform(sim, src, "99999", target).status_code in (400, 404)


def test_bank_deposit_banks_each_receipt_once(sim: SimServer) -> None:
    sale = post(sim, "cashSale", CASH_SALE)
    pay = post(sim, "customerPayment", {"customer": CUST, "payment": 40})
    direct = post(sim, "customerPayment", {"customer": CUST, "payment": 5,
                                           "account": {"id": "110"}})
    dep = post(sim, "deposit", {"account": {"id": "110"}, "payment": {"items": [
        {"deposit": True, "id": sale}, {"deposit": True, "id": pay}]},
        "cashback": {"items": [{"account": {"id": "620"}, "amount": 2}]}})
    assert get(sim, "deposit", dep)["total"] == 25.0 + 40 - 2
    assert get(sim, "cashSale", sale)["status"]["refName"] == "Deposited"
    assert get(sim, "customerPayment", pay)["status"]["refName"] == "Deposited"
    for receipt in (sale, direct):  # already banked / received straight into the bank
        again = call(sim, "POST", "/record/v1/deposit", {
            "account": {"id": "110"}, "payment": {"items": [{"deposit": True, "id": receipt}]}})
        assert detail(again)["o:errorPath"] == "payment.items[0].id"
    blocked = call(sim, "DELETE", f"/record/v1/cashSale/{sale}")
    assert blocked.status_code == 400 and "dependent" in detail(blocked)["detail"]
    assert call(sim, "DELETE", f"/record/v1/deposit/{dep}").status_code == 204
    assert call(sim, "DELETE", f"/record/v1/cashSale/{sale}").status_code == 204


def test_suiteql_sees_every_type_and_its_lines(sim: SimServer) -> None:
    async def use(c: NetSuiteClient) -> list[dict[str, Any]]:
        for rtype, factory, _, _ in TYPES:
            await c.create(rtype, await factory(c))
        return await c.suiteql("SELECT id, type, recordtype FROM transaction ORDER BY id",
                               limit=5)

    rows = run(sim, use)
    codes = {r["type"] for r in rows}
    assert codes == {"SalesOrd", "CustInvc", "CustPymt", "CustDep", "CustCred", "CashRfnd",
                     "CustRfnd", "RtnAuth", "ItemShip", "InvAdjst", "Deposit", "Journal",
                     "CashSale"}
    je = next(r["id"] for r in rows if r["type"] == "Journal")
    lines = run(sim, lambda c: c.suiteql(
        "SELECT account, debit, credit FROM transactionline WHERE transaction = ? "
        "AND mainline = 'F' ORDER BY id", params=[je]))
    assert lines == [{"account": "120", "debit": "107.5"}, {"account": "410", "credit": "100"},
                     {"account": "230", "credit": "7.5"}]
    adj_lines = run(sim, lambda c: c.suiteql(
        "SELECT item, quantity, location FROM transactionline WHERE mainline = 'F' AND "
        "transaction = ?", params=[next(r["id"] for r in rows if r["type"] == "InvAdjst")]))
    assert adj_lines == [{"item": "1001", "quantity": "-2", "location": "2"},
                         {"item": "1002", "quantity": "5", "location": "3"}]
    pays = run(sim, lambda c: c.suiteql(
        "SELECT id, entity, status FROM transaction WHERE type = 'CustPymt'"))
    assert pays and all(p["entity"] == "5001" and p["status"] == "B" for p in pays)


# -- async and batch ---------------------------------------------------------------------------

def test_async_create_job_task_result(sim: SimServer) -> None:
    resp = call(sim, "POST", "/record/v1/salesOrder", {**SALES_ORDER, "externalId": "A-1"},
                headers={"Prefer": "respond-async"})
    assert resp.status_code == 202 and resp.content == b""
    assert resp.headers["Preference-Applied"] == "respond-async"
    location = resp.headers["Location"]
    assert location.startswith("/services/rest/async/v1/job/")
    job = poll(sim, location)
    assert (job["completed"], job["progress"], job["id"]) == (True, "succeeded",
                                                              location.rsplit("/", 1)[1])
    assert job["task"]["links"][0]["href"].endswith(location + "/task")
    tasks = call(sim, "GET", location + "/task").json()
    assert tasks["count"] == 1 and tasks["items"][0]["id"] == "1"
    task = call(sim, "GET", location + "/task/1").json()
    assert task["progress"] == "succeeded" and task["completed"] is True
    assert task["links"][0] == {"rel": "related",
                                "href": f"{sim.base_url}{location}/task/1/result"}
    assert task["startTime"].endswith("Z") and task["endTime"].endswith("Z")
    result = call(sim, "GET", location + "/task/1/result")
    new_id = created(result)
    assert get(sim, "salesOrder", "eid:A-1")["id"] == new_id
    assert stats(sim)["async"]["jobs_succeeded"] == 1


def test_async_failure_and_idempotency_key(sim: SimServer) -> None:
    key = str(uuid.uuid4())
    headers = {"Prefer": "respond-async", "X-NetSuite-Idempotency-Key": key}
    bad = {**SALES_ORDER, "entity": {"id": "424242"}}
    first = call(sim, "POST", "/record/v1/salesOrder", bad, headers=headers)
    assert first.status_code == 202
    job = poll(sim, first.headers["Location"])
    assert job["progress"] == "failed"
    loc = first.headers["Location"]
    assert call(sim, "GET", loc + "/task/1").json()["progress"] == "failed"
    result = call(sim, "GET", loc + "/task/1/result")
    assert result.status_code == 400 and detail(result)["o:errorPath"] == "entity"

    dup = call(sim, "POST", "/record/v1/salesOrder", SALES_ORDER, headers=headers)
    assert dup.status_code == 400
    assert dup.headers["Location"] == loc
    body = dup.json()
    assert (body["title"], body["status"]) == ("Conflict", 400)
    assert body["type"].endswith("#sec10.4.10")
    assert body["o:errorDetails"][0]["o:errorCode"] == "IDEMPOTENCY_ERROR"
    # Synchronous requests ignore the key.
    assert call(sim, "POST", "/record/v1/salesOrder", SALES_ORDER,
                headers={"X-NetSuite-Idempotency-Key": key}).status_code == 204
    assert stats(sim)["async"]["idempotency_conflicts"] == 1
    assert call(sim, "GET", "/async/v1/job/999").status_code == 404


def test_batch_of_100_with_failing_items(sim: SimServer) -> None:
    items = []
    for n in range(100):
        line = {"item": {"id": "1007" if n % 25 == 3 else "1001"}, "quantity": 1}
        items.append({**CASH_SALE, "externalId": f"B-{n % 99}", "item": {"items": [line]}})
    headers = {"Prefer": "respond-async", "Content-Type": COLLECTION}
    resp = call(sim, "POST", "/record/v1/cashSale", {"items": items}, headers=headers)
    assert resp.status_code == 202
    job = poll(sim, resp.headers["Location"])
    assert job["progress"] == "finishedWithErrors"
    loc = resp.headers["Location"]
    tasks = call(sim, "GET", loc + "/task").json()
    assert tasks["count"] == 100
    outcomes = {n: call(sim, "GET", f"{loc}/task/{n + 1}/result") for n in range(100)}
    failed = {n for n, r in outcomes.items() if r.status_code != 204}
    assert failed == {3, 28, 53, 78, 99}  # inactive item x4, and B-0 reused by item 99
    assert detail(outcomes[3])["o:errorPath"] == "item.items[0].item"
    assert detail(outcomes[99])["detail"].endswith("This entity already exists.")
    assert stats(sim)["records"]["cashSale"]["held"] == 95

    # Replaying as an upsert batch keyed by externalId creates nothing new.
    replay = [{**i, "item": {"items": [{"item": {"id": "1001"}, "quantity": 1}]}}
              for i in items[:99]]
    resp = call(sim, "PUT", "/record/v1/cashSale", {"items": replay}, headers=headers,
                params={"replace": "item"})
    assert poll(sim, resp.headers["Location"])["progress"] == "succeeded"
    counts = stats(sim)["records"]["cashSale"]
    assert (counts["held"], counts["created"], counts["updated"]) == (99, 99, 95)
    assert stats(sim)["async"]["tasks"] == 199


def test_batch_limits_and_headers(sim: SimServer) -> None:
    headers = {"Prefer": "respond-async", "Content-Type": COLLECTION}
    too_many = call(sim, "POST", "/record/v1/cashSale", {"items": [CASH_SALE] * 101},
                    headers=headers)
    assert too_many.status_code == 400 and detail(too_many)["o:errorCode"] == "INVALID_REQUEST"
    sync = call(sim, "POST", "/record/v1/cashSale", {"items": [CASH_SALE]},
                headers={"Content-Type": COLLECTION})
    assert sync.status_code == 400
    ids = [post(sim, "journalEntry", run(sim, lambda c: _journal(c))) for _ in range(2)]
    resp = call(sim, "DELETE", "/record/v1/journalEntry", headers={"Prefer": "respond-async"},
                params={"ids": ",".join([*ids, "424242"])})
    assert poll(sim, resp.headers["Location"])["progress"] == "finishedWithErrors"
    assert stats(sim)["records"]["journalEntry"]["held"] == 0
    patch = call(sim, "PATCH", "/record/v1/cashSale",
                 {"items": [{"memo": "no key"}]}, headers=headers)
    assert poll(sim, patch.headers["Location"])["progress"] == "failed"
    result = call(sim, "GET", patch.headers["Location"] + "/task/1/result")
    assert (result.status_code, detail(result)["o:errorPath"]) == (400, "id")


# -- faults ------------------------------------------------------------------------------------

def test_commit_then_timeout_commits_but_client_times_out(sim: SimServer) -> None:
    admin(sim, "config", {"commit_then_timeout": 1, "timeout_after_commit_s": 1.5})
    body = {**CASH_SALE, "externalId": "CTT-1"}
    started = time.monotonic()
    with pytest.raises(NetSuiteError) as info:
        run(sim, lambda c: c.create("cashSale", body), timeout=0.3)
    assert info.value.code == "TIMEOUT" and info.value.status is None
    assert time.monotonic() - started < 1.4  # the client gave up, not the server
    # The record is there: a retry must look it up (or upsert), not post again.
    assert run(sim, lambda c: c.get("cashSale", "eid:CTT-1"))["externalId"] == "CTT-1"
    again = call(sim, "POST", "/record/v1/cashSale", body)
    assert detail(again)["detail"].endswith("already exists.")
    st = stats(sim)
    assert st["faults"]["commit_then_timeout"] == 1
    assert st["records"]["cashSale"]["held"] == 1
    assert st["concurrency"]["in_flight"] == 0


def test_commit_then_timeout_drops_a_patient_client(sim: SimServer) -> None:
    admin(sim, "config", {"commit_then_timeout_rate": 1.0, "timeout_after_commit_s": 0.2})
    with pytest.raises(NetSuiteError) as info:
        run(sim, lambda c: c.upsert("journalEntry", "J-1", {
            "subsidiary": {"id": "1"}, "line": {"items": [
                {"account": {"id": "110"}, "debit": 1}, {"account": {"id": "410"},
                                                          "credit": 1}]}}), timeout=5)
    assert info.value.status is None and info.value.retryable
    assert stats(sim)["records"]["journalEntry"]["held"] == 1
    admin(sim, "config", {"commit_then_timeout_rate": 0})
    assert call(sim, "GET", "/record/v1/journalEntry/eid:J-1").status_code == 200


def test_outage_window(sim: SimServer) -> None:
    admin(sim, "outage", {"seconds": 30})
    resp = call(sim, "GET", "/record/v1/customer/5001")
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 29
    assert detail(resp)["o:errorCode"] == "SERVICE_UNAVAILABLE"
    q = call(sim, "POST", "/query/v1/suiteql", {"q": "SELECT id FROM item"},
             headers={"Prefer": "transient"})
    assert q.status_code == 503
    with pytest.raises(NetSuiteError) as info:
        run(sim, lambda c: c.create("cashSale", CASH_SALE))
    assert info.value.status == 503 and info.value.retryable
    st = stats(sim)
    assert st["outage"]["active"] and st["faults"]["outage"] == 3
    assert "cashSale" not in st["records"]
    assert admin(sim, "outage", method="DELETE")["active"] is False
    assert call(sim, "GET", "/record/v1/customer/5001").status_code == 200
    # A short window ends by itself; also settable through /__sim/config.
    admin(sim, "config", {"outage_s": 0.2})
    assert call(sim, "GET", "/record/v1/customer/5001").status_code == 503
    time.sleep(0.25)
    assert call(sim, "GET", "/record/v1/customer/5001").status_code == 200


def test_error_rate_is_about_the_configured_share_and_seeded(sim: SimServer) -> None:
    def statuses() -> list[int]:
        async def use(c: NetSuiteClient) -> list[int]:
            out = []
            for _ in range(200):
                try:
                    await c.get("customer", "5001")
                    out.append(200)
                except NetSuiteError as exc:
                    assert exc.code == "UNEXPECTED_ERROR" and exc.retryable
                    out.append(exc.status or 0)
            return out
        return run(sim, use)

    admin(sim, "config", {"error_rate": 0.3, "seed": 7})
    first = statuses()
    share = first.count(500) / len(first)
    assert 0.2 <= share <= 0.4, share
    assert set(first) == {200, 500}
    assert stats(sim)["faults"]["error_rate"] == first.count(500)
    admin(sim, "reset")
    admin(sim, "config", {"error_rate": 0.3, "seed": 7})
    assert statuses() == first  # same seed, same failures
    admin(sim, "config", {"error_rate": 0})
    assert statuses().count(500) == 0


def test_slow_suiteql_only_slows_queries(sim: SimServer) -> None:
    admin(sim, "config", {"slow_suiteql_ms": 250})
    started = time.monotonic()
    call(sim, "GET", "/record/v1/customer/5001")
    fast = time.monotonic() - started
    started = time.monotonic()
    assert call(sim, "POST", "/query/v1/suiteql", {"q": "SELECT id FROM item"},
                headers={"Prefer": "transient"}).status_code == 200
    assert time.monotonic() - started >= 0.25 > fast


def test_latency_distributions() -> None:
    for dist, low, high in (("uniform", 50, 150), ("normal", 0, 400), ("exponential", 100, 1e9)):
        config = SimConfig(latency_ms=100, latency_jitter_ms=50, latency_distribution=dist)
        lat = Latency(config, random.Random(1))
        samples = [lat.sample_ms() for _ in range(2000)]
        assert all(low <= s <= high for s in samples), dist
        mean = sum(samples) / len(samples)
        expected = 150 if dist == "exponential" else 100
        assert abs(mean - expected) < 8, (dist, mean)
        assert len({round(s, 3) for s in samples}) > 1000


def test_config_is_validated_and_flags_reach_the_app(sim: SimServer) -> None:
    for bad in ({"error_rate": 2}, {"latency_distribution": "zipf"}, {"nope": 1},
                {"timeout_after_commit_s": -1}):
        assert httpx.post(sim.base_url + "/__sim/config", json=bad).status_code == 400
    assert stats(sim)["config"]["error_rate"] == 0.0
    app = create_app(error_rate=0.25, latency_jitter_ms=5, commit_then_timeout=3,
                     outage_s=60, slow_suiteql_ms=10, seed=3)
    state = app.state.sim
    assert (state.config.error_rate, state.config.commit_then_timeout_count,
            state.config.seed) == (0.25, 3, 3)
    assert state.outage.remaining() > 50
    app = create_app(commit_then_timeout=0.5)
    assert app.state.sim.config.commit_then_timeout_rate == 0.5


def test_stats_keep_their_shape_and_add_counters(sim: SimServer) -> None:
    post(sim, "salesOrder", SALES_ORDER)
    call(sim, "GET", "/record/v1/salesOrder/1")
    st = stats(sim)
    assert set(st) >= {"records", "requests", "concurrency", "config", "async", "transforms",
                       "faults"}
    assert st["records"]["salesOrder"] == {"created": 1, "updated": 0, "deleted": 0,
                                           "held": 1}
    assert st["requests"]["by_status"] == {"204": 1, "404": 1}
    assert set(st["concurrency"]) == {"in_flight", "peak", "limit"}
    assert set(st["faults"]) >= {"error_rate", "outage", "commit_then_timeout",
                                 "concurrency_limit"}
    assert st["async"]["jobs"] == 0 and st["transforms"] == {"total": 0, "by_pair": {}}


def test_concurrency_limit_keeps_netsuite_body(sim: SimServer) -> None:
    admin(sim, "config", {"concurrency_limit": 1, "latency_ms": 200})

    async def use(c: NetSuiteClient) -> list[Any]:
        return await asyncio.gather(c.get("customer", "5001"), c.get("customer", "5002"),
                                    return_exceptions=True)

    results = run(sim, use, max_connections=2)
    errors = [r for r in results if isinstance(r, NetSuiteError)]
    assert len(errors) == 1
    assert (errors[0].status, errors[0].code, errors[0].title) == (
        429, "CONCURRENCY_LIMIT_EXCEEDED", "Bad Request")
    assert stats(sim)["faults"]["concurrency_limit"] == 1
