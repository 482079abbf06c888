"""Exact accounting for every family: an event read again after a crash is a replay (its
outcome re-emitted), another event with the same ids a duplicate. Read back from the
simulator over real HTTP: one record, stamped with the first event's input coordinates."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.factories import make_order
from tests.sinkkit import EventCodec, routed, sink_session
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime.settings import Settings


@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server






def test_an_order_replayed_after_a_crash_is_not_a_duplicate(sim: SimServer) -> None:
    httpx.post(f"{sim.base_url}/__sim/reset").raise_for_status()
    order = make_order(order_id="ORD-RPL-1")
    pipe = Pipeline(Settings.from_env({}), codec=EventCodec(order),  # type: ignore[arg-type]
                    mappings=Mappings.load())
    topic = topics.OMNICHANNEL.name

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with sink_session(sim, pipe, refdata=True) as (client, _):
            def src(offset: int) -> Any:
                return routed(offset, topic=topic, partition=1)
            outs = [await pipe.sink_all(src(40), {}),   # first time
                    await pipe.sink_all(src(40), {}),   # replayed after a crash
                    await pipe.sink_all(src(41), {})]   # the OMS sent it again
            docs = [json.loads(o[-1].value) for o in outs]
            order_id = docs[0]["records"][0]["netsuite_id"]
            return docs, await client.get("salesOrder", order_id)

    docs, record = asyncio.run(scenario())
    assert [(d["outcome"], d.get("replayed", False)) for d in docs] == [
        ("posted", False), ("posted", True), ("duplicate", False)], docs
    assert record["custbody_tillbridge_source"] == f"{topic}/1/40"
    assert [d["source"] for d in docs] == [f"{topic}/1/40", f"{topic}/1/40", f"{topic}/1/41"]
    held = httpx.get(f"{sim.base_url}/__sim/stats").json()["records"]["salesOrder"]
    assert held["created"] == 1
