"""Store-local business dates: time zones, the late-night cut-off, DST, and the mappings."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.factories import make_sale
from tests.sinkkit import EventCodec, routed, sink_session
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import MappingError, Mappings, StoreMapping
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.business_day import (
    business_date,
    date_mismatch,
    mismatch_audit,
    store_business_date,
)
from tillbridge.streams.stages.validate import validate_sale

LA = ZoneInfo("America/Los_Angeles")
BERLIN = ZoneInfo("Europe/Berlin")


def test_a_sale_at_0030_local_with_a_2h_cutoff_belongs_to_the_day_before() -> None:
    at = datetime(2026, 6, 11, 0, 30, tzinfo=BERLIN)
    assert business_date(at, BERLIN, 2) == date(2026, 6, 10)
    assert business_date(at, BERLIN, 0) == date(2026, 6, 11)
    assert business_date(datetime(2026, 6, 11, 2, 0, tzinfo=BERLIN), BERLIN, 2) == date(2026, 6, 11)


def test_a_store_west_of_utc_keeps_its_own_date() -> None:
    """21:00 in Los Angeles on 26 Nov is 05:00 UTC on 27 Nov: the business date is the 26th."""
    at = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
    assert at.date() == date(2026, 11, 27)
    assert business_date(at, LA, 0) == date(2026, 11, 26)
    assert not date_mismatch("2026-11-26", at, LA, 4)
    assert date_mismatch("2026-11-27", at, LA, 4), "the UTC date is not the store's"


def test_dst_edges_follow_the_wall_clock() -> None:
    # Spring forward in Los Angeles, 8 Mar 2026: 02:00 -> 03:00 (UTC-8 -> UTC-7).
    before = datetime(2026, 3, 8, 9, 30, tzinfo=UTC)   # 01:30 PST
    after = datetime(2026, 3, 8, 10, 30, tzinfo=UTC)   # 03:30 PDT
    assert business_date(before, LA, 2) == date(2026, 3, 7)
    assert business_date(after, LA, 2) == date(2026, 3, 8)
    # Fall back, 1 Nov 2026: 01:30 happens twice; both are before a 2 h cut-off.
    first = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)   # 01:30 PDT
    second = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)  # 01:30 PST
    assert business_date(first, LA, 2) == business_date(second, LA, 2) == date(2026, 10, 31)


def test_mismatch_forgives_the_cutoff_only() -> None:
    late = datetime(2026, 6, 11, 1, 30, tzinfo=BERLIN)
    assert not date_mismatch("2026-06-10", late, BERLIN, 2), "within the cut-off"
    assert not date_mismatch("2026-06-11", late, BERLIN, 2), "calendar date, cut-off ignored"
    assert date_mismatch("2026-06-10", datetime(2026, 6, 11, 2, 30, tzinfo=BERLIN), BERLIN, 2)
    assert date_mismatch("2026-06-09", late, BERLIN, 2)
    assert date_mismatch("2026-06-12", late, BERLIN, 2)


def _doc(**store: Any) -> dict[str, Any]:
    return {"version": 1, "guest_customer": "1", "tenders": {"CASH": "1"},
            "stores": {"S1": {"location": "1", **store}}}


def test_mappings_carry_and_check_timezone_and_cutoff() -> None:
    m = Mappings.from_dict(_doc(timezone="America/Chicago", business_day_cutoff=2))
    assert (m.stores["S1"].timezone, m.stores["S1"].business_day_cutoff) == ("America/Chicago", 2)
    d = Mappings.from_dict(_doc()).stores["S1"]
    assert (d.timezone, d.business_day_cutoff) == ("UTC", 4.0)
    with pytest.raises(MappingError, match=r"stores\.S1\.timezone: 'Mars/Olympus'"):
        Mappings.from_dict(_doc(timezone="Mars/Olympus"))
    for bad in (-1, 13, "2", True):
        with pytest.raises(MappingError, match="business_day_cutoff"):
            Mappings.from_dict(_doc(business_day_cutoff=bad))
    assert Mappings.load().stores["S005"].timezone == "America/Chicago"


def test_missing_business_date_is_computed_and_a_far_one_is_audited() -> None:
    store = StoreMapping("1", "1", None, "America/Los_Angeles", 2)
    sale = make_sale(business_date="", completed_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC))
    assert validate_sale(sale) is None  # type: ignore[arg-type]
    assert store_business_date(sale, store) == "2026-11-26"  # type: ignore[arg-type]
    assert mismatch_audit(sale, store) is None  # type: ignore[arg-type]
    sale["business_date"] = "2026-11-25"
    audit = mismatch_audit(sale, store)  # type: ignore[arg-type]
    assert audit is not None and audit["computed"] == "2026-11-26"
    assert audit["local_completed_at"] == "2026-11-27T01:30:00-08:00"


# -- through the sink, against the NetSuite simulator ---------------------------------------


def _post(sim: SimServer, sale: dict[str, Any], offset: int) -> tuple[list[Any], dict[str, Any]]:
    maps = Mappings.load()
    pipe = Pipeline(Settings.from_env({}), codec=EventCodec(sale), mappings=maps)  # type: ignore[arg-type]

    async def run() -> tuple[list[Any], dict[str, Any]]:
        async with sink_session(sim, pipe, sale, maps) as (client, enr):
            outs = await pipe.sink_all(routed(offset, enr), {})
            record = await client.get("cashSale", json.loads(outs[0].value)["netsuite_id"])
            return outs, record

    return asyncio.run(run())


def test_tran_date_is_the_store_local_date_and_a_far_till_date_is_flagged() -> None:
    """S001 is in Los Angeles (example mappings): a sale completed 05:00 UTC on 27 Nov without
    a business date is booked on 26 Nov; one the till dated 3 days off is posted on the
    till's date with an audit record and the metric. Read back from the simulator."""
    with SimServer() as server:
        httpx.post(f"{server.base_url}/__sim/reset")
        at = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)
        outs, record = _post(server, make_sale(pos_transaction_id="S001-R01-TZ1",
                                               business_date="", completed_at=at), 1)
        assert record["tranDate"] == "2026-11-26"
        assert not [o for o in outs if o.topic == topics.AUDIT_BUSINESS_DATES]
        before = metrics.REGISTRY.get_sample_value(
            "tillbridge_business_date_mismatch_total", {"store": "S001"}) or 0.0
        outs, record = _post(server, make_sale(pos_transaction_id="S001-R01-TZ2",
                                               business_date="2026-11-23", completed_at=at), 2)
        assert record["tranDate"] == "2026-11-23"
        audits = [json.loads(o.value) for o in outs if o.topic == topics.AUDIT_BUSINESS_DATES]
        assert [(a["stated"], a["computed"]) for a in audits] == [("2026-11-23", "2026-11-26")]
        assert metrics.REGISTRY.get_sample_value(
            "tillbridge_business_date_mismatch_total", {"store": "S001"}) == before + 1
