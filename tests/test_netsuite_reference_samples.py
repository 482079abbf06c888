"""The NetSuite reference's documented samples, sent to the simulator as Oracle wrote them.

Each test replays a sample request or exchange from the reference (section in the test
name or docstring) over real HTTP with TBA signing, and checks that the simulator accepts
it and answers in the documented shape: status, headers (``Location``,
``Preference-Applied``), envelope keys, values.

Oracle's sample ids do not exist in the seed account (``connectors/data/sandbox.json``)
and are swapped for seed ids, nothing else: customers 217/123/110/164/4/6 -> 5001,
items 143/456/98/5/20 -> 1001 (1002 for a second line), subsidiary 36 -> 1, tax code 7 ->
101 (8.625 %), locations 6 -> 1 (5 exists and is kept), accounts: cash refund 155 and bank
deposit 1 -> 110 (Operating Bank), customer payment 1 -> 120 (Undeposited Funds),
inventory adjustment 1 -> 520 (Inventory Shrinkage), journal 58/4 -> 620/110, currency 3
-> 1; document ids (``doc``, deposit ``id``) -> records the test creates first. The seed
account has "Make Locations Mandatory" on, so samples that name no location get
``"location": {"id": "1"}`` (``test_a_sample_without_location_meets_the_preference``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tillbridge.connectors.netsuite.auth import TbaSigner
from tillbridge.devstack.netsuite_sim import SimServer

REST = "/services/rest"
RFC = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
ERROR_TYPE = "application/vnd.oracle.resource+json; type=error"
SINGULAR = "application/vnd.oracle.resource+json; type=singular"
COLLECTION = "application/vnd.oracle.resource+json; type=collection"
LOC = {"id": "1"}
INVALID_LOGIN = ("Invalid login attempt. For more details, see the Login Audit Trail in the "
                 "NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.")


# -- helpers ----------------------------------------------------------------------------------

def call(sim: SimServer, method: str, path: str, json: Any = None, *,
         headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
         content: str | bytes | None = None, sign: bool = True) -> httpx.Response:
    """A TBA-signed request to an absolute URL (a link the sim gave) or a path, which is
    below ``/services/rest`` unless it starts there."""
    if path.startswith("http"):
        url = path
    else:
        url = sim.base_url + (path if path.startswith(REST) else REST + path)
    request = httpx.Request(method, url, json=json, params=params, headers=headers,
                            content=content)
    if sign:
        request.headers["Authorization"] = TbaSigner(sim.credentials).authorization(
            method, str(request.url))
    with httpx.Client(timeout=10.0) as client:
        return client.send(request)


def created(sim: SimServer, resp: httpx.Response, record_type: str) -> str:
    """§9.1: 204, no body, ``Location`` = absolute URL of the new record; returns its id."""
    assert resp.status_code == 204, resp.text
    assert resp.content == b""
    match = re.fullmatch(re.escape(sim.base_url + REST) + r"/record/v1/(\w+)/(\d+)",
                         resp.headers["Location"])
    assert match is not None, resp.headers["Location"]
    assert match[1].lower() == record_type.lower()
    return match[2]


def post(sim: SimServer, record_type: str, body: dict[str, Any], path: str | None = None) -> str:
    return created(sim, call(sim, "POST", path or f"/record/v1/{record_type}", body),
                   record_type)


def read(sim: SimServer, record_type: str, record_id: str) -> dict[str, Any]:
    resp = call(sim, "GET", f"/record/v1/{record_type}/{record_id}",
                params={"expandSubResources": "true"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == SINGULAR
    return resp.json()


def is_ref(value: Any, record_id: str) -> bool:
    """§2.2 reference: ``{links: [self], id: <string>, refName}``."""
    return (isinstance(value, dict) and value.get("id") == record_id
            and "refName" in value and [x["rel"] for x in value["links"]] == ["self"])


def lines(record: dict[str, Any], sublist: str = "item") -> list[dict[str, Any]]:
    return record[sublist]["items"]


def envelope(resp: httpx.Response, status: int, title: str, code: str,
             anchor: str) -> dict[str, Any]:
    """§3.1: ``{type, title, status, o:errorDetails: [{detail, o:errorCode, ...}]}``."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == ERROR_TYPE
    body = resp.json()
    assert set(body) <= {"type", "title", "status", "o:errorCode", "o:errorDetails"}
    assert (body["type"], body["title"], body["status"]) == (RFC + anchor, title, status)
    detail = body["o:errorDetails"][0]
    assert detail["o:errorCode"] == code
    assert set(detail) <= {"detail", "o:errorCode", "o:errorPath"}
    return {**detail, "top": body.get("o:errorCode")}


def poll(sim: SimServer, location: str) -> dict[str, Any]:
    """Job status until ``completed`` (bounded: the sim runs jobs after ~50 ms)."""
    for _ in range(100):
        job = call(sim, "GET", location).json()
        if job["completed"]:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {location} did not complete")


# -- §9.1 / §2.1 / §2.6: create semantics and external ids --------------------------------------

def test_create_sample_is_204_without_body_and_locates_the_new_record(sim: SimServer) -> None:
    """§5.4 customer sample ``{"companyName": …, "email": …}``; §1.2 GET is singular JSON."""
    cid = post(sim, "customer", {"companyName": "Company 1615554322",
                                 "email": "customer@example.com"})
    record = read(sim, "customer", cid)
    assert record["id"] == cid and isinstance(record["id"], str)
    assert record["links"] == [{"rel": "self",
                                "href": f"{sim.base_url}{REST}/record/v1/customer/{cid}"}]
    assert (record["companyName"], record["email"]) == ("Company 1615554322",
                                                        "customer@example.com")


def test_person_sample_external_id_is_case_insensitive_unique_and_upsertable(
        sim: SimServer) -> None:
    """§5.4 person sample with ``externalId: CID001``; §2.6 duplicate and ``eid:`` rules."""
    sample = {"firstName": "John", "lastName": "Smith", "isPerson": True,
              "externalId": "CID001", "subsidiary": {"id": "1"}}
    cid = post(sim, "customer", sample)
    assert read(sim, "customer", "eid:CID001")["id"] == cid
    assert read(sim, "customer", "eid:cid001")["id"] == cid
    err = envelope(call(sim, "POST", "/record/v1/customer", sample), 400, "Bad Request",
                   "USER_ERROR", "#sec10.4.1")
    assert err["detail"] == "Error while accessing a resource. This entity already exists."
    upsert = call(sim, "PUT", "/record/v1/customer/eid:CID001", {"email": "john@example.com"})
    assert (upsert.status_code, upsert.content) == (204, b"")
    record = read(sim, "customer", cid)
    assert (record["firstName"], record["email"]) == ("John", "john@example.com")
    rows = call(sim, "POST", "/query/v1/suiteql", {
        "q": "SELECT id FROM customer WHERE externalid = ?", "params": ["CID001"]},
        headers={"Prefer": "transient"}).json()["items"]
    assert rows == [{"links": [], "id": cid}]


# -- §5.4: per-record sample payloads ----------------------------------------------------------

Check = Callable[[dict[str, Any]], bool]
STANDALONE: dict[str, tuple[str, str, dict[str, Any], Check]] = {
    "cashSale": ("cashSale", "/record/v1/cashsale", {
        "entity": {"id": "5001"}, "location": LOC,
        "item": {"items": [{"amount": 1000, "item": {"id": "1001"}}]}},
        lambda r: r["total"] == 1000 and lines(r)[0]["amount"] == 1000
        and is_ref(r["entity"], "5001")),
    "salesOrder approved": ("salesOrder", "/record/v1/salesOrder", {
        "entity": {"id": "5001"}, "location": LOC, "orderStatus": "B",
        "item": {"items": [{"item": {"id": "1001"}, "quantity": 2}]}},
        lambda r: r["orderStatus"] == {"id": "B", "refName": "Pending Fulfillment"}),
    "customerDeposit": ("customerDeposit", "/record/v1/customerDeposit", {
        "customer": {"id": 5001}, "currency": {"id": 1}, "exchangerate": 1.00,
        "payment": 10.00, "paymentOption": {"id": 4}},
        lambda r: r["payment"] == 10.0 and r["exchangeRate"] == 1.0
        and is_ref(r["customer"], "5001") and is_ref(r["paymentOption"], "4")),
    "creditMemo": ("creditMemo", "/record/v1/creditMemo", {
        "entity": {"id": "5001"}, "item": {"items": [{"amount": 1000.0, "item": {"id": "1001"}}]},
        "subsidiary": {"id": "1"}, "location": "5"},
        lambda r: is_ref(r["location"], "5") and r["total"] == 1000.0),
    "cashRefund": ("cashRefund", "/record/v1/cashRefund", {
        "account": {"id": "110"}, "currency": {"id": "1"}, "entity": {"id": "5001"},
        "item": {"items": [{"item": {"id": "1001"}, "quantity": 1}]}, "location": {"id": "1"}},
        lambda r: is_ref(r["account"], "110") and lines(r)[0]["quantity"] == 1),
    "returnAuthorization": ("returnAuthorization", "/record/v1/returnAuthorization", {
        "entity": {"id": 5001}, "currency": {"id": 1}, "location": LOC,
        "item": {"items": [{"item": {"id": 1001}, "line": 1, "quantity": 2.0, "rate": 12.78}]},
        "tranDate": "2023-07-13"},
        lambda r: lines(r)[0]["amount"] == 25.56 and r["tranDate"] == "2023-07-13"),
    "inventoryAdjustment": ("inventoryAdjustment", "/record/v1/inventoryAdjustment", {
        "account": {"id": "520"}, "adjLocation": {"id": "1"}, "subsidiary": {"id": "1"},
        "postingPeriod": {"id": "194"}, "inventory": {"items": [
            {"item": {"id": "1001"}, "location": {"id": "1"}, "adjustQtyBy": 5.0, "line": 1}]}},
        lambda r: lines(r, "inventory")[0]["adjustQtyBy"] == 5.0),
    "journalEntry": ("journalEntry", "/record/v1/journalEntry", {
        "subsidiary": {"id": "1"}, "line": {"items": [
            {"account": {"id": "620"}, "debit": 187, "memo": "Journal Example"},
            {"account": {"id": "110"}, "credit": 187}]}},
        lambda r: [(ln.get("debit"), ln.get("credit")) for ln in lines(r, "line")]
        == [(187.0, None), (None, 187.0)]),
}


@pytest.mark.parametrize("name", list(STANDALONE))
def test_record_sample_is_accepted_and_reads_back(sim: SimServer, name: str) -> None:
    record_type, path, body, check = STANDALONE[name]
    record = read(sim, record_type, post(sim, record_type, body, path))
    assert check(record), record


def test_a_sample_without_location_meets_the_preference(sim: SimServer) -> None:
    """§5.4 cashSale sample verbatim (ids swapped): refused as the account requires it."""
    resp = call(sim, "POST", "/record/v1/cashsale", {
        "entity": {"id": "5001"}, "item": {"items": [{"amount": 1000, "item": {"id": "1001"}}]}})
    err = envelope(resp, 400, "Bad Request", "USER_ERROR", "#sec10.4.1")
    assert (err["detail"], err["o:errorPath"]) == ("Please enter value(s) for: Location",
                                                   "location")


def test_cash_sale_gross_amount_sample_backs_the_tax_out(sim: SimServer) -> None:
    """§5.4 taxed sample + §5.3 (2026.1): ``grossAmt`` on a taxable line sets ``amount``."""
    sid = post(sim, "cashSale", {
        "entity": {"id": "5001"}, "tranDate": "2026-04-27", "subsidiary": {"id": "1"},
        "location": LOC, "item": {"items": [{"item": {"id": "1001"}, "quantity": 1,
                                             "grossAmt": 100.00, "taxCode": {"id": "101"}}]}},
        "/record/v1/cashsale")
    sale = read(sim, "cashSale", sid)
    line = lines(sale)[0]
    assert (line["amount"], line["taxAmount"], line["grossAmt"]) == (92.06, 7.94, 100.0)
    assert is_ref(line["taxCode"], "101")
    assert (sale["subtotal"], sale["taxTotal"], sale["total"]) == (92.06, 7.94, 100.0)
    assert sale["tranDate"] == "2026-04-27"


def invoice_for(sim: SimServer, quantity: int, rate: int) -> str:
    return post(sim, "invoice", {"entity": {"id": "5001"}, "location": LOC, "item": {
        "items": [{"item": {"id": "1001"}, "quantity": quantity, "rate": rate}]}})


def test_customer_payment_sample_applies_to_the_invoice(sim: SimServer) -> None:
    inv = invoice_for(sim, 10, 25)  # 250 due
    pid = post(sim, "customerPayment", {
        "account": {"id": "120"}, "apply": {"items": [
            {"amount": 200.0, "apply": True, "doc": {"id": inv}, "line": 0}]},
        "currency": {"id": "1"}, "customer": {"id": "5001"}, "memo": "10", "payment": 250,
        "toBeEmailed": False})
    payment = read(sim, "customerPayment", pid)
    assert (payment["payment"], payment["applied"], payment["unapplied"]) == (250.0, 200.0, 50.0)
    assert is_ref(lines(payment, "apply")[0]["doc"], inv)
    assert read(sim, "invoice", inv)["amountRemaining"] == 50.0


def test_customer_refund_sample_pays_out_deposit_and_credit(sim: SimServer) -> None:
    """§5.4: the ``deposit`` sublist is accepted but always reads back empty."""
    deposit = post(sim, "customerDeposit", {"customer": {"id": "5001"}, "payment": 30})
    memo = post(sim, "creditMemo", {"entity": {"id": "5001"}, "location": LOC, "item": {
        "items": [{"item": {"id": "1001"}, "amount": 10}]}})
    rid = post(sim, "customerRefund", {
        "customer": {"id": "5001"},
        "deposit": {"items": [{"doc": {"id": deposit}, "apply": True, "amount": 25.00}]},
        "apply": {"items": [{"doc": {"id": memo}, "line": 1, "apply": True, "amount": 4.20}]}})
    refund = read(sim, "customerRefund", rid)
    assert refund["total"] == 29.2
    assert lines(refund, "deposit") == []
    assert read(sim, "creditMemo", memo)["amountRemaining"] == 5.8


def test_bank_deposit_samples_bank_a_receipt_and_other_lines(sim: SimServer) -> None:
    """§5.4: ``payment`` lines name the receipt by bare internal ``id``; ``other``/``cashback``."""
    sale = post(sim, "cashSale", {"entity": {"id": "5001"}, "location": LOC, "item": {
        "items": [{"item": {"id": "1001"}, "quantity": 2, "rate": 20}]}})
    banked = post(sim, "deposit", {"account": {"id": "110"},
                                   "payment": {"items": [{"deposit": True, "id": int(sale)}]}})
    assert read(sim, "deposit", banked)["total"] == 40.0
    assert read(sim, "cashSale", sale)["status"] == {"id": "C", "refName": "Deposited"}
    other = post(sim, "deposit", {"account": {"id": "110"}, "other": {"items": [
        {"account": {"id": "410"}, "amount": 12.5, "entity": {"id": "5001"},
         "paymentMethod": {"id": "1"}}]}, "cashback": {"items": [
             {"account": {"id": "620"}, "amount": 2.5}]}})
    assert read(sim, "deposit", other)["total"] == 10.0


# -- §2.7: transform samples ------------------------------------------------------------------

def test_transform_samples_fulfil_bill_and_credit(sim: SimServer) -> None:
    """SO -> itemFulfillment (inventoryLocation, orderLine, itemreceive false), SO -> invoice
    partial billing, invoice -> creditMemo with an ``apply`` line; each 204 + Location."""
    so = post(sim, "salesOrder", {"entity": {"id": "5001"}, "location": LOC, "orderStatus": "B",
                                  "item": {"items": [{"item": {"id": "1001"}, "quantity": 4},
                                                     {"item": {"id": "1002"}, "quantity": 1}]}})
    base = f"/record/v1/salesOrder/{so}/!transform"
    fulfil = created(sim, call(sim, "POST", f"{base}/itemFulfillment", {
        "inventoryLocation": {"id": "1"}, "item": {"items": [
            {"orderLine": 1, "location": 1, "quantity": 1},
            {"orderLine": 2, "location": 1, "itemreceive": False}]}}), "itemFulfillment")
    shipped = read(sim, "itemFulfillment", fulfil)
    assert [(ln["orderLine"], ln["quantity"]) for ln in lines(shipped)] == [(1, 1.0)]
    assert is_ref(shipped["createdFrom"], so)
    created(sim, call(sim, "POST", f"{base}/itemFulfillment",
                      {"inventoryLocation": {"id": "1"}}), "itemFulfillment")  # the rest
    inv = created(sim, call(sim, "POST", f"{base}/invoice", {"item": {"items": [
        {"orderLine": 1, "quantity": 3}, {"orderLine": 2, "quantity": 0}]}}), "invoice")
    invoice = read(sim, "invoice", inv)
    assert [(ln["orderLine"], ln["quantity"]) for ln in lines(invoice)] == [(1, 3.0)]
    order = read(sim, "salesOrder", so)
    assert [ln["quantityBilled"] for ln in lines(order)] == [3.0, 0.0]
    memo = created(sim, call(sim, "POST", f"/record/v1/invoice/{inv}/!transform/creditMemo", {
        "apply": {"items": [{"line": 0, "amount": 3.01, "apply": True,
                             "applyDate": "2023-09-12", "doc": {"id": inv}}]}}), "creditMemo")
    credit = read(sim, "creditMemo", memo)
    assert is_ref(credit["createdFrom"], inv)
    assert [(ln["doc"]["id"], ln["amount"]) for ln in lines(credit, "apply")] == [(inv, 3.01)]
    assert read(sim, "invoice", inv)["amountRemaining"] == pytest.approx(
        invoice["total"] - 3.01)


# -- §1.8 / §1.9: async jobs and batches --------------------------------------------------------

def test_async_sample_exchange(sim: SimServer) -> None:
    """202 + ``Preference-Applied`` + ``Location: /services/rest/async/v1/job/{id}``; job ->
    task -> result, where the result is what the synchronous call would have answered."""
    resp = call(sim, "POST", "/record/v1/customer", {"companyName": "Async Co"},
                headers={"Prefer": "respond-async"})
    assert (resp.status_code, resp.content) == (202, b"")
    assert resp.headers["Preference-Applied"] == "respond-async"
    location = resp.headers["Location"]
    assert re.fullmatch(r"/services/rest/async/v1/job/\d+", location)
    job = poll(sim, location)
    assert set(job) == {"links", "completed", "id", "progress", "task"}
    assert job["progress"] == "succeeded" and location.endswith("/" + job["id"])
    assert job["task"]["links"][0]["href"].endswith(f"{location}/task")
    tasks = call(sim, "GET", f"{location}/task").json()
    assert tasks["count"] == 1 and len(tasks["items"]) == 1
    task_href = tasks["items"][0]["links"][0]["href"]
    task = call(sim, "GET", task_href).json()
    assert {"links", "completed", "id", "progress", "startTime", "endTime"} <= set(task)
    assert [x["rel"] for x in task["links"]] == ["related", "self"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", task["startTime"])
    result = call(sim, "GET", task["links"][0]["href"])
    cid = created(sim, result, "customer")
    assert read(sim, "customer", cid)["companyName"] == "Async Co"


def test_idempotency_key_sample_conflict(sim: SimServer) -> None:
    """§1.8: a reused key is HTTP 400 titled "Conflict" (#sec10.4.10), Location = first job."""
    headers = {"prefer": "respond-async", "X-NetSuite-idempotency-key": str(uuid.uuid4())}
    first = call(sim, "POST", "/record/v1/customer", {"companyName": "Once"}, headers=headers)
    assert first.status_code == 202
    again = call(sim, "POST", "/record/v1/customer", {"companyName": "Once"}, headers=headers)
    err = envelope(again, 400, "Conflict", "IDEMPOTENCY_ERROR", "#sec10.4.10")
    assert err["detail"] == ("A request with the same idempotency key is already submitted. "
                             "See the \"Location\" header for a link to the previously "
                             "submitted job")
    assert again.headers["Location"] == first.headers["Location"]
    poll(sim, first.headers["Location"])
    rows = call(sim, "POST", "/query/v1/suiteql", {
        "q": "SELECT id FROM customer WHERE companyname = 'Once'"},
        headers={"Prefer": "transient"}).json()["items"]
    assert len(rows) == 1


def batch(sim: SimServer, method: str, items: list[dict[str, Any]],
          extra: dict[str, str] | None = None) -> str:
    """§1.9 batch request: ``{"items": […]}``, collection content type, respond-async."""
    resp = call(sim, method, "/record/v1/customer", content=json.dumps({"items": items}),
                headers={"prefer": "respond-async", "content-type": COLLECTION, **(extra or {})})
    assert (resp.status_code, resp.headers["Preference-Applied"]) == (202, "respond-async")
    return resp.headers["Location"]


def results(sim: SimServer, location: str) -> list[httpx.Response]:
    """Each record's outcome is fetched separately at ``…/task/{n}/result``."""
    poll(sim, location)
    tasks = call(sim, "GET", f"{location}/task").json()
    assert tasks["count"] == len(tasks["items"])
    return [call(sim, "GET", t["links"][0]["href"] + "/result") for t in tasks["items"]]


def test_batch_samples_add_update_upsert_delete(sim: SimServer) -> None:
    added = results(sim, batch(sim, "POST", [
        {"companyName": "Batch A", "externalId": "BATCH-A"}, {"companyName": "Batch B"}],
        {"prefer": 'respond-async, batch-processing="parallel"'}))
    ids = [created(sim, r, "customer") for r in added]
    updated = results(sim, batch(sim, "PATCH", [
        {"externalId": "BATCH-A", "email": "a@example.com"},
        {"id": ids[1], "externalId": "ignored-when-id-given", "email": "b@example.com"}]))
    assert [r.status_code for r in updated] == [204, 204]
    assert [read(sim, "customer", i)["email"] for i in ids] == ["a@example.com", "b@example.com"]
    upserted = results(sim, batch(sim, "PUT", [
        {"externalId": "BATCH-A", "phone": "555"}, {"externalId": "BATCH-C",
                                                    "companyName": "Batch C"}]))
    assert [r.status_code for r in upserted] == [204, 204]
    assert read(sim, "customer", "eid:BATCH-A")["phone"] == "555"
    new_c = read(sim, "customer", "eid:BATCH-C")["id"]
    resp = call(sim, "DELETE", "/record/v1/customer", params={"ids": f"{ids[1]},eid:BATCH-C"},
                headers={"prefer": "respond-async"})
    assert resp.status_code == 202
    assert [r.status_code for r in results(sim, resp.headers["Location"])] == [204, 204]
    for gone in (ids[1], new_c):
        envelope(call(sim, "GET", f"/record/v1/customer/{gone}"), 404, "Not Found",
                 "NONEXISTENT_ID", "#sec10.4.5")


# -- §3.1–3.3: error envelopes ------------------------------------------------------------------

def test_not_found_sample(sim: SimServer) -> None:
    err = envelope(call(sim, "GET", "/record/v1/customer/999999"), 404, "Not Found",
                   "NONEXISTENT_ID", "#sec10.4.5")
    assert err["detail"] == "Record does not exist." and err["top"] is None


def test_invalid_content_sample_points_at_the_field(sim: SimServer) -> None:
    resp = call(sim, "POST", "/record/v1/cashSale", {"entity": {"id": "5001"}, "location": LOC,
                                                     "item": {"items": [{"item": {"id": "9999"}}]}})
    err = envelope(resp, 400, "Bad Request", "INVALID_CONTENT", "#sec10.4.1")
    assert err["o:errorPath"] == "item.items[0].item"
    assert err["detail"].endswith("You have entered an Invalid Field Value 9999 for the "
                                  "following field: item")


def test_invalid_request_sample_for_malformed_syntax(sim: SimServer) -> None:
    resp = call(sim, "POST", "/record/v1/customer", content=b"{not json",
                headers={"content-type": "application/json"})
    err = envelope(resp, 400, "Bad Request", "INVALID_REQUEST", "#sec10.4.1")
    assert err["detail"] == ("The request could not be understood by the server due to "
                             "malformed syntax.")


@pytest.mark.parametrize("how", ["unsigned", "tampered signature", "other realm"])
def test_invalid_login_sample(sim: SimServer, how: str) -> None:
    """§3.3: any TBA failure is a bare 401 INVALID_LOGIN; the reason stays in the audit log."""
    path = f"{sim.base_url}{REST}/record/v1/customer/5001"
    header = TbaSigner(sim.credentials).authorization("GET", path)
    if how == "tampered signature":
        header = re.sub(r'oauth_signature="[^"]+"', 'oauth_signature="AAAA"', header)
    elif how == "other realm":
        header = re.sub(r'realm="[^"]+"', 'realm="123456"', header)
    headers = {} if how == "unsigned" else {"Authorization": header}
    resp = call(sim, "GET", "/record/v1/customer/5001", headers=headers, sign=False)
    err = envelope(resp, 401, "Unauthorized", "INVALID_LOGIN", "#sec10.4.2")
    assert err["detail"] == INVALID_LOGIN


def test_concurrency_limit_sample(sim: SimServer) -> None:
    """§3.2: 429 titled "Bad Request" with a top-level ``o:errorCode`` USER_ERROR."""
    httpx.post(sim.base_url + "/__sim/config",
               json={"concurrency_limit": 1, "latency_ms": 300}).raise_for_status()
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda i: call(sim, "GET", f"/record/v1/customer/500{i}"),
                                  (1, 2)))
    assert sorted(r.status_code for r in responses) == [200, 429]
    blocked = next(r for r in responses if r.status_code == 429)
    err = envelope(blocked, 429, "Bad Request", "CONCURRENCY_LIMIT_EXCEEDED", "#sec10.4.1")
    assert err["top"] == "USER_ERROR"
    assert err["detail"] == "Concurrent request limit exceeded. Request blocked."


def test_unexpected_error_sample(sim: SimServer) -> None:
    httpx.post(sim.base_url + "/__sim/config", json={"error_rate": 1.0}).raise_for_status()
    err = envelope(call(sim, "GET", "/record/v1/customer/5001"), 500, "Internal Server Error",
                   "UNEXPECTED_ERROR", "#sec10.5.1")
    assert re.fullmatch(r"An unexpected error occurred\. Error ID: \w+", err["detail"])


# -- §1.6 / §9.7: SuiteQL ---------------------------------------------------------------------

def suiteql(sim: SimServer, body: dict[str, Any], **params: str) -> httpx.Response:
    return call(sim, "POST", "/query/v1/suiteql", body, headers={"Prefer": "transient"},
                params=params or None)


def test_suiteql_paging_sample_shape(sim: SimServer) -> None:
    """``?limit=10&offset=10`` + ``Prefer: transient``: envelope keys, ``links: []`` per row,
    every value a string."""
    resp = suiteql(sim, {"q": "SELECT id, itemid, baseprice, isinactive FROM item ORDER BY id"},
                   limit="10", offset="10")
    assert resp.status_code == 200
    page = resp.json()
    assert set(page) == {"links", "count", "hasMore", "offset", "totalResults", "items"}
    total = len(sim.state.store.items)
    assert (page["count"], page["offset"], page["totalResults"], page["hasMore"]) == (
        10, 10, total, True)
    rels = {link["rel"] for link in page["links"]}
    assert {"self", "next", "prev", "first", "last"} <= rels
    assert all(row["links"] == [] for row in page["items"])
    assert all(isinstance(v, str) for row in page["items"] for k, v in row.items()
               if k != "links")
    assert page["items"][0]["id"] == sorted(sim.state.store.items, key=int)[10]


def test_suiteql_bound_parameter_sample(sim: SimServer) -> None:
    """``SELECT * FROM item WHERE id BETWEEN ? AND ?`` with string params, as Oracle sends it."""
    query = "SELECT * FROM item WHERE id BETWEEN ? AND ?"
    rows = suiteql(sim, {"q": query, "params": ["1001", "1005"]}).json()["items"]
    assert [r["id"] for r in rows] == ["1001", "1002", "1003", "1004", "1005"]
    assert rows[0]["itemid"] == "TEE-001"
    # Oracle's own ids (-7..0, system items) are absent from the seed: an empty page.
    empty = suiteql(sim, {"q": query, "params": ["-7", "0"]}).json()
    assert (empty["count"], empty["totalResults"], empty["items"]) == (0, 0, [])


def test_suiteql_aggregate_comes_back_as_a_string(sim: SimServer) -> None:
    """§1.6 ``COUNT(*) as count`` (the sample's GROUP BY is outside the sim's subset)."""
    for _ in range(2):
        post(sim, "cashSale", {"entity": {"id": "5001"}, "location": LOC,
                               "item": {"items": [{"item": {"id": "1001"}}]}})
    page = suiteql(sim, {"q": "SELECT COUNT(*) as count FROM transaction "
                              "WHERE recordtype = 'cashsale'"}).json()
    assert page["items"] == [{"links": [], "count": "2"}]


def test_suiteql_documented_refusals(sim: SimServer) -> None:
    """Unknown column (§3.2 wording), offset not a multiple of limit (§1.4), no transient."""
    err = envelope(suiteql(sim, {"q": "SELECT not_a_real_column FROM transaction"}), 400,
                   "Bad Request", "INVALID_PARAMETER", "#sec10.4.1")
    assert err["detail"] == ("Unknown identifier 'not_a_real_column'. Available identifiers "
                             "are: {transaction=transaction}.")
    envelope(suiteql(sim, {"q": "SELECT id FROM item"}, limit="10", offset="5"), 400,
             "Bad Request", "INVALID_PARAMETER", "#sec10.4.1")
    plain = call(sim, "POST", "/query/v1/suiteql", {"q": "SELECT id FROM item"})
    envelope(plain, 400, "Bad Request", "INVALID_REQUEST", "#sec10.4.1")
