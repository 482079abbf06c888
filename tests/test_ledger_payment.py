"""POS payment events -> NetSuite receipts (deposit, payment, refund) or a skip with an
audit record; pure rules first, then the flow against the simulator over real HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from tests.factories import (
    created,
    make_payment,
    make_sale,
    post_cash_sale,
    run_client,
    sandbox_refdata,
)
from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.payment import post_payment
from tillbridge.streams.ledger.payment import (
    SALE_TYPES,
    build_customer_payment,
    payment_audit_record,
)
from tillbridge.streams.ledger.types import Missing, Posting, Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich_payment import PaymentRefs, resolve_payment
from tillbridge.streams.stages.records import Rejection

MAPS = Mappings.load(None)
REF = sandbox_refdata()
SALE_EID = "pos-sale-S001-S001-R01-000042"
PAY_EID = "pos-pay-S001-P-S001-R01-000042-1"
LINES = {"items": [{"item": {"id": "1001"}, "quantity": 2, "rate": D("25.00")}]}  # 50.00
ORDER = {"entity": {"id": "5001"}, "location": {"id": "1"}, "orderStatus": "B", "item": LINES}


def resolve(pay: dict[str, Any]) -> PaymentRefs:
    refs = resolve_payment(pay, MAPS, REF)
    assert isinstance(refs, PaymentRefs), refs
    return refs


def declined() -> dict[str, Any]:
    at = datetime(2026, 11, 26, 15, 28, tzinfo=UTC)
    return make_payment(
        payment_id="P-S001-R01-000042-0", status="DECLINED", authorization_id=None,
        gateway_response_code="05", failure_code="DO_NOT_HONOR",
        failure_reason="Issuer declined", tender_type="DISCOVER",
        trace=[{"at": at, "step": "CARD_READ", "detail": "contactless"},
               {"at": at, "step": "AUTH_REQUEST", "detail": "30.00"},
               {"at": at, "step": "AUTH_RESPONSE", "detail": "05 do not honor"}])


# -- pure ------------------------------------------------------------------------------------

def test_resolve_names_ids_store_and_payment_method() -> None:
    refs = resolve(make_payment())
    assert (refs.payment, refs.sale) == (PAY_EID, SALE_EID)
    assert (refs.location, refs.subsidiary, refs.payment_method) == ("1", "1", "2")
    assert refs.original_payment is None
    refund = resolve(make_payment(payment_id="P-9", status="REFUNDED",
                                  original_payment_id="P-S001-R01-000042-1"))
    assert (refund.payment, refund.original_payment) == ("pos-pay-S001-P-9", PAY_EID)
    assert PaymentRefs.from_json(refund.to_json()) == refund


@pytest.mark.parametrize(("changes", "reason"), [
    ({"tender_type": "DISCOVER"}, "unknown_tender"),
    ({"store_id": "S999"}, "unknown_store"),
    ({"amount": D("0.00")}, "invalid_amount"),
    ({"status": "REFUNDED"}, "missing_field"),
    ({"payment_id": ""}, "missing_field"),
    ({"store_id": ""}, "missing_location"),
])
def test_bad_payments_are_rejected(changes: dict[str, Any], reason: str) -> None:
    got = resolve_payment(make_payment(**changes), MAPS, REF)
    assert isinstance(got, Rejection) and got.reason == reason, got


def test_a_declined_attempt_is_not_held_to_the_mapping_rules() -> None:
    refs = resolve(declined())  # DISCOVER is unmapped: no record would use it anyway
    assert refs.payment_method is None and refs.status == "DECLINED"


def test_audit_record_keeps_the_failed_attempt_and_its_trace() -> None:
    rec = payment_audit_record(declined(), outcome="skipped")
    doc = json.loads(json.dumps(rec))  # JSON-ready as is
    assert doc["status"] == "DECLINED" and doc["failure_code"] == "DO_NOT_HONOR"
    assert (doc["gateway_code"], doc["gateway_response_code"]) == ("ADYEN", "05")
    assert [t["step"] for t in doc["trace"]] == ["CARD_READ", "AUTH_REQUEST", "AUTH_RESPONSE"]
    assert doc["trace"][2]["detail"] == "05 do not honor"
    assert doc["trace"][0]["at"] == "2026-11-26T15:28:00+00:00"
    assert doc["amount"] == "30.00" and doc["card_last4"] == "4242"
    assert doc["outcome"] == "skipped"


def test_payment_applies_no_more_than_is_open() -> None:
    refs = resolve(make_payment())
    body = build_customer_payment(make_payment(), refs, "77", "5001", D("12.50"))
    assert body["apply"]["items"] == [{"doc": {"id": "77"}, "apply": True, "amount": D("12.50")}]
    assert body["payment"] == D("30.00") and body["customer"] == {"id": "5001"}
    assert "entity" not in body
    assert "apply" not in build_customer_payment(make_payment(), refs, "77", "5001", D("0"))


# -- against the simulator -------------------------------------------------------------------

def test_approved_payment_of_a_cash_sale_is_covered_after_waiting_for_it(
        sim: SimServer) -> None:
    pay = make_payment()
    refs = resolve(pay)

    async def flow(rc: ReliableClient) -> tuple[Any, Any, str]:
        early = await post_payment(rc, pay, refs)
        sale = await post_cash_sale(rc, make_sale(), MAPS, REF)
        return early, await post_payment(rc, pay, refs), sale

    early, late, sale = run_client(sim, flow)
    assert isinstance(early, Missing) and early.dependency == SALE_EID
    # or the summary that took the receipt (the ``summary`` sync mode of sales)
    assert early.record_types == (*SALE_TYPES, "summary:S001|R01|2026-11-26|S001-R01-000042")
    assert late == Skipped(f"covered by cashSale {sale}")
    assert created(sim) == {"cashSale": 1}


def test_approved_payment_of_a_sales_order_is_a_linked_customer_deposit(
        sim: SimServer) -> None:
    pay = make_payment()
    refs = resolve(pay)

    async def flow(rc: ReliableClient) -> tuple[Any, Any, dict[str, Any], str]:
        order = await rc.create_idempotent("salesOrder", SALE_EID, ORDER)
        first = await post_payment(rc, pay, refs)
        again = await post_payment(rc, pay, refs)
        return first, again, await rc.get("customerDeposit", eid(PAY_EID)), order

    first, again, dep, order = run_client(sim, flow)
    assert isinstance(first, Posting)
    w = first.primary
    assert (w.record_type, w.external_id, w.created) == ("customerDeposit", PAY_EID, True)
    assert w.links == {"salesOrder": order} and dep["id"] == w.netsuite_id
    assert dep["salesOrder"]["id"] == order and dep["customer"]["id"] == "5001"
    assert dep["payment"] == 30.0 and dep["paymentOption"]["id"] == "2"
    assert dep["custbody_pos_payment_id"] == pay["payment_id"]
    assert dep["custbody_pos_gateway_reference"] == "GW-778899"
    assert dep["otherRefNum"] == pay["pos_transaction_id"] and "auth A1" in dep["memo"]
    assert isinstance(again, Posting) and not again.created
    assert again.primary.netsuite_id == w.netsuite_id
    assert created(sim) == {"salesOrder": 1, "customerDeposit": 1}


def test_approved_payment_of_an_invoice_is_applied_to_it(sim: SimServer) -> None:
    pay = make_payment()
    refs = resolve(pay)
    invoice = {"entity": {"id": "5001"}, "location": {"id": "1"}, "item": LINES}

    async def flow(rc: ReliableClient) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
        inv = await rc.create_idempotent("invoice", SALE_EID, invoice)
        first = await post_payment(rc, pay, refs)
        again = await post_payment(rc, pay, refs)
        payment = await rc.get("customerPayment", eid(PAY_EID), expand=True)
        return first, again, payment, await rc.get("invoice", inv)

    first, again, payment, inv = run_client(sim, flow)
    assert isinstance(first, Posting) and first.primary.record_type == "customerPayment"
    assert first.primary.links == {"apply": inv["id"]}
    (applied,) = payment["apply"]["items"]
    assert applied["doc"]["id"] == inv["id"] and applied["amount"] == 30.0
    assert payment["customer"]["id"] == "5001"
    assert inv["amountRemaining"] == 20.0, "50.00 invoice less the 30.00 card payment"
    assert not again.created
    assert created(sim) == {"invoice": 1, "customerPayment": 1}


def test_partial_refund_of_a_deposit_is_a_customer_refund_from_it(sim: SimServer) -> None:
    pay = make_payment()
    refund = make_payment(payment_id="P-S001-R01-000042-R", status="REFUNDED",
                          original_payment_id=pay["payment_id"], amount=D("10.00"))
    refs, refund_refs = resolve(pay), resolve(refund)

    async def flow(rc: ReliableClient) -> tuple[Any, Any, Any, dict[str, Any], dict[str, Any]]:
        await rc.create_idempotent("salesOrder", SALE_EID, ORDER)
        early = await post_payment(rc, refund, refund_refs)
        deposit = await post_payment(rc, pay, refs)
        out = await post_payment(rc, refund, refund_refs)
        again = await post_payment(rc, refund, refund_refs)
        cr = await rc.get("customerRefund", eid("pos-pay-S001-P-S001-R01-000042-R"))
        assert isinstance(deposit, Posting)
        return early, out, again, cr, await rc.get("customerDeposit",
                                                   deposit.primary.netsuite_id)

    early, out, again, cr, dep = run_client(sim, flow)
    assert early == Missing(PAY_EID, ("customerDeposit", "customerPayment"), early.detail)
    assert isinstance(out, Posting) and out.primary.record_type == "customerRefund"
    assert out.primary.links == {"deposit": dep["id"]}
    assert cr["customer"]["id"] == "5001" and cr["total"] == 10.0, "the refunded part only"
    assert cr["custbody_pos_payment_id"] == refund["payment_id"]
    assert dep["status"]["id"] == "A", "20.00 of the deposit is still held"
    assert not again.created
    assert created(sim)["customerRefund"] == 1


def test_refund_of_a_payment_a_cash_sale_covers_is_left_to_the_pos_return(
        sim: SimServer) -> None:
    refund = make_payment(payment_id="P-R", status="REFUNDED",
                          original_payment_id="P-S001-R01-000042-1")
    refs = resolve(refund)

    async def flow(rc: ReliableClient) -> tuple[Any, str]:
        sale = await post_cash_sale(rc, make_sale(), MAPS, REF)
        return await post_payment(rc, refund, refs), sale

    out, sale = run_client(sim, flow)
    assert isinstance(out, Skipped) and f"cashSale {sale}" in out.why


def test_uplift_paid_on_an_exchange_is_covered_by_the_exchange_sale(sim: SimServer) -> None:
    pay = make_payment(pos_transaction_id="S001-R02-000077", payment_id="P-UP")
    refs = resolve(pay)
    body = {"entity": {"id": "4999"}, "location": {"id": "1"}, "item": LINES}

    async def flow(rc: ReliableClient) -> tuple[Any, str]:
        exch = await rc.create_idempotent("cashSale", refs.exchange, body)
        return await post_payment(rc, pay, refs), exch

    out, exch = run_client(sim, flow)
    assert out == Skipped(f"covered by exchange cashSale {exch}")


def test_declined_attempt_is_skipped_without_touching_netsuite(sim: SimServer) -> None:
    pay = declined()
    refs = resolve(pay)
    before = httpx.get(sim.base_url + "/__sim/stats").json()["requests"]["total"]
    out = run_client(sim, lambda rc: post_payment(rc, pay, refs))
    after = httpx.get(sim.base_url + "/__sim/stats").json()["requests"]["total"]
    assert isinstance(out, Skipped) and "DECLINED" in out.why and "DO_NOT_HONOR" in out.why
    assert after == before and created(sim) == {}
