"""Tax and tenders reach NetSuite to the cent through the real pipeline (broker, registry,
worker, simulator): generated POS sales of every tax and tender situation are published,
and each sale record (cashSale, or the invoice of a split tender) is read back from the
simulator by SuiteQL; NetSuite's total and taxTotal must equal the receipt's total and
tax_total, and its money per payment method (paymentOption, customerPayments, gift
certificate redemptions, credit memos applied) the receipt's tenders. The simulator
computes all of it from what the bodies say (tax code rates on the legacy subsidiary,
taxDetails on the SuiteTax one, gift certificate and invoice balances), so this checks the
books, not an echo."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from tests.integration.helpers import Outcomes, encode_sales, produce
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.pos.generator import STORE_TAX, generate
from tillbridge.devstack.stack import WorkerProcess
from tillbridge.devstack.tender_books import situations_of, tender_check
from tillbridge.streams.ledger.sale_records import sale_external_id
from tillbridge.streams.ledger.tenders import plan_tenders

pytestmark = pytest.mark.integration

SUITETAX_STORE = "S004"  # rounds on the total, on a SuiteTax subsidiary


def _mappings(tmp_path: Any) -> str:
    doc = json.loads(resources.files("tillbridge.connectors").joinpath(
        "data/mappings.json").read_text())
    doc["stores"][SUITETAX_STORE]["subsidiary"] = "2"
    doc["tax"]["subsidiaries"] = {"1": {"model": "legacy"},
                                  "2": {"model": "suitetax", "tax_type": "13"}}
    path = tmp_path / "mappings.json"
    path.write_text(json.dumps(doc))
    return str(path)


async def _books(base_url: str, suitetax_eid: str
                 ) -> tuple[dict[str, tuple[Decimal, Decimal]], dict[str, Any]]:
    """(externalId -> (total, taxTotal)) of every sale record, by SuiteQL; one SuiteTax sale."""
    async with NetSuiteClient(base_url, NetSuiteCredentials.dev()) as client:
        rows = [row for record_type in ("cashsale", "invoice") for row in await client.suiteql(
            "SELECT externalid, foreigntotal, taxtotal FROM transaction WHERE recordtype = ?",
            params=[record_type])]
        suitetax = await client.get("cashSale", "eid:" + suitetax_eid, expand=True)
    books = {r["externalid"]: (Decimal(str(r["foreigntotal"])), Decimal(str(r["taxtotal"])))
             for r in rows}
    return books, suitetax


def test_netsuite_total_tax_and_tenders_equal_the_receipts(stack, tmp_path) -> None:
    store = stack.sim.state.store  # the account: subsidiary 1 legacy, 2 SuiteTax
    store.subsidiaries["1"]["taxModel"] = "legacy"
    store.subsidiaries["2"] = {"id": "2", "name": "Tillbridge Retail SuiteTax",
                               "currency": "USD", "taxModel": "suiteTax"}
    store.locations["4"]["subsidiary"] = "2"
    sales = [e.value for e in generate(90, seed=23)]
    situations = {
        "legacy, rounded per line": any(s["store_id"] in ("S001", "S003") for s in sales),
        "legacy, rounded on the total": any(s["store_id"] == "S002" for s in sales),
        "legacy, VAT-inclusive": any(s["prices_include_tax"] for s in sales),
        "SuiteTax": any(s["store_id"] == SUITETAX_STORE for s in sales),
        "exempt": any(ln["tax_code"] == "TAX-EXEMPT" for s in sales for ln in s["lines"]),
        "reduced rate": any(ln["tax_code"] == "TAX-REDUCED" for s in sales for ln in s["lines"]),
        "discount after tax": any(s["order_discounts"] for s in sales),
    }
    assert all(situations.values()), situations
    tender_situations = {k for s in sales for k in situations_of(s)}  # type: ignore[arg-type]
    assert tender_situations == {"split_3_ways", "gift_card_and_other", "store_credit",
                                 "gift_card_sold", "cash_with_change"}, tender_situations
    assert STORE_TAX["S002"][0] == STORE_TAX[SUITETAX_STORE][0] == "TOTAL"
    suitetax_eid = next(sale_external_id(s) for s in sales  # type: ignore[arg-type]
                        if s["store_id"] == SUITETAX_STORE
                        and plan_tenders(s).record_type == "cashSale")  # type: ignore[arg-type]
    s = stack.settings.replace(mappings_path=_mappings(tmp_path))
    out = Outcomes(s)
    try:
        with WorkerProcess(s):
            produce(s, encode_sales(s, sales))
            out.wait(len(sales), timeout=60)
        assert out.summary() == {"result:posted": len(sales)}, out.summary()
    finally:
        out.close()
    books, suitetax = asyncio.run(_books(s.netsuite_base_url or "", suitetax_eid))
    wrong = []
    for sale in sales:
        total, tax = books[sale_external_id(sale)]  # type: ignore[arg-type]
        if (total, tax) != (sale["total"], sale["tax_total"]):
            wrong.append((sale["pos_transaction_id"], str(total), str(sale["total"]), str(tax),
                          str(sale["tax_total"])))
    assert not wrong, wrong
    assert sum(1 for s in sales if s["tax_total"]) > 50, "the sales must carry tax"
    tenders = tender_check(s.netsuite_base_url or "", sales)
    assert (tenders["match"], tenders["drift"]) == (len(sales), 0), tenders
    assert suitetax["taxDetailsOverride"] is True and suitetax["taxDetails"]["items"]
    assert all("taxCode" not in ln for ln in suitetax["item"]["items"])
