"""Every tender traceable (issue 10, section 2): the record design per tender mix, change
netted, gift cards and store credit booked against their liabilities.

Pure tests for the builders; then sales posted through ``SalePoster`` to the simulator and
read back (GET and SuiteQL): NetSuite's amounts per payment method equal the POS's tenders
to the cent, the gift certificate balances move by what was redeemed or sold, and the
simulator refuses what NetSuite would.
"""

from __future__ import annotations

import asyncio
import copy
import json
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import make_payment, make_return, make_sale
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.devstack.tender_books import booked_by_method, expected_by_method
from tillbridge.streams.flows.payment import post_payment
from tillbridge.streams.flows.returns import post_return
from tillbridge.streams.flows.sale_writer import Posted, SalePoster
from tillbridge.streams.ledger.sale_records import build_cash_sale, build_sale_invoice
from tillbridge.streams.ledger.tenders import (
    AUTH_FIELD,
    CHANGE_FIELD,
    DRAWER_FIELD,
    GATEWAY_FIELD,
    TENDERS_FIELD,
    allocate_credit,
    build_tender_payment,
    funds_refusal,
    plan_tenders,
)
from tillbridge.streams.ledger.types import Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.enrich import CustomerPlan, Enrichment, enrich_sale
from tillbridge.streams.stages.enrich_payment import PaymentRefs, resolve_payment
from tillbridge.streams.stages.enrich_return import ReturnRefs, resolve_return
from tillbridge.streams.stages.records import Rejection
from tillbridge.streams.stages.validate import validate_sale

MAPS = Mappings.load()


def tender(kind: str, amount: str, **extra: Any) -> dict[str, Any]:
    card = kind not in ("CASH", "STORE_CREDIT")
    return {"tender_type": kind, "amount": D(amount),
            "authorization_id": f"AUTH-{kind}" if card else None,
            "gateway_code": "ADYEN-00" if card else None,
            "card_last4": "4242" if card and kind != "GIFT_CARD" else None,
            "cash_drawer_id": "S001-R01-D1" if kind == "CASH" else None, **extra}


def sale_with(*tenders: dict[str, Any], txn: str = "T-1", **overrides: Any) -> dict[str, Any]:
    """make_sale()'s basket (total 41.26) paid with ``tenders``."""
    return make_sale(pos_transaction_id=txn, tenders=list(tenders), **overrides)


KNOWN = {"customer_id": "5001", "loyalty_id": "LOY100001", "email": "sam.garcia1@example.com",
         "phone": "+1-555-0101", "first_name": "Sam", "last_name": "Garcia",
         "anonymous_tag": None}


def enr_for(sale: dict[str, Any]) -> Enrichment:
    """The enrichment enrich gives make_sale()'s basket with these tenders, walk-in guest."""
    return Enrichment("1", "1", ["1001"] * len(sale["lines"]),
                      [MAPS.tenders[t["tender_type"]] for t in sale["tenders"]],
                      CustomerPlan("guest_fallback", "4999"), 1)


# -- pure: the record design ----------------------------------------------------------------

@pytest.mark.parametrize(("tenders", "record_type", "paid", "gift", "credit"), [
    ([tender("VISA", "41.26")], "cashSale", 1, 0, 0),
    ([tender("GIFT_CARD", "10.00", gift_card_code="GC-100001"), tender("VISA", "31.26")],
     "cashSale", 1, 1, 0),
    ([tender("GIFT_CARD", "41.26", gift_card_code="GC-100001")], "cashSale", 0, 1, 0),
    ([tender("VISA", "20.00"), tender("CASH", "11.26"), tender("AMEX", "10.00")],
     "invoice", 3, 0, 0),
    ([tender("STORE_CREDIT", "41.26")], "invoice", 0, 0, 1),
    ([tender("STORE_CREDIT", "20.00"), tender("CASH", "21.26")], "invoice", 1, 0, 1),
])
def test_the_tender_mix_decides_the_records(tenders, record_type, paid, gift, credit) -> None:
    plan = plan_tenders(sale_with(*tenders))
    assert (plan.record_type, len(plan.paid), len(plan.gift), len(plan.credit)) == \
        (record_type, paid, gift, credit)


def test_a_cash_over_tender_is_netted_and_the_change_recorded() -> None:
    # the till reported what was handed over (50.00) and the change (8.74)
    sale = sale_with(tender("CASH", "50.00", change_given=D("8.74")))
    assert validate_sale(sale) is None
    body = build_cash_sale(sale, enr_for(sale), "4999")
    assert body["paymentOption"] == {"id": MAPS.tenders["CASH"]}
    assert body[CHANGE_FIELD] == "8.74" and body[DRAWER_FIELD] == "S001-R01-D1"
    (row,) = json.loads(body[TENDERS_FIELD])
    assert (row["amount"], row["handed_over"]) == ("41.26", "50.00")
    # the same sale reported net (amount = what the sale kept) books the same
    net = sale_with(tender("CASH", "41.26", change_given=D("8.74")))
    assert validate_sale(net) is None
    assert json.loads(build_cash_sale(net, enr_for(net), "4999")[TENDERS_FIELD]) == [row]


@pytest.mark.parametrize(("tenders", "reason"), [
    ([tender("CASH", "50.00")], "tender_mismatch"),  # over-tender nothing explains
    ([tender("CASH", "50.00", change_given=D("5.00"))], "tender_mismatch"),  # change too small
    ([tender("VISA", "50.00", change_given=D("8.74"))], "invalid_amount"),  # change on a card
])
def test_an_over_tender_is_never_booked(tenders, reason) -> None:
    rejection = validate_sale(sale_with(*tenders))
    assert rejection is not None and rejection.reason == reason


def test_each_split_tender_is_a_payment_with_its_own_trace() -> None:
    sale = sale_with(tender("VISA", "20.00"), tender("CASH", "11.26"), tender("AMEX", "10.00"))
    enr = enr_for(sale)
    invoice = build_sale_invoice(sale, enr, "4999")
    assert "paymentOption" not in invoice and AUTH_FIELD not in invoice
    assert [r["booked_on"] for r in json.loads(invoice[TENDERS_FIELD])] == \
        ["customerPayment"] * 3
    body = build_tender_payment(sale, 2, sale["tenders"][2], enr, "4999", "777", "2026-11-26")
    assert body["externalId"] == "pos-tnd-S001-T-1-2"
    assert body["paymentOption"] == {"id": MAPS.tenders["AMEX"]} and body["payment"] == D("10")
    assert body["apply"]["items"] == [{"doc": {"id": "777"}, "apply": True, "amount": D("10")}]
    assert (body[AUTH_FIELD], body[GATEWAY_FIELD]) == ("AUTH-AMEX", "ADYEN-00")
    assert body["customer"] == {"id": "4999"} and "entity" not in body


def test_store_credit_is_spread_over_open_credit_oldest_first() -> None:
    assert allocate_credit(D("30"), [("1", D("20")), ("2", D("50"))]) == \
        [("1", D("20")), ("2", D("10"))]
    with pytest.raises(ValueError, match="short by 5"):
        allocate_credit(D("30"), [("1", D("25"))])


def test_a_tender_without_its_liability_is_refused_with_the_reason() -> None:
    gift = plan_tenders(sale_with(tender("GIFT_CARD", "10.00", gift_card_code="GC-X"),
                                  tender("VISA", "31.26")))
    refused = funds_refusal(gift, {"GC-X": ("9", D("9.99"))}, [], "4999")
    assert refused is not None and refused.reason == "gift_card_unavailable"
    assert refused.inputs["netsuite_balance"] == "9.99"
    assert funds_refusal(gift, {"GC-X": ("9", D("10.00"))}, [], "4999") is None
    credit = plan_tenders(sale_with(tender("STORE_CREDIT", "41.26")))
    refused = funds_refusal(credit, {}, [("5", D("41.25"))], "5001")
    assert refused is not None and refused.reason == "store_credit_unavailable"
    assert refused.inputs["open_credit"] == "41.25"


# -- against the simulator ----------------------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server


def post(sim: SimServer, sale: dict[str, Any]) -> tuple[Posted | Rejection, dict[str, D] | None]:
    """Post through the real writer, then read the tenders back per payment method."""
    async def run() -> tuple[Posted | Rejection, dict[str, D] | None]:
        async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as client:
            ref = ReferenceData()
            await ref.load(client)
            enr = enrich_sale(sale, MAPS, ref)
            assert isinstance(enr, Enrichment), enr
            poster = SalePoster(ReliableClient(client, RetryPolicy(max_attempts=1)),
                                discount_item=MAPS.discount_item)
            outcome = await poster.post(sale, enr)
            result = outcome if isinstance(outcome, Posted) else outcome[0]
            return result, await booked_by_method(client, sale)
    return asyncio.run(run())


def call(sim: SimServer, use: Any) -> Any:
    """``use(client)`` with a signed client on the simulator."""
    async def run() -> Any:
        async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as client:
            return await use(client)
    return asyncio.run(run())


def suiteql(sim: SimServer, query: str, *params: str) -> list[dict[str, Any]]:
    return call(sim, lambda c: c.suiteql(query, params=list(params)))


def refusal(sim: SimServer, record_type: str, body: dict[str, Any]) -> str:
    """The detail of NetSuite's refusal of a create."""
    with pytest.raises(NetSuiteError) as err:
        call(sim, lambda c: c.create(record_type, body))
    return str(err.value.details)


def gift_balance(sim: SimServer, code: str) -> D:
    (row,) = suiteql(sim, "SELECT amountremaining FROM giftcertificate WHERE giftcertcode = ?",
                     code)
    return D(str(row["amountremaining"]))


def test_a_three_way_split_is_an_invoice_paid_by_one_payment_per_tender(sim) -> None:
    sale = sale_with(tender("VISA", "20.00"), tender("CASH", "11.26"), tender("AMEX", "10.00"),
                     txn="T-SPLIT3")
    posted, booked = post(sim, sale)
    assert isinstance(posted, Posted) and posted.record_type == "invoice"
    assert booked == expected_by_method(sale, MAPS.tenders) == {
        MAPS.tenders["VISA"]: D("20.00"), MAPS.tenders["CASH"]: D("11.26"),
        MAPS.tenders["AMEX"]: D("10.00")}
    assert [w.external_id for w in posted.tenders] == \
        [f"pos-tnd-S001-T-SPLIT3-{i}" for i in range(3)]
    (row,) = suiteql(sim, "SELECT foreigntotal, foreignamountunpaid, status FROM transaction "
                          "WHERE externalid = ?", "pos-sale-S001-T-SPLIT3")
    assert (D(row["foreigntotal"]), D(row["foreignamountunpaid"])) == (D("41.26"), 0)
    payments = suiteql(sim, "SELECT custbody_tillbridge_source FROM transaction WHERE "
                            "recordtype = 'customerpayment' AND custbody_pos_transaction_id = ?",
                       "T-SPLIT3")
    assert len(payments) == 3
    # a replay writes nothing new: every record is found by its externalId
    again, booked_again = post(sim, sale)
    assert isinstance(again, Posted) and not again.created
    assert not any(w.created for w in again.tenders) and booked_again == booked


def test_gift_card_and_card_stay_a_cash_sale_redeeming_the_certificate(sim) -> None:
    before = gift_balance(sim, "GC-100002")
    sale = sale_with(tender("GIFT_CARD", "15.00", gift_card_code="GC-100002"),
                     tender("VISA", "26.26"), txn="T-GIFT")
    posted, booked = post(sim, sale)
    assert isinstance(posted, Posted) and posted.record_type == "cashSale"
    assert booked == {"GIFT_CARD": D("15.00"), MAPS.tenders["VISA"]: D("26.26")}
    assert booked == expected_by_method(sale, MAPS.tenders)
    assert gift_balance(sim, "GC-100002") == before - D("15.00")


def test_store_credit_applies_the_customers_open_credit(sim) -> None:
    open_before = suiteql(sim, "SELECT foreignamountunpaid FROM transaction WHERE "
                               "recordtype = 'creditmemo' AND entity = ?", "5002")
    sale = sale_with(tender("STORE_CREDIT", "30.00"), tender("CASH", "11.26"), txn="T-CREDIT",
                     customer={**KNOWN, "customer_id": "5002", "loyalty_id": "LOY100002",
                               "email": "ivan.okafor2@example.com", "phone": "+1-555-0102",
                               "first_name": "Ivan", "last_name": "Okafor"})
    posted, booked = post(sim, sale)
    assert isinstance(posted, Posted) and posted.record_type == "invoice"
    assert booked == {"STORE_CREDIT": D("30.00"), MAPS.tenders["CASH"]: D("11.26")}
    open_after = suiteql(sim, "SELECT foreignamountunpaid FROM transaction WHERE "
                              "recordtype = 'creditmemo' AND entity = ?", "5002")
    assert sum(D(r["foreignamountunpaid"]) for r in open_before) - \
        sum(D(r["foreignamountunpaid"]) for r in open_after) == D("30.00")
    again, booked_again = post(sim, sale)  # a replay applies no credit twice
    assert isinstance(again, Posted) and booked_again == booked


def test_store_credit_without_open_credit_is_dead_lettered_and_nothing_written(sim) -> None:
    sale = sale_with(tender("STORE_CREDIT", "41.26"), txn="T-NOCREDIT")  # the guest: no credit
    refused, booked = post(sim, sale)
    assert isinstance(refused, Rejection) and refused.reason == "store_credit_unavailable"
    assert refused.inputs["open_credit"] == "0" and booked is None
    assert suiteql(sim, "SELECT id FROM transaction WHERE custbody_pos_transaction_id = ?",
                   "T-NOCREDIT") == []


def test_an_unknown_gift_card_is_dead_lettered(sim) -> None:
    sale = sale_with(tender("GIFT_CARD", "41.26", gift_card_code="GC-NOPE"), txn="T-NOCARD")
    refused, booked = post(sim, sale)
    assert isinstance(refused, Rejection) and refused.reason == "gift_card_unavailable"
    assert booked is None


def test_a_gift_card_sold_is_a_liability_not_revenue(sim) -> None:
    sale = make_sale(pos_transaction_id="T-GCSALE", lines=[
        {"line_no": 1, "sku": "GIFTCARD", "description": "Gift Card", "quantity": D("1.000"),
         "unit_price": D("50.00"), "price_level": None, "discounts": [],
         "tax_code": "TAX-EXEMPT", "tax_rate": D("0"), "tax_amount": D("0.00"),
         "promotion_ids": [], "gift_card_code": "GC-SOLD-1"}],
        subtotal=D("50.00"), discount_total=D("0.00"), tax_total=D("0.00"), total=D("50.00"),
        tenders=[tender("VISA", "50.00")])
    posted, booked = post(sim, sale)
    assert isinstance(posted, Posted), posted
    assert booked == {MAPS.tenders["VISA"]: D("50.00")}
    (cert,) = suiteql(sim, "SELECT id, originalamount, amountremaining FROM giftcertificate "
                           "WHERE giftcertcode = ?", "GC-SOLD-1")
    assert D(cert["originalamount"]) == D(cert["amountremaining"]) == D("50.00")
    # the line's item is a gift certificate item: NetSuite books it to the liability account
    lines = suiteql(sim, "SELECT item FROM transactionline WHERE transaction = ? AND "
                         "mainline = 'F'", posted.netsuite_id)
    (item,) = suiteql(sim, "SELECT itemtype FROM item WHERE id = ?", str(lines[0]["item"]))
    assert item["itemtype"] == "GiftCert"
    # the certificate is read-only through REST, and its code cannot be sold twice
    assert "read-only" in refusal(sim, "giftCertificate", {"giftCertCode": "X"})
    read = call(sim, lambda c: c.get("giftCertificate", str(cert["id"])))
    assert read["amountRemaining"] == 50.0 and read["giftCertCode"] == "GC-SOLD-1"
    refused, _ = post(sim, {**sale, "pos_transaction_id": "T-GCSALE-2"})
    assert isinstance(refused, Rejection) and "already in use" in refused.message
    seeded = copy.deepcopy(sale)  # a card sold before go-live cannot be sold again either
    seeded["pos_transaction_id"], seeded["lines"][0]["gift_card_code"] = "T-GCSALE-3", "GC-100001"
    refused, _ = post(sim, seeded)
    assert isinstance(refused, Rejection) and "already in use" in refused.message
    # the sale itself stays editable (it re-validates with its own certificate)
    call(sim, lambda c: c.patch("cashSale", posted.netsuite_id, {"memo": "edited"}))
    assert len(suiteql(sim, "SELECT id FROM giftcertificate WHERE giftcertcode = ?",
                       "GC-SOLD-1")) == 1


def test_the_simulator_refuses_a_redemption_above_the_balance(sim) -> None:
    body = {"entity": {"id": "4999"}, "location": {"id": "1"},
            "item": {"items": [{"item": {"id": "1001"}, "quantity": 1, "rate": 1100,
                                "taxCode": {"id": "106"}}]},
            "giftCertRedemption": {"items": [{"authCode": {"id": "3"},
                                              "authCodeApplied": 1000.01}]}}
    assert "exceeds the gift certificate" in refusal(sim, "cashSale", body)


def test_a_payment_event_for_a_split_tender_invoice_does_not_post_twice(sim) -> None:
    sale = sale_with(tender("VISA", "30.00"), tender("CASH", "11.26"), txn="T-PAYEV")
    posted, _ = post(sim, sale)
    assert isinstance(posted, Posted) and posted.record_type == "invoice"
    pay = make_payment(pos_transaction_id="T-PAYEV", payment_id="P-T-PAYEV-1")

    async def run() -> object:
        async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as client:
            ref = ReferenceData()
            await ref.load(client)
            refs = resolve_payment(pay, MAPS, ref)
            assert isinstance(refs, PaymentRefs), refs
            return await post_payment(ReliableClient(client, RetryPolicy(max_attempts=1)),
                                      pay, refs)
    outcome = asyncio.run(run())
    assert isinstance(outcome, Skipped) and "tender payments" in outcome.why


def test_a_bank_deposit_receives_what_each_tender_took_not_the_gift_cards(sim) -> None:
    """The cash sale paid partly by gift card brings only its card part to the bank; the
    split sale's payments bring each tender's amount."""
    gift = sale_with(tender("GIFT_CARD", "11.26", gift_card_code="GC-100004"),
                     tender("VISA", "30.00"), txn="T-DEP-GIFT")
    split = sale_with(tender("VISA", "30.00"), tender("CASH", "11.26"), txn="T-DEP-SPLIT")
    gift_sale, _ = post(sim, gift)
    split_sale, _ = post(sim, split)
    assert isinstance(gift_sale, Posted) and isinstance(split_sale, Posted)
    receipts = [gift_sale.netsuite_id, *(w.netsuite_id for w in split_sale.tenders)]

    async def bank(client: NetSuiteClient) -> dict[str, Any]:
        dep = await client.create("deposit", {"account": {"id": "110"}, "payment": {"items": [
            {"id": rid, "deposit": True} for rid in receipts]}})
        return await client.get("deposit", dep, expand=True)
    deposit = call(sim, bank)
    assert [D(str(line["amount"])) for line in deposit["payment"]["items"]] == \
        [D("30.00"), D("30.00"), D("11.26")]
    assert D(str(deposit["total"])) == D("71.26")


def test_a_return_of_a_split_tender_sale_credits_its_invoice_and_pays_back(sim) -> None:
    """The invoice of a split sale is returned as any invoiced original: a creditMemo by
    ``!transform`` from it, and a customerRefund of what the till paid back."""
    sale = sale_with(tender("VISA", "30.00"), tender("CASH", "11.26"), txn="S001-R01-000042")
    posted, _ = post(sim, sale)
    assert isinstance(posted, Posted) and posted.record_type == "invoice"
    ret = make_return()

    async def flow(client: NetSuiteClient) -> tuple[Any, dict[str, Any]]:
        rc = ReliableClient(client, RetryPolicy(max_attempts=1))
        ref = ReferenceData()
        await ref.load(client)
        refs = resolve_return(ret, MAPS, ref)
        assert isinstance(refs, ReturnRefs), refs
        out = await post_return(rc, ret, refs)
        return out, await client.get("creditMemo", out.primary.netsuite_id)
    out, memo = call(sim, flow)
    assert [w.record_type for w in out.records] == ["creditMemo", "customerRefund"]
    assert memo["createdFrom"]["id"] == posted.netsuite_id and memo["total"] == 20.63
