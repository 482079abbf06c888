"""Exact accounting for every family: an event read again after a crash is a replay (its
outcome re-emitted), another event with the same ids a duplicate. Read back from the
simulator over real HTTP: one record, stamped with the first event's input coordinates."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import httpx
import pytest

from tests.factories import make_order
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import route
from tillbridge.streams.stages.messages import Source


@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server


class _Codec:
    """Stands in for the Avro codec: the routed value is the event itself."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    def decode(self, value: bytes, topic: str) -> dict[str, Any]:
        return copy.deepcopy(self.event)


def _routed(topic: str, offset: int) -> Source:
    headers = [(route.H_SRC_TOPIC, topic.encode()), (route.H_SRC_PARTITION, b"1"),
               (route.H_SRC_OFFSET, str(offset).encode())]
    return Source(topics.ROUTED_REALTIME, 1, offset, b"k", b"v", headers)


def test_an_order_replayed_after_a_crash_is_not_a_duplicate(sim: SimServer) -> None:
    httpx.post(f"{sim.base_url}/__sim/reset").raise_for_status()
    order = make_order(order_id="ORD-RPL-1")
    pipe = Pipeline(Settings.from_env({}), codec=_Codec(order),  # type: ignore[arg-type]
                    mappings=Mappings.load())
    topic = topics.OMNICHANNEL.name

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as client:
            ref = ReferenceData()
            await ref.load(client)
            pipe.refdata = ref
            pipe.reliable = ReliableClient(client, RetryPolicy(max_attempts=1))
            outs = [await pipe.sink_all(_routed(topic, 40), {}),   # first time
                    await pipe.sink_all(_routed(topic, 40), {}),   # replayed after a crash
                    await pipe.sink_all(_routed(topic, 41), {})]   # the OMS sent it again
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
