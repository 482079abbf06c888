"""Inventory windows and register settlements into NetSuite: pure builders, then the
flows against the simulator over real HTTP with the project's ``ReliableClient``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import created, make_movement, make_settlement, run_client
from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.settlement import post_settlement
from tillbridge.streams.flows.stock import post_inventory_adjustment
from tillbridge.streams.ledger.settlement import (
    SettlementAccounts,
    build_deposit,
    build_over_short_journal,
    journal_totals,
    over_short,
)
from tillbridge.streams.ledger.stock import (
    StockWindow,
    adjustment_external_id,
    build_inventory_adjustment,
    net_deltas,
)
from tillbridge.streams.ledger.types import Posting, Skipped

START = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
END = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
SHRINKAGE = "520"  # Inventory Shrinkage (COGS) in the sandbox
ACCOUNTS = SettlementAccounts(bank="111", over_short="620", fees="610")


def get(sim: SimServer, record_type: str, id_or_eid: str) -> dict[str, Any]:
    return run_client(sim, lambda c: c.get(record_type, id_or_eid, expand=True))


def window(*lines: tuple[str, str], movements: int = 3) -> StockWindow:
    return StockWindow("S001", "1", START, END, tuple((i, D(q)) for i, q in lines), movements)


# -- inventory ------------------------------------------------------------------------------

def test_only_counts_and_shrink_become_adjustments() -> None:
    moves = [make_movement(quantity_delta=D("-1")),
             make_movement(reason="ADJUSTMENT", quantity_delta=D("4")),
             make_movement(sku="TEE-002", reason="SALE", quantity_delta=D("-2")),
             make_movement(sku="TEE-003", reason="SHRINK", quantity_delta=D("-1")),
             make_movement(sku="TEE-003", reason="ADJUSTMENT", quantity_delta=D("1"))]
    assert net_deltas(moves) == {"TEE-001": D("3")}  # type: ignore[arg-type]


def test_adjustment_body() -> None:
    body = build_inventory_adjustment(window(("1002", "-1"), ("1001", "2"), ("1002", "1"),
                                             ("1003", "-0.5")), SHRINKAGE, "1")
    assert body is not None
    assert body["externalId"] == "pos-adj-S001-20261126T150000Z"
    assert body["adjLocation"] == {"id": "1"} and body["account"] == {"id": "520"}
    assert [(ln["item"]["id"], ln["adjustQtyBy"]) for ln in body["inventory"]["items"]] == \
        [("1001", D("2")), ("1003", D("-0.5"))]  # 1002 nets to zero: left out
    assert body["tranDate"] == "2026-11-26"
    assert build_inventory_adjustment(window(("1001", "1"), ("1001", "-1")), "520", "1") is None


def test_inventory_adjustment_posts_once(sim: SimServer) -> None:
    win = window(("1001", "-2"), ("1002", "5"))
    first = run_client(sim, lambda c: post_inventory_adjustment(c, win, SHRINKAGE, "1"))
    assert isinstance(first, Posting) and first.created
    adj = get(sim, "inventoryAdjustment", eid(adjustment_external_id("S001", START)))
    assert adj["id"] == first.primary.netsuite_id
    assert adj["account"]["id"] == "520" and adj["adjLocation"]["id"] == "1"
    assert [(ln["item"]["id"], ln["adjustQtyBy"], ln["location"]["id"])
            for ln in adj["inventory"]["items"]] == [("1001", -2, "1"), ("1002", 5, "1")]
    again = run_client(sim, lambda c: post_inventory_adjustment(c, win, SHRINKAGE, "1"))
    assert isinstance(again, Posting) and not again.created
    assert again.primary.netsuite_id == first.primary.netsuite_id
    assert created(sim) == {"inventoryAdjustment": 1}
    empty = run_client(sim, lambda c: post_inventory_adjustment(c, window(), SHRINKAGE, "1"))
    assert isinstance(empty, Skipped)


# -- settlement ---------------------------------------------------------------------------------

def test_over_short_journal_is_balanced_per_tender() -> None:
    st = make_settlement()
    assert [over_short(t) for t in st["tenders"]] == [D("-1.50"), D("0.25")]  # type: ignore
    body = build_over_short_journal(st, ACCOUNTS, "1", "1")  # type: ignore[arg-type]
    assert body is not None and body["externalId"] == "pos-je-S001-Z-0042"
    lines = [(ln["account"]["id"], ln.get("debit"), ln.get("credit"))
             for ln in body["line"]["items"]]
    assert lines == [("620", D("1.50"), None), ("111", None, D("1.50")),  # cash short
                     ("111", D("0.25"), None), ("620", None, D("0.25"))]  # card over
    assert journal_totals(body) == (D("1.75"), D("1.75"))
    even = make_settlement(tenders=[{**st["tenders"][0], "over_short": D("0.00")}])
    assert build_over_short_journal(even, ACCOUNTS, "1") is None  # type: ignore[arg-type]


def test_deposit_body() -> None:
    st = make_settlement()
    body = build_deposit(st, ["7", "8", "7"], ACCOUNTS, "1", "1",  # type: ignore[arg-type]
                         fees={"VISA": D("0.87"), "CASH": D("0")})
    assert body is not None and body["externalId"] == "pos-dep-S001-Z-0042"
    assert body["payment"]["items"] == [{"deposit": True, "id": "7"},
                                        {"deposit": True, "id": "8"}]
    assert body["cashback"]["items"][0]["amount"] == D("0.87")
    assert build_deposit(st, [], ACCOUNTS, "1") is None  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fees"):
        build_deposit(st, ["7"], SettlementAccounts("111", "620"), "1",  # type: ignore
                      fees={"VISA": D("1")})


async def _cash_sales(client: ReliableClient, amounts: list[str]) -> list[str]:
    ids = []
    for i, amount in enumerate(amounts):
        ids.append(await client.create_idempotent("cashSale", f"pos-sale-S001-T{i}", {
            "entity": {"id": "4999"}, "location": {"id": "1"},
            "item": {"items": [{"item": {"id": "1001"}, "quantity": 1, "rate": D(amount)}]}}))
    return ids


def test_settlement_banks_the_receipts_and_books_over_short(sim: SimServer) -> None:
    st = make_settlement()
    receipts = run_client(sim, lambda c: _cash_sales(c, ["25.00", "15.00", "30.00"]))

    async def settle(client: ReliableClient) -> Posting | Skipped:
        return await post_settlement(client, st, receipts, ACCOUNTS, "1", "1",  # type: ignore
                                     fees={"VISA": D("0.87")})

    result = run_client(sim, settle)
    assert isinstance(result, Posting) and result.created
    assert [w.record_type for w in result.records] == ["deposit", "journalEntry"]
    dep = get(sim, "deposit", eid("pos-dep-S001-Z-0042"))
    assert dep["account"]["id"] == "111"
    assert sorted(ln["id"] for ln in dep["payment"]["items"]) == sorted(receipts)
    assert D(str(dep["total"])) == D("69.13")  # 70.00 of receipts less 0.87 fees
    for rid in receipts:
        assert get(sim, "cashSale", rid)["status"]["refName"] == "Deposited"
    je = get(sim, "journalEntry", eid("pos-je-S001-Z-0042"))
    debit = sum(D(str(ln.get("debit") or 0)) for ln in je["line"]["items"])
    credit = sum(D(str(ln.get("credit") or 0)) for ln in je["line"]["items"])
    assert debit == credit == D("1.75")
    assert "Z-0042" in je["memo"] and "S001/R01" in dep["memo"]

    before = created(sim)
    again = run_client(sim, settle)
    assert isinstance(again, Posting) and not again.created
    assert created(sim) == before == {"cashSale": 3, "deposit": 1, "journalEntry": 1}


def test_interim_report_posts_nothing(sim: SimServer) -> None:
    st = make_settlement(report_type="X")
    result = run_client(sim, lambda c: post_settlement(c, st, ["1"], ACCOUNTS, "1"))  # type: ignore
    assert isinstance(result, Skipped) and created(sim) == {}


def test_a_window_is_dated_on_its_stores_business_day() -> None:
    """A window starting 04:30 UTC on the 27th is 20:30 on the 26th in Los Angeles (S001):
    the adjustment's tranDate is the store's day, as a sale's is, not UTC's."""
    from tests.factories import sandbox_refdata
    from tillbridge.streams.flows.base import Lookups
    from tillbridge.streams.flows.stock import InventoryFlow
    from tillbridge.streams.refdata.mappings import Mappings

    lookups = Lookups(Mappings.load(), sandbox_refdata())
    start = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)
    mv = make_movement()
    members = [(mv, {"location": "1", "subsidiary": "1", "item": "1001"}, start, False)]
    body = InventoryFlow().window_body("S001", start, start.replace(hour=5), members, lookups)
    assert body is not None and body["tranDate"] == "2026-11-26"
    assert body["externalId"].startswith("pos-adj-S001-20261127T043000Z")
