"""A POS sale as a cashSale or a salesOrder, per store/channel configuration, against the
simulator over real HTTP; the sale's payment then follows the record it was booked as."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.factories import make_payment, make_sale, sandbox_refdata
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.streams.flows.payment import post_payment
from tillbridge.streams.flows.sale_writer import Posted, SalePoster
from tillbridge.streams.ledger.sale_records import sale_record_type
from tillbridge.streams.ledger.types import Posting, Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich import enrich_sale
from tillbridge.streams.stages.enrich_payment import PaymentRefs, resolve_payment

MAPS = Mappings.load()
MODES = {"default": "cashSale", "channels": {"ONLINE": "salesOrder"},
         "stores": {"S002": "cashSale", "S001": "salesOrder"}}


def test_store_setting_wins_over_channel_over_default() -> None:
    sale = make_sale()
    assert sale_record_type(sale, {}) == "cashSale"
    assert sale_record_type(sale, MODES) == "salesOrder"  # S001
    sale["store_id"] = "S002"
    sale["receipt"]["channel"] = "ONLINE"
    assert sale_record_type(sale, MODES) == "cashSale"  # the store says so
    sale["store_id"] = "S003"
    assert sale_record_type(sale, MODES) == "salesOrder"  # its channel says so
    sale["receipt"]["channel"] = "POS"
    assert sale_record_type(sale, MODES) == "cashSale"


async def _post_sale_then_payment(sim: Any, modes: dict[str, Any]) -> tuple[Posted, Any, dict]:
    ref = sandbox_refdata()
    sale = make_sale()
    async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as raw:
        client = ReliableClient(raw, RetryPolicy(max_attempts=2))
        poster = SalePoster(client, discount_item=MAPS.discount_item, sale_records=modes)
        enr = enrich_sale(sale, MAPS, ref)
        posted = await poster.post(sale, enr)
        assert isinstance(posted, Posted), posted
        record = await raw.get(posted.record_type, posted.netsuite_id, expand=True)
        refs = resolve_payment(make_payment(), MAPS, ref)
        assert isinstance(refs, PaymentRefs), refs
        paid = await post_payment(client, make_payment(), refs)
        return posted, paid, record


def test_sale_booked_as_sales_order_takes_its_payment_as_a_deposit(sim) -> None:
    posted, paid, order = asyncio.run(_post_sale_then_payment(sim, MODES))
    assert posted.record_type == "salesOrder"
    assert order["externalId"] == posted.external_id == "pos-sale-S001-S001-R01-000042"
    assert "paymentOption" not in order
    assert isinstance(paid, Posting), paid
    deposit = paid.records[0]
    assert deposit.record_type == "customerDeposit" and deposit.created
    stats = httpx.get(f"{sim.base_url}/__sim/stats").json()["records"]
    assert "cashSale" not in stats and stats["salesOrder"]["created"] == 1


def test_default_sale_is_a_cash_sale_that_covers_its_payment(sim) -> None:
    posted, paid, sale = asyncio.run(_post_sale_then_payment(sim, {}))
    assert posted.record_type == "cashSale" and sale["paymentOption"]
    assert isinstance(paid, Skipped) and "covered by cashSale" in paid.why
