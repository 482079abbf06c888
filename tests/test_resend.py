"""Same POS transaction id, different content: a ``conflicting_resend``, never a silent drop."""

from __future__ import annotations

import asyncio
import copy
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
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.resend import content_diff, content_fingerprint, content_summary

# -- fingerprint and diff (pure) -------------------------------------------------------------


def _fp(sale: dict[str, Any]) -> str:
    return content_fingerprint(content_summary(sale))  # type: ignore[arg-type]


def test_identical_resend_has_the_same_fingerprint_whatever_ids_times_and_order() -> None:
    a = make_sale()
    b = make_sale(event_id="another-event", receipt={**a["receipt"], "printed": False})
    b["tenders"].reverse()
    b["lines"][0]["quantity"] = D("2")  # 2 == 2.000
    assert _fp(a) == _fp(b)
    assert _fp(a).startswith("c1:") and len(_fp(a)) == 3 + 64


@pytest.mark.parametrize("change", [
    lambda s: s.update(total=D("41.27")),
    lambda s: s["lines"][0].update(unit_price=D("19.98")),
    lambda s: s["lines"][0].update(quantity=D("3")),
    lambda s: s["lines"][0]["discounts"][0].update(amount=D("1.00")),
    lambda s: s["lines"][0].update(tax_amount=D("3.29")),
    lambda s: s["lines"][0].update(tax_code="TAX-OTHER"),
    lambda s: s["tenders"][0].update(tender_type="MC"),
    lambda s: s.update(currency="EUR"),
])
def test_any_economic_change_changes_the_fingerprint(change: Any) -> None:
    sale = make_sale()
    change(sale)
    assert _fp(sale) != _fp(make_sale())


def test_diff_names_totals_and_lines_added_removed_changed() -> None:
    posted = make_sale()
    resent = copy.deepcopy(posted)
    resent["lines"][0]["quantity"] = D("3")
    resent["lines"].append({**posted["lines"][0], "line_no": 2, "sku": "MUG-002",
                            "discounts": [], "quantity": D("1")})
    resent["total"] = D("70.00")
    diff = content_diff(content_summary(posted), content_summary(resent))  # type: ignore[arg-type]
    assert diff["total"] == {"posted": "41.26", "resent": "70"}
    assert list(diff["lines_added"]) == ["MUG-002"]
    assert diff["lines_changed"]["TEE-001"]["posted"].startswith("2 x 19.99")
    assert diff["lines_changed"]["TEE-001"]["resent"].startswith("3 x 19.99")
    assert "lines_removed" not in diff and "tenders" not in diff
    gone = copy.deepcopy(posted)
    gone["lines"] = []
    assert list(content_diff(content_summary(posted),  # type: ignore[arg-type]
                             content_summary(gone))["lines_removed"]) == ["TEE-001"]  # type: ignore[arg-type]
    assert content_diff(content_summary(posted), content_summary(posted)) == {}  # type: ignore[arg-type]


def test_two_lines_of_one_sku_stay_two_entries() -> None:
    sale = make_sale()
    sale["lines"].append({**sale["lines"][0], "line_no": 2})
    assert list(content_summary(sale)["lines"]) == ["TEE-001", "TEE-001#2"]  # type: ignore[arg-type]


# -- through the sink, against the NetSuite simulator ---------------------------------------


@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server






def _three_tees(sale: dict[str, Any]) -> dict[str, Any]:
    """The sale re-sent with 3 tees instead of 2 (totals and tender to match)."""
    changed = copy.deepcopy(sale)
    changed["lines"][0]["quantity"] = D("3")
    changed["subtotal"], changed["total"] = D("59.97"), D("61.25")
    changed["tenders"][0]["amount"] = D("61.25")
    return changed


def test_a_changed_resend_is_dead_lettered_and_the_posted_record_stays(sim) -> None:
    """Posted, replayed, re-sent identical, re-sent changed: posted, posted+replayed,
    duplicate, conflicting_resend (in the DLQ, with the differences). The simulator is read
    back: one cashSale whose total is the first receipt's to the cent."""
    httpx.post(f"{sim.base_url}/__sim/reset")
    sale = make_sale(pos_transaction_id="S001-R01-CONFL1")
    changed = _three_tees(sale)
    maps = Mappings.load()
    codec = EventCodec(sale)
    pipe = Pipeline(Settings.from_env({}), codec=codec, mappings=maps)  # type: ignore[arg-type]
    counted = metrics.REGISTRY.get_sample_value(
        "tillbridge_conflicting_resends_total", {"store": "S001"}) or 0.0

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        async with sink_session(sim, pipe, sale, maps) as (client, enr):
            table: dict[str, Any] = {}
            outs = [await pipe.sink_all(routed(5, enr), table),   # first time
                    await pipe.sink_all(routed(5, enr), table),   # replay of that event
                    await pipe.sink_all(routed(6, enr), table)]   # identical re-send
            codec.event = changed
            outs.append(await pipe.sink_all(routed(7, enr), table))  # changed re-send
            record = await client.get("cashSale", json.loads(outs[0][0].value)["netsuite_id"])
            return outs, record

    outs, record = asyncio.run(scenario())
    assert [o[0].topic for o in outs[:3]] == [topics.RESULTS] * 3
    docs = [json.loads(o[0].value) for o in outs[:3]]
    assert [(d["outcome"], d.get("replayed", False)) for d in docs] == [
        ("posted", False), ("posted", True), ("duplicate", False)]
    dead = outs[3]
    assert len(dead) >= 1 and dead[0].topic == topics.dlq_topic("sink")
    headers = {k: v for k, v in dead[0].headers}
    assert headers["tillbridge.reason"] == b"conflicting_resend"
    inputs = json.loads(headers["tillbridge.inputs"])
    assert inputs["differences"]["total"] == {"posted": "41.26", "resent": "61.25"}
    assert inputs["posted_record"]["netsuite_id"] == record["id"]
    assert list(inputs["differences"]["lines_changed"]) == ["TEE-001"]
    # NetSuite holds the first receipt, tax included (41.26), not the re-send's 61.25.
    assert D(str(record["total"])) == sale["total"] == D("41.26")
    stats = httpx.get(f"{sim.base_url}/__sim/stats").json()["records"]
    assert stats["cashSale"]["created"] == 1
    assert metrics.REGISTRY.get_sample_value(
        "tillbridge_conflicting_resends_total", {"store": "S001"}) == counted + 1


def test_with_the_table_lost_netsuites_stamped_fingerprint_still_tells_a_conflict(sim) -> None:
    """The dedupe table is rebuilt empty (lost state, a new worker group) after the sale
    was posted: an identical re-send is still a duplicate, a changed one still a
    conflicting_resend, told by the fingerprint stamped on NetSuite's record; its inputs
    say the posted lines are not known and compare the totals NetSuite holds."""
    httpx.post(f"{sim.base_url}/__sim/reset")
    sale = make_sale(pos_transaction_id="S001-R01-CONFL2")
    changed = _three_tees(sale)
    maps = Mappings.load()
    codec = EventCodec(sale)
    pipe = Pipeline(Settings.from_env({}), codec=codec, mappings=maps)  # type: ignore[arg-type]

    async def scenario() -> list[Any]:
        async with sink_session(sim, pipe, sale, maps) as (client, enr):
            outs = [await pipe.sink_all(routed(5, enr), {}),  # posted
                    await pipe.sink_all(routed(6, enr), {})]  # identical, table lost
            codec.event = changed
            outs.append(await pipe.sink_all(routed(7, enr), {}))  # changed, table lost
            return outs

    outs = asyncio.run(scenario())
    docs = [json.loads(o[0].value) for o in outs[:2]]
    assert [d["outcome"] for d in docs] == ["posted", "duplicate"]
    headers = dict(outs[2][0].headers)
    assert outs[2][0].topic == topics.dlq_topic("sink")
    assert headers["tillbridge.reason"] == b"conflicting_resend"
    inputs = json.loads(headers["tillbridge.inputs"])
    assert inputs["differences"]["total"] == {"posted": "41.26", "resent": "61.25"}
    assert "not known" in inputs["differences"]["lines"]
    record = httpx.get(f"{sim.base_url}/__sim/stats").json()["records"]
    assert record["cashSale"]["created"] == 1
