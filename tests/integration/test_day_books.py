"""A day of till traffic is in NetSuite to the cent, per POS transaction (issue 10 §7).

A generated day (five stores, both tax models, tax rounded per line and on the total, VAT
prices, exempt items and shoppers, discounts before and after tax, split tenders three
ways, gift cards redeemed and sold, store credit, cash with change, returns, exchanges,
loyalty members) goes through the real pipeline (broker, registry, worker, simulator).
Then every record is read back from the simulator by SuiteQL and GET (``devstack/books.py``)
and held against the POS event it came from: a sale's total, tax and money per payment
method, a return's refund and its tax, an exchange's sale, each loyalty movement and the
members' balances by SuiteQL ``SUM``. The simulator computes totals, tax and balances from
what the bodies say (tax code rates on the legacy subsidiary, taxDetails on the SuiteTax
one, gift certificate and invoice balances), so this checks the books, not an echo of what
was sent."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest

from tests.integration.helpers import Outcomes
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.pos.publish import publish_generated
from tillbridge.devstack.books import read_books
from tillbridge.devstack.pos.followups import with_followups
from tillbridge.devstack.pos.generator import STORE_TAX, generate
from tillbridge.devstack.stack import WorkerProcess
from tillbridge.devstack.tender_books import situations_of
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


def _suitetax_account(stack: Any) -> None:
    store = stack.sim.state.store  # the account: subsidiary 1 legacy, 2 SuiteTax
    store.subsidiaries["1"]["taxModel"] = "legacy"
    store.subsidiaries["2"] = {"id": "2", "name": "Tillbridge Retail SuiteTax",
                               "currency": "USD", "taxModel": "suiteTax"}
    store.locations["4"]["subsidiary"] = "2"


def _situations(sales: list[dict[str, Any]], returns: list[dict[str, Any]]) -> dict[str, bool]:
    lines = [ln for s in sales for ln in s["lines"]]
    return {
        "legacy, rounded per line": any(s["store_id"] in ("S001", "S003") for s in sales),
        "legacy, rounded on the total": any(s["store_id"] == "S002" for s in sales),
        "VAT-inclusive": any(s["prices_include_tax"] for s in sales),
        "SuiteTax": any(s["store_id"] == SUITETAX_STORE for s in sales),
        "exempt item": any(ln["tax_code"] == "TAX-EXEMPT" for ln in lines),
        "reduced rate": any(ln["tax_code"] == "TAX-REDUCED" for ln in lines),
        "discount after tax": any(s["order_discounts"] for s in sales),
        "split tender": any(len(s["tenders"]) > 1 for s in sales),
        "gift card": any(t["tender_type"] == "GIFT_CARD" for s in sales for t in s["tenders"]),
        "loyalty earned": any(s.get("loyalty_points_earned") for s in sales),
        "return": any(r["kind"] == "RETURN" for r in returns),
        "exchange": any(r.get("exchange_lines") for r in returns),
        "loyalty reversed": any(r.get("loyalty_points_reversed") for r in returns),
    }


def test_a_day_of_tills_is_in_netsuite_to_the_cent(stack, tmp_path) -> None:
    _suitetax_account(stack)
    stream = list(with_followups(generate(220, seed=23), seed=23, return_rate=0.3))
    sales = [e.value for e in stream if e.topic == topics.SALE]
    returns = [e.value for e in stream if e.topic == topics.RETURN]
    situations = _situations(sales, returns)  # type: ignore[arg-type]
    assert all(situations.values()), situations
    tender_situations = {k for sale in sales for k in situations_of(sale)}  # type: ignore
    assert tender_situations == {"split_3_ways", "gift_card_and_other", "store_credit",
                                 "gift_card_sold", "cash_with_change"}, tender_situations
    assert STORE_TAX["S002"][0] == STORE_TAX[SUITETAX_STORE][0] == "TOTAL"
    s = stack.settings.replace(mappings_path=_mappings(tmp_path))
    out = Outcomes(s)
    try:
        with WorkerProcess(s):
            publish_generated(s.kafka_bootstrap_servers or "", s.schema_registry_url or "",
                              stream)
            out.tail.wait_for(lambda t: len(_settled(out)) >= len(stream), 120)
        assert not out.dead, out.summary()
        assert len(_settled(out)) == len(stream), out.summary()
    finally:
        out.close()
    books = read_books(s.netsuite_base_url or "",
                       [(e.topic.name, e.value) for e in stream])  # type: ignore[misc]
    assert not books.mismatches, books.mismatches[:20]
    assert not books.missing, books.missing
    assert books.checked["sale total"] == books.checked["sale tax"] == len(sales)
    assert books.checked["return total"] + books.checked["exchange total"] >= len(returns)
    assert books.checked["loyalty points"] > 20 and books.checked["loyalty balance"] > 10
    tender_checks = sum(n for what, n in books.checked.items() if what.startswith("tender "))
    assert tender_checks >= len(sales), books.checked
    assert sum(1 for sale in sales if sale["tax_total"]) > 100, "the sales must carry tax"
    money = books.money()
    assert Decimal(money["drift"]) == 0 and money["pos_total"] == money["netsuite_total"]
    _suitetax_sale_has_details(s.netsuite_base_url or "", sales)


def _settled(out: Outcomes) -> set[str]:
    """Input records (by coordinates) with a final outcome, dead letters included; a
    parked return counts once it is released and posted."""
    docs = [json.loads(r.value or b"{}") for r in out.results]
    return {d["source"] for d in docs if d.get("outcome") != "parked"} | \
        {f"dlq/{r.partition}/{r.offset}" for r in out.dead}


def _suitetax_sale_has_details(base_url: str, sales: list[dict[str, Any]]) -> None:
    eid = next(sale_external_id(s) for s in sales  # type: ignore[arg-type]
               if s["store_id"] == SUITETAX_STORE
               and plan_tenders(s).record_type == "cashSale")  # type: ignore[arg-type]

    async def get() -> dict[str, Any]:
        async with NetSuiteClient(base_url, NetSuiteCredentials.dev()) as client:
            return await client.get("cashSale", "eid:" + eid, expand=True)
    record = asyncio.run(get())
    assert record["taxDetailsOverride"] is True and record["taxDetails"]["items"]
    assert all("taxCode" not in ln for ln in record["item"]["items"])
