"""POS returns -> NetSuite: pure rules and builders, then the flow against the simulator over
real HTTP with the project's client (created, linked, traceable, idempotent)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from tests.factories import (
    created,
    make_return,
    make_sale,
    post_cash_sale,
    return_line,
    run_client,
    sandbox_refdata,
)
from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.connectors.netsuite.wire import dumps
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.returns import post_return
from tillbridge.streams.ledger.ids import sale_id
from tillbridge.streams.ledger.refund import (
    SourceLine,
    build_refund_transform,
    match_lines,
    unit_rate,
)
from tillbridge.streams.ledger.types import Missing, Posting
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich_return import ReturnRefs, resolve_return
from tillbridge.streams.stages.records import Rejection

MAPS = Mappings.load(None)
REF = sandbox_refdata()
SALE_EID = "pos-sale-S001-S001-R01-000042"
RTN_EID = "pos-rtn-S001-S001-R02-000077"


def two_line_sale() -> dict[str, Any]:
    """make_sale() plus a cap: NetSuite lines are tee, its discount line, cap."""
    sale = make_sale()
    sale["lines"].append({
        "line_no": 2, "sku": "CAP-001", "description": "Cap #1", "quantity": D("1.000"),
        "unit_price": D("10.00"), "price_level": "BASE", "discounts": [],
        "tax_code": "TAX-CA-SF", "tax_rate": D("8.6250"), "tax_amount": D("0.86"),
        "promotion_ids": []})
    sale.update(subtotal=D("49.98"), tax_total=D("4.14"), total=D("52.12"))
    sale["tenders"][0]["amount"] = D("52.12")
    return sale


CAP_LINE = return_line(line_no=2, original_line_no=2, sku="CAP-001", description="Cap #1",
                       unit_price=D("10.00"), refund_amount=D("10.00"),
                       tax_refund_amount=D("0.86"), condition="DEFECTIVE",
                       disposition="DISPOSE", reason_code="DEFECTIVE")


def resolve(ret: dict[str, Any], **kwargs: Any) -> ReturnRefs:
    refs = resolve_return(ret, kwargs.pop("maps", MAPS), REF, **kwargs)
    assert isinstance(refs, ReturnRefs), refs
    return refs


def lines(record: dict[str, Any], sublist: str = "item") -> list[dict[str, Any]]:
    return record[sublist]["items"]


# -- pure: validate and resolve ------------------------------------------------------------

def test_resolve_maps_lines_locations_original_and_tender() -> None:
    ret = make_return(lines=[return_line(restock_location="S002"), CAP_LINE],
                      refund_total=D("31.49"), net_refund=D("31.49"))
    ret["refund_tenders"][0]["amount"] = D("31.49")
    refs = resolve(ret)
    assert refs.items == ["1001", "1025"]
    assert refs.line_locations == ["2", "1"], "restocked at S002, disposed unit at the store"
    assert refs.write_off == [False, True]
    assert refs.tax_codes == ["101", "101"]
    assert (refs.original, refs.original_types) == (SALE_EID, ("cashSale", "invoice"))
    assert refs.payment_method == "2", "VISA refund tender"
    assert (refs.customer, refs.customer_rule) == (None, "guest_fallback")
    assert ReturnRefs.from_json(refs.to_json()) == refs


def _off(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(ret: dict[str, Any]) -> None:
        ret[field] = value
    return change


def _line(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(ret: dict[str, Any]) -> None:
        ret["lines"][0].update(changes)
    return change


def _exchange_without_lines(ret: dict[str, Any]) -> None:
    ret["kind"] = "EXCHANGE"


def _tenders_short(ret: dict[str, Any]) -> None:
    ret["refund_tenders"][0]["amount"] = D("20.00")


@pytest.mark.parametrize(("change", "reason", "rule"), [
    (_off("refund_total", D("20.64")), "totals_mismatch", "totals.refund_total"),
    (_off("net_refund", D("1.00")), "totals_mismatch", "totals.net_refund"),
    (_tenders_short, "tender_mismatch", "tenders.sum"),
    (_line(quantity=D("0")), "invalid_amount", "amounts.sane"),
    (_line(unit_price=D("10.00")), "invalid_amount", "amounts.refund_le_paid"),
    (_line(tax_code=None), "missing_tax_code", "required.tax_code"),
    (_exchange_without_lines, "missing_field", "required.exchange_lines"),
    (_off("store_id", "S999"), "unknown_store", "mapping.store"),
    (_line(restock_location="W999"), "unknown_store", "mapping.restock_location"),
    (_line(sku="NOPE-001"), "unknown_sku", "item.exists"),
    (_line(tax_refund_amount=D("2.00")), "totals_mismatch", "totals.refund_total"),
    (_off("refund_method", "BITCOIN"), "unknown_tender", "mapping.refund_method"),
])
def test_bad_returns_are_rejected_with_catalogued_reasons(
        change: Callable[[dict[str, Any]], None], reason: str, rule: str) -> None:
    ret = make_return()
    change(ret)
    got = resolve_return(ret, MAPS, REF)
    assert isinstance(got, Rejection), got
    assert (got.reason, got.rule) == (reason, rule), got.message


def test_tax_refund_must_match_the_tax_code_rate() -> None:
    ret = make_return(lines=[return_line(tax_refund_amount=D("1.70"))],
                      refund_total=D("20.69"), net_refund=D("20.69"))
    ret["refund_tenders"][0]["amount"] = D("20.69")
    got = resolve_return(ret, MAPS, REF)
    assert isinstance(got, Rejection) and got.reason == "tax_mismatch"
    assert got.inputs["tax_expected"] == "1.64"


def test_exchange_discount_needs_a_discount_item() -> None:
    ex = {"line_no": 1, "sku": "TEE-002", "description": None, "quantity": D("1.000"),
          "unit_price": D("20.63"), "discount_amount": D("1.00"), "tax_code": None,
          "tax_rate": D("0"), "tax_amount": D("0.00")}
    ret = make_return(kind="EXCHANGE", exchange_lines=[ex], exchange_total=D("19.63"),
                      net_refund=D("1.00"), refund_method="EXCHANGE_ONLY")
    ret["refund_tenders"][0]["amount"] = D("1.00")
    assert isinstance(resolve_return(ret, MAPS, REF), ReturnRefs)
    got = resolve_return(ret, replace(MAPS, discount_item=None), REF)
    assert isinstance(got, Rejection) and got.reason == "discount_unmapped"


def test_store_credit_may_list_no_tender_and_names_the_store_credit_method() -> None:
    refs = resolve(make_return(refund_method="STORE_CREDIT", refund_tenders=[]))
    assert refs.payment_method == MAPS.tenders["STORE_CREDIT"]
    cash = make_return(refund_method="CASH", refund_tenders=[])
    assert resolve_return(cash, MAPS, REF).reason == "tender_mismatch"  # type: ignore[union-attr]


def test_receipt_less_return_books_to_a_known_shopper_or_no_one() -> None:
    none = {k: None for k in ("pos_transaction_id", "store_id", "register_id", "business_date",
                              "online_order_id")}
    ret = make_return(original={**none, "channel": "POS"})
    ret["customer"]["loyalty_id"] = "LOY100001"
    refs = resolve(ret)
    assert (refs.original, refs.original_types) == (None, ())
    assert (refs.customer, refs.customer_rule) == ("5001", "loyalty_id")
    cross = make_return(original={**none, "channel": "POS", "pos_transaction_id": "T9",
                                  "store_id": "S002"})
    assert resolve(cross).original == sale_id("S002", "T9"), "cross-store: the sale's store"


# -- pure: builders ----------------------------------------------------------------------------

def test_lines_match_the_cash_sale_past_its_discount_lines() -> None:
    source = [SourceLine(1, "1001", D("2"), D("39.98")), SourceLine(2, "2001", D("1"), D("-2")),
              SourceLine(3, "1025", D("1"), D("10.00"))]
    ret = make_return(lines=[CAP_LINE, return_line(line_no=3, original_line_no=2)])
    refs = replace(resolve(make_return()), items=["1025", "1001"])
    # line 2 of the POS sale is NetSuite line 3; a wrong original_line_no falls back by item
    assert match_lines(ret, refs, source) == [3, 1]
    twice = make_return(lines=[return_line(), return_line(line_no=2)])
    refs2 = replace(refs, items=["1001", "1001"])
    assert match_lines(twice, refs2, source) == [1, None], "one source line backs one return"


def test_refund_transform_body_keeps_returned_lines_and_exact_money() -> None:
    source = [SourceLine(1, "1001", D("2"), D("39.98")), SourceLine(2, "2001", D("1"), D("-2"))]
    ret = make_return()
    body = build_refund_transform(ret, resolve(ret), source, "2")
    wire = json.loads(dumps(body), parse_float=D)
    items = wire["item"]["items"]
    assert items[0]["orderLine"] == 1 and items[0]["amount"] == D("18.99")
    assert items[0]["rate"] == D("18.99") and items[0]["quantity"] == D("1.000")
    assert items[1] == {"orderLine": 2, "quantity": 0}, "the discount line is dropped"
    assert wire["paymentOption"] == {"id": "2"}
    assert wire["custbody_pos_transaction_id"] == "S001-R02-000077"
    assert wire["custbody_pos_original_ref"] == "S001/S001-R01-000042"
    assert unit_rate(D("10.00"), D("3")) * 3 != D("10.00")
    assert (unit_rate(D("10.00"), D("3")) * 3).quantize(D("0.01")) == D("10.00")


# -- against the simulator ---------------------------------------------------------------

def test_cash_refund_is_a_linked_traceable_transform_posted_once(sim: SimServer) -> None:
    ret = make_return(refund_method="CASH")
    ret["refund_tenders"][0]["tender_type"] = "CASH"
    refs = resolve(ret)

    async def flow(rc: ReliableClient) -> tuple[Any, Any, dict[str, Any], str]:
        sale = await post_cash_sale(rc, make_sale(), MAPS, REF)
        first = await post_return(rc, ret, refs)
        again = await post_return(rc, ret, refs)
        return first, again, await rc.get("cashRefund", eid(RTN_EID), expand=True), sale

    before = created(sim)
    first, again, refund, sale = run_client(sim, flow)
    assert isinstance(first, Posting) and [w.record_type for w in first.records] == ["cashRefund"]
    w = first.primary
    assert w.created and w.external_id == RTN_EID and w.links == {"createdFrom": sale}
    assert refund["id"] == w.netsuite_id and refund["createdFrom"]["id"] == sale
    assert refund["entity"]["id"] == "4999", "the sale's customer"
    assert refund["paymentOption"]["id"] == "1", "refunded in cash, not to the card"
    (line,) = lines(refund)
    assert (line["item"]["id"], line["quantity"], line["amount"]) == ("1001", 1.0, 18.99)
    assert line["orderLine"] == 1 and line["location"]["id"] == "1"
    assert (refund["total"], refund["taxTotal"]) == (20.63, 1.64), "the POS refund_total, tax too"
    assert refund["otherRefNum"] == "S001-R02-000077" and "S001/R02" in refund["memo"]
    assert refund["custbody_pos_register_id"] == "R02"
    assert isinstance(again, Posting) and not again.created
    assert again.primary == replace(w, created=False)
    assert created(sim) == {**before, "cashSale": 1, "cashRefund": 1}


def test_return_before_its_sale_waits_then_posts(sim: SimServer) -> None:
    ret = make_return()
    refs = resolve(ret)

    async def flow(rc: ReliableClient) -> tuple[Any, dict[str, int], Any]:
        early = await post_return(rc, ret, refs)
        between = created(sim)
        await post_cash_sale(rc, make_sale(), MAPS, REF)
        return early, between, await post_return(rc, ret, refs)

    early, between, late = run_client(sim, flow)
    assert early == Missing(SALE_EID, ("cashSale", "invoice",
                                       "summary:S001|R01|2026-11-26|S001-R01-000042"),
                            early.detail)
    assert between == {}, "nothing posted standalone"
    assert isinstance(late, Posting) and late.primary.record_type == "cashRefund"
    assert late.primary.created


def test_store_credit_becomes_a_credit_memo_on_the_sale_customer(sim: SimServer) -> None:
    ret = make_return(refund_method="STORE_CREDIT", refund_tenders=[])
    refs = resolve(ret)

    async def flow(rc: ReliableClient) -> tuple[Any, dict[str, Any], str]:
        sale = await post_cash_sale(rc, make_sale(), MAPS, REF)
        out = await post_return(rc, ret, refs)
        return out, await rc.get("creditMemo", eid(RTN_EID), expand=True), sale

    out, memo, sale = run_client(sim, flow)
    assert isinstance(out, Posting) and out.primary.record_type == "creditMemo"
    assert out.primary.links == {"original": sale}
    assert memo["custbody_pos_original_id"] == sale, "linked to the cash sale it credits"
    assert memo["entity"]["id"] == "4999" and memo["total"] == 20.63  # POS refund_total
    assert memo["status"]["id"] == "A", "credit stays open on the account"
    assert "paymentOption" not in memo
    assert "cashRefund" not in created(sim)


def test_disposed_unit_is_written_off_and_restocked_one_goes_to_its_location(
        sim: SimServer) -> None:
    ret = make_return(lines=[return_line(restock_location="S002"), CAP_LINE],
                      refund_total=D("31.49"), net_refund=D("31.49"))
    ret["refund_tenders"][0]["amount"] = D("31.49")
    refs = resolve(ret)

    async def flow(rc: ReliableClient) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
        await post_cash_sale(rc, two_line_sale(), MAPS, REF)
        out = await post_return(rc, ret, refs)
        again = await post_return(rc, ret, refs)
        refund = await rc.get("cashRefund", eid(RTN_EID), expand=True)
        adj = await rc.get("inventoryAdjustment", eid("pos-disp-S001-S001-R02-000077"),
                           expand=True)
        return out, again, refund, adj

    out, again, refund, adj = run_client(sim, flow)
    assert [w.record_type for w in out.records] == ["cashRefund", "inventoryAdjustment"]
    assert out.records[1].links == {"return": out.primary.netsuite_id}
    tee, cap = lines(refund)
    assert (tee["orderLine"], tee["location"]["id"]) == (1, "2"), "restocked at S002"
    assert (cap["orderLine"], cap["location"]["id"], cap["amount"]) == (3, "1", 10.0)
    assert cap["custcol_pos_return_condition"] == "DEFECTIVE/DISPOSE/DEFECTIVE"
    assert refund["total"] == 31.49, "the POS refund_total: the sale's tax codes carry over"
    (wo,) = lines(adj, "inventory")
    assert (wo["item"]["id"], wo["adjustQtyBy"], wo["location"]["id"]) == ("1025", -1.0, "1")
    assert adj["account"]["id"] == "520" and adj["otherRefNum"] == "S001-R02-000077"
    assert not again.created and len(again.records) == 2
    assert created(sim) == {"cashSale": 1, "cashRefund": 1, "inventoryAdjustment": 1}


def test_receipt_less_return_is_a_standalone_refund_to_the_guest(sim: SimServer) -> None:
    none = {k: None for k in ("pos_transaction_id", "store_id", "register_id", "business_date",
                              "online_order_id")}
    ret = make_return(original={**none, "channel": "POS"}, refund_method="CASH",
                      approved_by="M01")
    ret["refund_tenders"][0]["tender_type"] = "CASH"
    refs = resolve(ret)

    async def flow(rc: ReliableClient) -> tuple[Any, dict[str, Any]]:
        out = await post_return(rc, ret, refs)
        return out, await rc.get("cashRefund", out.primary.netsuite_id, expand=True)

    out, refund = run_client(sim, flow)
    assert isinstance(out, Posting) and out.primary.links == {}
    assert "createdFrom" not in refund
    assert refund["entity"]["id"] == MAPS.guest_customer
    assert refund["paymentOption"]["id"] == "1" and refund["total"] == 20.63  # with tax
    assert "no receipt" in refund["memo"] and refund["externalId"] == RTN_EID
    assert created(sim) == {"cashRefund": 1}


def test_exchange_refunds_returned_lines_and_sells_the_new_ones(sim: SimServer) -> None:
    ex = {"line_no": 1, "sku": "JNS-001", "description": "Jeans #1", "quantity": D("1.000"),
          "unit_price": D("25.00"), "discount_amount": None, "tax_code": "TAX-CA-SF",
          "tax_rate": D("8.6250"), "tax_amount": D("2.16")}
    ret = make_return(kind="EXCHANGE", exchange_lines=[ex], exchange_total=D("27.16"),
                      net_refund=D("-6.53"), refund_method="EXCHANGE_ONLY")
    ret["refund_tenders"][0]["amount"] = D("6.53")  # the uplift, collected on the card
    refs = resolve(ret)

    async def flow(rc: ReliableClient) -> tuple[Any, Any, dict[str, Any]]:
        await post_cash_sale(rc, make_sale(), MAPS, REF)
        out = await post_return(rc, ret, refs)
        again = await post_return(rc, ret, refs)
        return out, again, await rc.get("cashSale", eid("pos-exch-S001-S001-R02-000077"),
                                        expand=True)

    out, again, exch = run_client(sim, flow)
    assert [w.record_type for w in out.records] == ["cashRefund", "cashSale"]
    assert out.records[1].links == {"return": out.primary.netsuite_id}
    assert exch["custbody_pos_return_ref"] == RTN_EID
    assert exch["otherRefNum"] == ret["pos_transaction_id"] and "net -6.53" in exch["memo"]
    (line,) = lines(exch)
    assert (line["item"]["id"], line["amount"]) == ("1009", 25.0)
    assert (exch["total"], exch["taxTotal"]) == (27.16, 2.16), "the POS exchange_total, tax too"
    assert exch["paymentOption"]["id"] == "2", "same method as the refund: only the net moves"
    assert not again.created
    assert created(sim) == {"cashSale": 2, "cashRefund": 1}


def test_invoiced_original_gets_a_credit_memo_and_a_customer_refund(sim: SimServer) -> None:
    ret = make_return(refund_method="CASH")
    ret["refund_tenders"][0]["tender_type"] = "CASH"
    refs = resolve(ret)
    invoice = {"entity": {"id": "5001"}, "location": {"id": "1"},
               "item": {"items": [{"item": {"id": "1001"}, "quantity": 2, "rate": D("18.99")}]}}

    async def flow(rc: ReliableClient) -> tuple[Any, Any, dict[str, Any], dict[str, Any], str]:
        inv = await rc.create_idempotent("invoice", SALE_EID, invoice)
        await rc.create_idempotent("customerPayment", "pos-pay-S001-P1", {
            "customer": {"id": "5001"}, "payment": D("37.98"),
            "apply": {"items": [{"doc": {"id": inv}, "apply": True, "amount": D("37.98")}]}})
        out = await post_return(rc, ret, refs)
        again = await post_return(rc, ret, refs)
        memo = await rc.get("creditMemo", out.primary.netsuite_id, expand=True)
        refund = await rc.get("customerRefund", eid("pos-rfd-S001-S001-R02-000077"),
                              expand=True)
        return out, again, memo, refund, inv

    out, again, memo, refund, inv = run_client(sim, flow)
    assert [w.record_type for w in out.records] == ["creditMemo", "customerRefund"]
    assert memo["createdFrom"]["id"] == inv and memo["entity"]["id"] == "5001"
    assert memo["total"] == 20.63 and memo["status"]["id"] == "B", "paid out in full"
    (applied,) = lines(refund, "apply")
    assert applied["doc"]["id"] == memo["id"] and applied["amount"] == 20.63  # with tax
    assert refund["customer"]["id"] == "5001" and refund["paymentOption"]["id"] == "1"
    assert not again.created


def test_permanent_netsuite_refusal_propagates(sim: SimServer) -> None:
    ret = make_return(lines=[CAP_LINE], refund_total=D("10.86"), net_refund=D("10.86"))
    ret["refund_tenders"][0]["amount"] = D("10.86")
    refs = resolve(ret, write_off_account="110")  # a bank account: not for adjustments

    async def flow(rc: ReliableClient) -> None:
        await post_cash_sale(rc, two_line_sale(), MAPS, REF)
        await post_return(rc, ret, refs)

    with pytest.raises(NetSuiteError) as err:
        run_client(sim, flow)
    assert err.value.kind == "permanent" and err.value.error_path == "account"


def test_credit_on_an_open_invoice_is_applied_to_it_not_paid_out(sim: SimServer) -> None:
    ret = make_return(refund_method="CASH")
    ret["refund_tenders"][0]["tender_type"] = "CASH"
    refs = resolve(ret)
    invoice = {"entity": {"id": "5001"}, "location": {"id": "1"},
               "item": {"items": [{"item": {"id": "1001"}, "quantity": 2, "rate": D("18.99")}]}}

    async def flow(rc: ReliableClient) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        inv = await rc.create_idempotent("invoice", SALE_EID, invoice)
        out = await post_return(rc, ret, refs)
        memo = await rc.get("creditMemo", out.primary.netsuite_id, expand=True)
        return out, memo, await rc.get("invoice", inv)

    out, memo, inv = run_client(sim, flow)
    assert [w.record_type for w in out.records] == ["creditMemo"], "no payout: nothing left"
    (applied,) = lines(memo, "apply")
    assert applied["doc"]["id"] == inv["id"] and applied["amount"] == 20.63
    assert inv["amountRemaining"] == 17.35  # the untaxed invoice (37.98) less the taxed credit
    assert "customerRefund" not in created(sim)


def test_store_return_of_an_online_order_waits_for_it_and_links_it(sim: SimServer) -> None:
    """Parked until the order is in NetSuite, then NetSuite's chain from it (the chain
    itself: tests/test_online_return.py)."""
    ret = make_return(original={"pos_transaction_id": None, "store_id": None,
                                "register_id": None, "business_date": None,
                                "channel": "ONLINE", "online_order_id": "W-1001"})
    refs = resolve(ret)
    order = {"entity": {"id": "5002"}, "location": {"id": "9"}, "orderStatus": "B",
             "item": {"items": [{"item": {"id": "1001"}, "quantity": 1, "rate": D("18.99")}]}}

    async def flow(rc: ReliableClient) -> tuple[Any, Any, dict[str, Any], str]:
        early = await post_return(rc, ret, refs)
        so = await rc.create_idempotent("salesOrder", "pos-ord-W-1001", order)
        out = await post_return(rc, ret, refs)
        return early, out, await rc.get("customerRefund", eid("pos-rfd-S001-S001-R02-000077")), so

    early, out, refund, so = run_client(sim, flow)
    assert early == Missing("pos-ord-W-1001", ("salesOrder",), early.detail)
    assert isinstance(out, Posting) and out.primary.links == {"createdFrom": so}
    assert [w.record_type for w in out.records] == [
        "returnAuthorization", "itemReceipt", "creditMemo", "customerRefund"]
    assert refund["customer"]["id"] == "5002", "the online shopper is refunded"
    assert refund["total"] == 20.63 and "online order W-1001" in refund["memo"]


def test_refund_whose_answer_is_lost_is_found_not_posted_twice(sim: SimServer) -> None:
    ret = make_return()
    refs = resolve(ret)
    run_client(sim, lambda rc: post_cash_sale(rc, make_sale(), MAPS, REF))
    httpx.post(sim.base_url + "/__sim/config", json={
        "commit_then_timeout": 1, "timeout_after_commit_s": 0.05}).raise_for_status()
    out = run_client(sim, lambda rc: post_return(rc, ret, refs))
    assert isinstance(out, Posting) and out.primary.created, "this event's write landed"
    stats = httpx.get(sim.base_url + "/__sim/stats").json()
    assert stats["faults"]["commit_then_timeout"] == 1
    assert created(sim) == {"cashSale": 1, "cashRefund": 1}
