"""Sink stage against the NetSuite simulator over real HTTP (no broker needed)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D

import httpx
import pytest

from tests.factories import make_sale
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.connectors.netsuite.wire import dumps
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.sale_writer import Posted, SalePoster
from tillbridge.streams.ledger.sale_records import build_cash_sale, sale_external_id
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.enrich import enrich_sale


@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(sim):
    httpx.post(f"{sim.base_url}/__sim/reset")


def _run(coro):
    return asyncio.run(coro)


async def _post(sim, sale, creds=None, loaded_ref=None, write_mode="create"):
    maps = Mappings.load()
    async with NetSuiteClient(sim.base_url, creds or NetSuiteCredentials.dev()) as client:
        ref = loaded_ref or ReferenceData()
        if loaded_ref is None:
            await ref.load(client)
        enr = enrich_sale(sale, maps, ref)
        poster = SalePoster(ReliableClient(client, RetryPolicy(max_attempts=2, base_delay_s=0.01)),
                            discount_item=maps.discount_item, write_mode=write_mode)
        outcome = await poster.post(sale, enr)
        record = None
        if isinstance(outcome, Posted):
            record = await client.get("cashSale", outcome.netsuite_id, expand=True)
        return outcome, record, ref


def _stats(sim):
    return httpx.get(f"{sim.base_url}/__sim/stats").json()["records"]


def test_cash_sale_body_keeps_money_exact_and_traceable() -> None:
    from tillbridge.streams.stages.enrich import CustomerPlan, Enrichment

    enr = Enrichment("1", "1", ["1001"], ["2", "1"], CustomerPlan("guest_fallback", "4999"), 1)
    body = build_cash_sale(make_sale(), enr, "4999", discount_item="2001")
    assert body["externalId"] == "pos-sale-S001-S001-R01-000042"
    assert body["paymentOption"] == {"id": "2"}, "largest tender names the payment option"
    wire = json.loads(dumps(body), parse_float=D)
    assert wire["item"]["items"][0]["rate"] == D("19.99")
    assert wire["item"]["items"][1]["amount"] == D("-2.00"), "line discount as discount line"
    assert "S001/R01" in body["memo"]


@pytest.mark.parametrize("mode", ["create", "upsert"])
def test_sale_posts_once_even_when_replayed(sim, mode) -> None:
    sale = make_sale()
    first, record, _ = _run(_post(sim, sale, write_mode=mode))
    assert isinstance(first, Posted)
    assert record["externalId"] == sale_external_id(sale)
    assert record["entity"]["id"] == "4999"
    assert len(record["item"]["items"]) == 2
    again, record2, _ = _run(_post(sim, sale, write_mode=mode))
    assert isinstance(again, Posted) and again.netsuite_id == first.netsuite_id
    assert first.created and (not again.created or mode == "upsert")
    assert len(record2["item"]["items"]) == 2, "replay must not append lines again"
    assert _stats(sim)["cashSale"]["created"] == 1


def test_new_identified_customer_is_created_once(sim) -> None:
    outcomes = []
    for n in range(2):
        sale = make_sale(pos_transaction_id=f"T-{n}")
        sale["customer"].update(loyalty_id="LOY-NEW-1", email="ann@example.com",
                                first_name="Ann", last_name="Lee", anonymous_tag=None)
        outcome, record, _ = _run(_post(sim, sale))
        assert isinstance(outcome, Posted)
        outcomes.append(outcome)
    # The first sale creates the customer; the reloaded snapshot then matches its loyalty id.
    assert [o.customer_rule for o in outcomes] == ["new_identified", "loyalty_id"]
    assert outcomes[0].customer_id == outcomes[1].customer_id
    stats = _stats(sim)
    assert stats["customer"]["created"] == 1
    assert stats["cashSale"]["created"] == 2


def test_item_deactivated_after_enrichment_is_rejected_with_netsuite_details(sim) -> None:
    sale = make_sale()
    _, _, ref = _run(_post(sim, make_sale(pos_transaction_id="warm")))
    httpx.post(f"{sim.base_url}/__sim/items/TEE-001/deactivate").raise_for_status()
    outcome, _, _ = _run(_post(sim, sale, loaded_ref=ref))
    rejection, details = outcome
    assert rejection.reason == "netsuite_rejected"
    assert rejection.inputs["error_code"] == "INVALID_CONTENT"
    assert rejection.inputs["error_path"] == "item.items[0].item"
    assert details and details[0]["o:errorCode"] == "INVALID_CONTENT"


def test_bad_credentials_are_refused_and_classified_auth(sim) -> None:
    good = NetSuiteCredentials.dev()
    _, _, ref = _run(_post(sim, make_sale(pos_transaction_id="warm")))
    bad = NetSuiteCredentials(good.account_id, good.consumer_key, good.consumer_secret,
                              good.token_id, "wrong-secret")
    outcome, _, _ = _run(_post(sim, make_sale(), creds=bad, loaded_ref=ref))
    rejection, _ = outcome
    assert rejection.reason == "netsuite_auth"
    assert "wrong-secret" not in rejection.message + json.dumps(rejection.inputs)


def test_promo_codes_book_to_their_discount_items_and_rep_is_set(sim) -> None:
    sale = make_sale(sales_rep_id="E002")
    sale["lines"][0]["discounts"] = [{"code": "MARKDOWN5", "promotion_id": "PROMO-MD5",
                                      "amount": D("2.00")}]
    outcome, record, ref = _run(_post(sim, sale))
    assert isinstance(outcome, Posted), outcome
    assert record["salesRep"]["id"] == ref.sales_reps["E002"] == "302"
    # MARKDOWN5 is in the packaged mappings' promotions map
    assert record["item"]["items"][1]["item"]["id"] == "2003"


def test_discount_item_precedence() -> None:
    from tests.factories import sandbox_refdata
    from tillbridge.streams.refdata.snapshot import PromotionRef

    maps = Mappings.load()
    ref = sandbox_refdata()
    ref.promotions = {"SPEND50SAVE5": PromotionRef("704", "SPEND50SAVE5", "x", "2004"),
                      "OLD": PromotionRef("705", "OLD", "x", "2004", active=False)}
    sale = make_sale(sales_rep_id="E999")  # a rep NetSuite does not know: no salesRep
    sale["lines"][0]["discounts"] = [{"code": "COUPON10", "promotion_id": "P", "amount": D(1)},
                                     {"code": "OLD", "promotion_id": None, "amount": D(1)}]
    sale["order_discounts"] = [{"code": "SPEND50SAVE5", "promotion_id": None, "amount": D(5)}]
    enr = enrich_sale(sale, maps, ref)
    assert not hasattr(enr, "reason"), enr
    assert enr.discount_items == {"COUPON10": "2002", "SPEND50SAVE5": "2004"}
    body = build_cash_sale(sale, enr, "4999", discount_item=maps.discount_item)
    items = [ln["item"]["id"] for ln in body["item"]["items"]]
    # mapped code, inactive promotion -> default item, NetSuite promotion's own item
    assert items == ["1001", "2002", "2001", "2004"]
    assert "salesRep" not in body
    assert type(enr).from_json(enr.to_json()) == enr
