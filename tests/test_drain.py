"""Backlog drain against the simulator over real HTTP: a pile of routed sales posted through
async batch jobs with the real-time path's guarantees (no broker needed)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.factories import make_sale, sandbox_refdata
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.streams.flows import drain
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import route
from tillbridge.streams.stages.enrich import Enrichment, enrich_sale
from tillbridge.streams.stages.messages import Source

MAPS = Mappings.load()


class _Codec:
    """Stands in for the Avro codec: a routed value is the index of a sale in ``sales``."""

    def __init__(self, sales: list[dict[str, Any]]) -> None:
        self.sales = sales

    def decode(self, value: bytes, topic: str) -> dict[str, Any]:
        return self.sales[int(value)]


def _routed(enr: Enrichment, i: int, offset: int = 0) -> Source:
    """Routed sale ``i`` (its value names it for ``_Codec``), read at input offset
    ``offset + i``: the same offset again is the same event (a replay)."""
    headers = [(route.H_ENRICHMENT, enr.to_json()), (route.H_SRC_TOPIC, b"pos.sale.v1"),
               (route.H_SRC_PARTITION, b"0"), (route.H_SRC_OFFSET, str(offset + i).encode())]
    return Source(topics.ROUTED_REALTIME, 0, i, b"k", str(i).encode(), headers)


def _sales(n: int) -> list[dict[str, Any]]:
    sales = []
    for i in range(n):
        sale = make_sale(pos_transaction_id=f"S001-R01-DR{i:04d}")
        if i % 10 == 0:  # a new identified shopper: a customer to write first
            sale["customer"].update(loyalty_id=f"LOY-DR-{i}", email=f"dr{i}@example.com",
                                    first_name="Dr", last_name=f"Ain{i}", anonymous_tag=None)
        sales.append(sale)
    return sales


async def _drain(sim: Any, sales: list[dict[str, Any]], posted: dict[str, Any],
                 before: Any = None, offset: int = 0) -> list[list[Any]]:
    ref = sandbox_refdata()
    pipe = Pipeline(Settings.from_env({}), codec=_Codec(sales), mappings=MAPS)  # type: ignore[arg-type]
    async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as raw:
        pipe.reliable = ReliableClient(raw, RetryPolicy(max_attempts=2))
        srcs = [_routed(enrich_sale(s, MAPS, ref), i, offset) for i, s in enumerate(sales)]
        if before is not None:
            before()
        return await drain.drain_batch(pipe, drain.batch_writer(pipe), srcs, posted)


def _stats(sim: Any) -> dict[str, Any]:
    return httpx.get(f"{sim.base_url}/__sim/stats").json()


def test_drain_posts_each_sale_once_in_few_requests_and_tells_replays_from_duplicates(
        sim) -> None:
    sales = _sales(150)
    posted: dict[str, Any] = {}
    outs = asyncio.run(_drain(sim, sales, posted))
    results = [json.loads(o[0].value) for o in outs]
    assert [r["outcome"] for r in results] == ["posted"] * 150
    assert all(o[0].written == (r["external_id"],) for o, r in zip(outs, results, strict=True))
    stats = _stats(sim)
    assert stats["records"]["cashSale"]["created"] == 150
    assert stats["records"]["customer"]["created"] == 15
    # 15 customers (upsert + id read) and two chunks of <= 100 instead of 150 POSTs.
    assert stats["requests"]["total"] < 60, stats["requests"]
    # The same backlog again (a redelivery after a crash, with the dedupe table lost): the
    # same events (same input coordinates), so their outcome is re-emitted as it was.
    again = [json.loads(o[0].value) for o in asyncio.run(_drain(sim, sales, {}))]
    assert [(r["outcome"], r.get("replayed")) for r in again] == [("posted", True)] * 150
    assert [r["netsuite_id"] for r in again] == [r["netsuite_id"] for r in results]
    # The same sales as other events (a POS sending them again: new coordinates): duplicates.
    resent = asyncio.run(_drain(sim, sales, {}, offset=1000))
    assert [json.loads(o[0].value)["outcome"] for o in resent] == ["duplicate"] * 150
    assert _stats(sim)["records"]["cashSale"]["created"] == 150


def test_a_refused_sale_is_dead_lettered_with_netsuite_details_the_rest_post(sim) -> None:
    sales = _sales(30)
    sales[7]["lines"][0]["sku"] = "TEE-002"  # same price list; retired below, after enrich
    outs = asyncio.run(_drain(sim, sales, {}, before=lambda: httpx.post(
        f"{sim.base_url}/__sim/items/TEE-002/deactivate").raise_for_status()))
    try:
        dead = outs[7][0]
        assert dead.topic == topics.dlq_topic("sink")
        headers = dict(dead.headers)
        assert headers["tillbridge.reason"] == b"netsuite_rejected"
        details = json.loads(headers["tillbridge.netsuite.error_details"])
        assert details and details[0]["o:errorCode"], "NetSuite's o:errorDetails, verbatim"
        others = [json.loads(o[0].value)["outcome"] for i, o in enumerate(outs) if i != 7]
        assert others == ["posted"] * 29
    finally:
        httpx.post(f"{sim.base_url}/__sim/items/TEE-002").raise_for_status()
