"""Reference-data refreshes: what a full and an incremental pull write, against the
simulator over real HTTP (the Kafka side is covered by the integration tests)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.refdata.sync import META, build_index, plan_changes, refresh


@pytest.fixture
def sim():
    with SimServer() as server:
        yield server


def _refresh(sim, current, full, now=None):
    async def run():
        async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as client:
            return await refresh(client, current, full=full, now=now)
    return asyncio.run(run())


def _apply(current: dict, writes: dict, meta: dict) -> dict:
    out = {**current}
    for key, row in writes.items():
        if row is None:
            out.pop(key, None)
        else:
            out[key] = row
    out[META] = meta
    return out


def test_full_then_incremental_writes_only_what_changed(sim) -> None:
    writes, meta = _refresh(sim, {}, full=True)
    assert meta["version"] == 1 and meta["mode"] == "full"
    table = _apply({}, writes, meta)
    ref, seen_meta = build_index(table.items())
    assert ref.ready and "TEE-001" in ref.items and seen_meta == meta
    assert ref.item_locations is not None and ref.tax_codes

    # Nothing changed: an incremental refresh writes no rows, only a new _meta.
    writes, meta2 = _refresh(sim, table, full=False)
    assert writes == {} and meta2["version"] == 2 and meta2["mode"] == "incremental"
    table = _apply(table, writes, meta2)

    # A new item and a deactivated one are picked up by modification date.
    httpx.post(f"{sim.base_url}/__sim/items/MUG-777").raise_for_status()
    httpx.post(f"{sim.base_url}/__sim/items/TEE-002/deactivate").raise_for_status()
    writes, meta3 = _refresh(sim, table, full=False)
    changed_items = {row["itemid"] for key, row in writes.items() if key.startswith("item:")}
    assert changed_items == {"MUG-777", "TEE-002"}
    assert any(key.startswith("stock:") for key in writes), "new item's stocking read"
    ref, _ = build_index(_apply(table, writes, meta3).items())
    assert ref.items["MUG-777"].active and not ref.items["TEE-002"].active


def test_cursor_overlaps_so_clock_skew_cannot_skip_a_change(sim) -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    _, meta = _refresh(sim, {}, full=True, now=now)
    assert meta["cursor"] == (now - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")


def test_full_refresh_deletes_rows_netsuite_no_longer_has() -> None:
    existing = {"item:1": {"id": "1", "itemid": "A"}, "item:2": {"id": "2", "itemid": "B"},
                "location:9": {"id": "9"}, META: {"version": 3}}
    fetched = {"item": [{"id": "1", "itemid": "A"}], "location": [{"id": "9"}]}
    upserts, deletes = plan_changes(existing, fetched, full=True)
    assert upserts == {} and deletes == ["item:2"]
    # Incremental: items are read by modification date, so absence is not deletion.
    upserts, deletes = plan_changes(existing, fetched, full=False)
    assert deletes == []


def test_new_kinds_are_pulled_and_indexed(sim) -> None:
    writes, meta = _refresh(sim, {}, full=True)
    assert meta["unreadable"] == []
    ref, _ = build_index(_apply({}, writes, meta).items())
    # matrix: the parent is known from its children, children name their parent
    assert ref.items["JKT-100"].matrix_parent and not ref.items["JKT-100-M"].matrix_parent
    assert ref.items["JKT-100-M"].parent == ref.items["JKT-100"].id
    assert ref.items["TEE-001"].taxschedule == "1"
    assert ref.items["TEE-001"].itemtype == "InvtPart"
    assert ref.item_availability["1104"]["1"] == 3 and ref.item_availability["1103"]["2"] == 25
    assert ref.subsidiaries["1"].name == "Tillbridge Retail Inc."
    assert ref.sales_reps["E001"] == "301"
    assert ref.promotions["MARKDOWN5"].discount_item == "2003"
    assert ref.price_levels == {"1": "Base Price", "2": "Member", "3": "Clearance"}
    assert ref.prices[("1001", "1")] == Decimal("24.50")
    assert ref.prices[("1001", "2")] == Decimal("22.05")
    # link rows without an id are keyed by the pair they stand for
    assert "pricing:1001/2" in writes and "stock:1104/1" in writes
    assert "employee:301" in writes and "promotion:703" in writes
