"""Sink payload rules: promotions on the record and in the audit trail, tenders, and
post-purchase enrichment of a matched customer (against the simulator)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D

import httpx
import pytest

from tests.factories import make_sale
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.sale_writer import Posted, SalePoster
from tillbridge.streams.ledger.sale_records import (
    PROMO_FIELD,
    build_cash_sale,
    promotion_audit_records,
)
from tillbridge.streams.ledger.tenders import (
    AUTH_FIELD,
    CARD_FIELD,
    DRAWER_FIELD,
    GATEWAY_FIELD,
    TENDERS_FIELD,
)
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.enrich import CustomerPlan, Enrichment, enrich_sale

ENR = Enrichment("1", "1", ["1001"], ["2", "1"], CustomerPlan("guest_fallback", "4999"), 1)


def _promo_sale() -> dict:
    sale = make_sale()
    sale["lines"][0]["promotion_ids"] = ["PROMO-7", "PROMO-PRICE"]  # one moved no money
    sale["order_discounts"] = [
        {"code": "SPEND50", "promotion_id": "PROMO-SPEND50", "amount": D("5.00")},
        {"code": "LOYALTY-REWARD", "promotion_id": None, "amount": D("1.00")}]
    return sale


def test_promotion_ids_ride_on_item_and_discount_lines() -> None:
    body = build_cash_sale(_promo_sale(), ENR, "4999", discount_item="2001")
    lines = body["item"]["items"]
    assert lines[0][PROMO_FIELD] == "PROMO-7,PROMO-PRICE"
    assert lines[1][PROMO_FIELD] == "PROMO-7" and lines[1]["amount"] == D("-2.00")
    assert lines[2][PROMO_FIELD] == "PROMO-SPEND50"
    assert PROMO_FIELD not in lines[3], "a discount without a promotion id has none to carry"


def test_promotion_audit_records_trace_every_discount_and_promotion() -> None:
    records = promotion_audit_records(_promo_sale(), "pos-sale-S001-X", "77")
    got = [(r["line_no"], r["promotion_id"], r["discount_code"], r["amount"]) for r in records]
    assert got == [(1, "PROMO-7", "TEE2", "2.00"), (1, "PROMO-PRICE", None, "0.00"),
                   (None, "PROMO-SPEND50", "SPEND50", "5.00"),
                   (None, None, "LOYALTY-REWARD", "1.00")]
    assert {r["netsuite_external_id"] for r in records} == {"pos-sale-S001-X"}
    assert records[0]["pos_transaction_id"] == "S001-R01-000042"
    assert promotion_audit_records(make_sale(order_discounts=[]) | {"lines": [
        {**make_sale()["lines"][0], "discounts": [], "promotion_ids": []}]}, "x") == []


def test_a_single_tender_names_the_cash_sale_payment_option_and_carries_its_pos_data() -> None:
    body = build_cash_sale(make_sale(), ENR, "4999")
    assert body["paymentOption"] == {"id": "2"}
    assert body[AUTH_FIELD] == "A1" and body[GATEWAY_FIELD] == "00"
    assert body[CARD_FIELD] == "4242" and DRAWER_FIELD not in body
    assert json.loads(body[TENDERS_FIELD]) == [
        {"index": 0, "tender_type": "VISA", "amount": "41.26", "booked_on": "paymentOption",
         "auth_code": "A1", "gateway_code": "00", "card_last4": "4242"}]
    assert "VISA 41.26" in body["memo"]


@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server


def test_a_later_sale_fills_in_what_the_customer_lacked(sim) -> None:
    httpx.post(f"{sim.base_url}/__sim/reset")
    maps = Mappings.load()

    async def post(sale: dict) -> tuple[Posted, dict]:
        async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as client:
            ref = ReferenceData()
            await ref.load(client)
            enr = enrich_sale(sale, maps, ref)
            assert isinstance(enr, Enrichment)
            poster = SalePoster(ReliableClient(client, RetryPolicy(max_attempts=1)),
                                discount_item=maps.discount_item)
            outcome = await poster.post(sale, enr)
            assert isinstance(outcome, Posted), outcome
            return outcome, await client.get("customer", outcome.customer_id)

    first = make_sale(pos_transaction_id="E1")
    first["customer"].update(email="enrich.me@example.com", first_name="En", last_name="Rich",
                             anonymous_tag=None)
    created, _ = asyncio.run(post(first))
    assert created.customer_rule == "new_identified"
    later = make_sale(pos_transaction_id="E2")
    later["customer"].update(email="ENRICH.me@example.com", phone="+1-555-7777",
                             loyalty_id="LOY-ENRICH", anonymous_tag=None)
    outcome, customer = asyncio.run(post(later))
    assert (outcome.customer_rule, outcome.customer_id) == ("email", created.customer_id)
    assert outcome.customer_enriched
    assert customer["phone"] == "+1-555-7777"
    assert customer["custentity_loyalty_id"] == "LOY-ENRICH"
