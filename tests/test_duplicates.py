"""Double-scans (same basket, new id) and partial syncs (customer written, cashSale not)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from tests.factories import make_sale
from tests.sinkkit import EventCodec, routed, sink_session
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import route
from tillbridge.streams.stages.duplicates import (
    DoubleScanWindow,
    fingerprint,
    partial_entry,
    sync_state,
)
from tillbridge.streams.stages.messages import Source

# -- fingerprint and window (pure) -----------------------------------------------------------


def test_fingerprint_ignores_ids_times_and_order_but_not_the_basket() -> None:
    a = make_sale()
    b = make_sale(pos_transaction_id="S001-R01-000043", event_id="other")
    b["tenders"].reverse()
    b["lines"][0]["quantity"] = D("2")  # 2 == 2.000
    assert fingerprint(a) == fingerprint(b)
    for change in ({"register_id": "R02"}, {"total": D("41.27")}):
        assert fingerprint(make_sale(**change)) != fingerprint(a)
    c = make_sale()
    c["lines"][0]["unit_price"] = D("19.98")
    assert fingerprint(c) != fingerprint(a)


def test_window_flags_a_new_id_within_the_window_only() -> None:
    w = DoubleScanWindow(600)
    assert w.check("fp", "S001/T1", 1000.0) is None
    assert w.check("fp", "S001/T1", 1001.0) is None, "same transaction: dedupe's business"
    assert w.check("fp", "S001/T2", 1300.0) == "S001/T1"
    assert w.check("fp", "S001/T3", 1300.0 + 601) is None, "beyond the window"
    assert w.check("other", "S001/T4", 2000.0) is None


def test_window_is_bounded() -> None:
    w = DoubleScanWindow(600, max_entries=10)
    for n in range(100):
        w.check(f"fp{n}", f"T{n}", 1000.0)
    assert len(w) <= 10
    w.check("late", "T-late", 5000.0)
    assert len(w) == 1, "entries older than the window are evicted"


def test_sync_state() -> None:
    assert sync_state(None) == "new"
    assert sync_state(partial_entry("77", "pos-cust-X")) == "partial"
    assert sync_state({"netsuite_id": "9", "record_type": "cashSale"}) == "complete"


# -- the sink flow against the simulator -----------------------------------------------------

@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(sim):
    httpx.post(f"{sim.base_url}/__sim/reset")






def _stats(sim) -> dict[str, Any]:
    return httpx.get(f"{sim.base_url}/__sim/stats").json()["records"]


def test_partial_sync_is_recorded_then_completed_without_a_second_customer(sim) -> None:
    sale = make_sale(pos_transaction_id="S001-R01-PARTIAL")
    sale["customer"].update(loyalty_id="LOY-PART-1", email="part@example.com",
                            first_name="Pat", last_name="Ial", anonymous_tag=None)
    maps = Mappings.load()
    pipe = Pipeline(Settings.from_env({}), codec=EventCodec(sale), mappings=maps)  # type: ignore[arg-type]
    posted: dict[str, Any] = {}

    async def scenario() -> list[list[Any]]:
        async with sink_session(sim, pipe, sale, maps) as (client, enr):
            assert enr.customer.rule == "new_identified"
            # The item is retired after enrichment: the customer lands, the cashSale does not.
            httpx.post(f"{sim.base_url}/__sim/items/TEE-001/deactivate").raise_for_status()
            first = await pipe.sink_all(routed(1, enr), posted)
            httpx.post(f"{sim.base_url}/__sim/items/TEE-001").raise_for_status()
            second = await pipe.sink_all(routed(2, enr), posted)
            third = await pipe.sink_all(routed(3, enr), posted)
            return [first, second, third]

    first, second, third = asyncio.run(scenario())
    key = "S001/S001-R01-PARTIAL"
    # 1: dead-lettered, and the dedupe table knows the customer was written
    assert [o.topic for o in first] == [topics.dlq_topic("sink")]
    assert dict(first[0].headers)["tillbridge.reason"] == b"netsuite_rejected"
    # 2: completed: same customer, no second customer, the cashSale posted, audit produced
    result = json.loads(second[0].value)
    assert result["outcome"] == "posted" and result["completed_partial"] is True
    assert result["customer_id"] == sync_customer(first, posted, key, result)
    assert [o.topic for o in second[1:]] == [topics.AUDIT_PROMOTIONS]
    audit = json.loads(second[1].value)
    assert (audit["promotion_id"], audit["amount"], audit["line_no"]) == ("PROMO-7", "2.00", 1)
    assert audit["netsuite_external_id"] == "pos-sale-S001-S001-R01-PARTIAL"
    # 3: a duplicate now, with no audit records
    assert len(third) == 1 and json.loads(third[0].value)["outcome"] == "duplicate"
    stats = _stats(sim)
    assert stats["customer"]["created"] == 1 and stats["cashSale"]["created"] == 1


def sync_customer(first: list[Any], posted: dict[str, Any], key: str,
                  result: dict[str, Any]) -> str:
    """The customer id the partial entry held (the table now holds the complete entry)."""
    inputs = json.loads(dict(first[0].headers)["tillbridge.inputs"])
    assert inputs["customer_written"] == "true"
    assert sync_state(posted[key]) == "complete"
    return inputs["customer_id"]


def test_double_scan_flag_travels_to_the_result(sim) -> None:
    sale = make_sale(pos_transaction_id="S001-R01-DS2")
    maps = Mappings.load()
    pipe = Pipeline(Settings.from_env({}), codec=EventCodec(sale), mappings=maps)  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        async with sink_session(sim, pipe, sale, maps) as (client, enr):
            flag = [("tillbridge.double_scan_of", b"S001/S001-R01-DS1")]
            return await pipe.sink_all(routed(1, enr, extra=flag), {})

    out = asyncio.run(scenario())
    result = json.loads(out[0].value)
    assert result["outcome"] == "posted" and result["double_scan_of"] == "S001/S001-R01-DS1"


def test_ingest_flags_the_same_basket_under_a_new_id() -> None:
    from tests.factories import sandbox_refdata

    sale = make_sale()
    codec = EventCodec(sale)
    pipe = Pipeline(Settings.from_env({}), codec=codec, mappings=Mappings.load())  # type: ignore[arg-type]
    pipe.refdata = sandbox_refdata()
    src = Source("pos.sale.v1", 0, 1, b"k", b"v", [])
    first = pipe.ingest(src)
    codec.event = make_sale(pos_transaction_id="S001-R01-000043")
    second = pipe.ingest(src)
    assert first.topic == second.topic == topics.ROUTED_REALTIME
    assert "tillbridge.double_scan_of" not in dict(first.headers)
    assert dict(second.headers)["tillbridge.double_scan_of"] == b"S001/S001-R01-000042"
    assert "tillbridge.double_scan_of" not in dict(Pipeline.origin(
        Source(topics.ROUTED_REALTIME, 0, 1, b"k", b"v", second.headers)).headers)


def test_a_replayed_event_is_told_apart_from_a_pos_duplicate(sim) -> None:
    """The same input record again (after a crash: table entry lost or not) re-emits its
    outcome as posted, once per event; another record with the same transaction id is a
    duplicate. Read back from the simulator: one cashSale, stamped with the first event."""
    sale = make_sale(pos_transaction_id="S001-R01-RPL1")
    maps = Mappings.load()
    pipe = Pipeline(Settings.from_env({}), codec=EventCodec(sale), mappings=maps)  # type: ignore[arg-type]

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with sink_session(sim, pipe, sale, maps) as (client, enr):
            table: dict[str, Any] = {}
            outs = [await pipe.sink_all(routed(5, enr), table),   # first time
                    await pipe.sink_all(routed(5, enr), table),   # replay, table knows
                    await pipe.sink_all(routed(5, enr), {}),      # replay, table lost
                    await pipe.sink_all(routed(6, enr), table),   # POS sent it again
                    await pipe.sink_all(routed(7, enr), {})]      # again, table lost
            docs = [json.loads(o[0].value) for o in outs]
            record = await client.get("cashSale", docs[0]["netsuite_id"])
            return docs, record

    docs, record = asyncio.run(scenario())
    assert [(d["outcome"], d.get("replayed", False)) for d in docs] == [
        ("posted", False), ("posted", True), ("posted", True),
        ("duplicate", False), ("duplicate", False)]
    assert {d["netsuite_id"] for d in docs} == {record["id"]}
    assert [d["source"] for d in docs] == ["pos.sale.v1/0/5"] * 3 + ["pos.sale.v1/0/6",
                                                                     "pos.sale.v1/0/7"]
    assert record["custbody_tillbridge_source"] == "pos.sale.v1/0/5"
    assert _stats(sim)["cashSale"]["created"] == 1


def test_origin_restores_the_input_key_of_a_record_routed_under_another() -> None:
    """A return is routed under its sale's key; its dead letters keep its own key."""
    src = Source("pos.return.v1", 3, 77, b"RET-1", b"v", [("x", b"1")])
    hop = route.hop_headers(src)
    routed = Source(topics.ROUTED_REALTIME, 0, 5, b"SALE-9", b"v", hop)
    back = route.origin(routed)
    assert (back.topic, back.partition, back.offset, back.key) == ("pos.return.v1", 3, 77,
                                                                   b"RET-1")
    assert back.headers == [("x", b"1")]
    keyless = route.origin(Source(topics.ROUTED_REALTIME, 0, 6, b"SALE-9", b"v",
                                  route.hop_headers(Source("pos.sale.v1", 1, 2, None, b"v",
                                                           []))))
    assert keyless.key is None
