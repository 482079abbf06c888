"""A rebalance in the middle of a NetSuite outage: nothing lost, nothing twice.

While the sink holds records (NetSuite down: held, never dead-lettered, never acked), a
second worker joins the group and takes partitions over. The first worker still holds
records of partitions it gave up; the second reads them again from the committed offsets.
Once NetSuite is back, both may post the same sale: NetSuite must still hold it once.
Real Tansu broker, registry, simulator and worker processes.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math

import httpx
import pytest

from tests.factories import make_sale
from tests.integration.helpers import (
    Outcomes,
    encode_sales,
    netsuite_external_ids,
    produce,
    sim_stats,
    wait_until,
    worker_metric,
)
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.stack import WorkerProcess

pytestmark = pytest.mark.integration

ROUTED = topics.ROUTED_REALTIME


def _assigned(worker: WorkerProcess) -> float:
    return worker_metric(worker, "tillbridge_assigned_partitions", topic=ROUTED)


def test_worker_joining_during_an_outage_leaves_every_sale_posted_once(stack) -> None:
    s = stack.settings.replace(netsuite_breaker_failures=2,
                            netsuite_breaker_cooldown_s=0.5, netsuite_max_attempts=2)
    sim = s.netsuite_base_url
    before = [make_sale(pos_transaction_id=f"RB-A-{i:03d}") for i in range(20)]
    during = [make_sale(pos_transaction_id=f"RB-B-{i:03d}") for i in range(80)]
    out = Outcomes(s)
    first = WorkerProcess(s).start()
    second = WorkerProcess(s)
    try:
        produce(s, encode_sales(s, before))
        out.wait(len(before))
        wait_until(lambda: _assigned(first) == s.topic_partitions, 30, "first owns all")
        httpx.post(f"{sim}/__sim/outage", json={"seconds": 600}).raise_for_status()
        produce(s, encode_sales(s, during))
        wait_until(lambda: worker_metric(first, "tillbridge_sink_paused_partitions") > 0,
                   30, "the sink holds")
        second.start(wait=False)  # not ready until NetSuite is back (no reference data)
        wait_until(lambda: _assigned(second) > 0 and _assigned(first) < s.topic_partitions,
                   45, "the rebalance")
        out.tail.poll(1)
        assert not out.dead, f"dead-lettered during the outage: {out.summary()}"
        assert len(out.results) == len(before), "nothing posted while NetSuite is down"
        httpx.delete(f"{sim}/__sim/outage").raise_for_status()
        want = {sale["pos_transaction_id"] for sale in before + during}

        def all_out() -> bool:
            out.tail.poll(0.3)
            return {json.loads(r.value)["pos_transaction_id"] for r in out.results} == want

        try:
            wait_until(all_out, 60, "an outcome for every sale")
        except AssertionError as exc:
            seen = {json.loads(r.value)["pos_transaction_id"] for r in out.results}
            raise AssertionError(f"{exc}; missing {sorted(want - seen)[:10]}; "
                                 f"{out.summary()}\n--- first:\n{first.log_tail(60)}"
                                 f"\n--- second:\n{second.log_tail(60)}") from None
        assert not math.isnan(_assigned(second)) and _assigned(second) > 0
        # What the first worker held for partitions it gave up was left to the second.
        assert worker_metric(first, "tillbridge_sink_held_after_rebalance_total") > 0
    finally:
        second.stop()
        first.stop()
    assert not out.dead, out.summary()
    held = collections.Counter(asyncio.run(netsuite_external_ids(s, "cashSale")))
    expected = {f"pos-sale-{sale['store_id']}-{sale['pos_transaction_id']}"
                for sale in before + during}
    assert set(held) == expected, f"missing in NetSuite: {sorted(expected - set(held))[:5]}"
    assert [x for x, n in held.items() if n > 1] == [], "posted twice"
    records = sim_stats(s)["records"]["cashSale"]
    assert records["created"] == records["held"] == len(expected)
    out.close()
