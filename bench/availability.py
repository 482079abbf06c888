"""The availability part of ``make bench``: how soon a POS sale moves availability, and how
soon a NetSuite change reaches the availability topic.

``availability lag p99:`` one default worker (every agent: ingest and the NetSuite sink run
beside the availability agent, as in production) takes clean sales published at a steady
100 sales/s; the lag of one sale is the availability record it caused (its ``cause`` names
the sale's partition and offset) less the sale's Kafka timestamp. The baseline is the bare
confluent-kafka consume -> decode -> encode -> produce loop (``bench/baseline.py``) fed the
same sales at the same pace in the same run, each consume call waiting at most 10 ms: the
broker's floor for one hop. The same run
with the consumer fetch wait Faust's aiokafka driver uses (1,500 ms) shows what Tansu's
unwoken fetch costs (``TILLBRIDGE_FETCH_MAX_WAIT_MS``, README "Running on Tansu").

``netsuite change -> availability topic:`` with a 5 s poll, inventory adjustments made in
NetSuite (as a user would, over REST): from just before the request to the Kafka timestamp
of the first availability record showing NetSuite's new figure.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from decimal import Decimal

from confluent_kafka import Producer

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.stack import WorkerProcess, local_stack
from tillbridge.streams.runtime.settings import Settings

DEFAULT_SALES = 2000
RATE = 100.0
FAUST_FETCH_WAIT_MS = 1500


def paced(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes]], rate: float) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    start = time.perf_counter()
    for i, (key, value) in enumerate(pairs):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    producer.flush(30)


def quantiles(lat: list[float]) -> dict[str, float]:
    lat = sorted(lat)
    q = statistics.quantiles(lat, n=100)
    return {"n": len(lat), "p50": q[49], "p99": q[98], "max": lat[-1]}


def worker_lag(s: Settings, pairs: list[tuple[bytes, bytes]], fetch_wait_ms: int) -> dict:
    """Sale (Kafka timestamp) -> the first availability record it caused."""
    codec = AvroCodec(s.schema_registry_url or "")
    ws = s.replace(app_id=f"bench-avail-{time.time_ns()}", fetch_max_wait_ms=fetch_wait_ms)
    bootstrap = s.kafka_bootstrap_servers or ""
    with WorkerProcess(ws):
        time.sleep(3)  # the first NetSuite read is in (the worker is ready before it)
        with TopicTail(bootstrap, [topics.SALE.name]) as before:
            before.poll(1.0)
            skip = {(r.partition, r.offset) for r in before.records[topics.SALE.name]}
        paced(bootstrap, topics.SALE.name, pairs, RATE)
        with TopicTail(bootstrap, [topics.SALE.name, topics.AVAILABILITY]) as t:
            t.wait_for(lambda t: t.count(topics.SALE.name) >= len(pairs) + len(skip), 60)
            time.sleep(3)
            t.poll(2.0)
            sent = {(r.partition, r.offset): r.timestamp for r in t.records[topics.SALE.name]
                    if (r.partition, r.offset) not in skip}
            first: dict[tuple[int, int], int] = {}
            for r in t.records[topics.AVAILABILITY]:
                cause = str(codec.decode(r.value, topics.AVAILABILITY)["cause"]) \
                    if r.value else ""
                if not cause.startswith(topics.SALE.name + "/"):
                    continue
                _, part, rest = cause.split("/", 2)
                coord = (int(part), int(rest.split("#", 1)[0]))
                if coord in sent:
                    first[coord] = min(first.get(coord, r.timestamp), r.timestamp)
    return quantiles([first[c] - sent[c] for c in first])


def baseline_lag(s: Settings, pairs: list[tuple[bytes, bytes]]) -> dict:
    """The bare loop, same sales, same pace: output timestamp less input timestamp."""
    from bench.__main__ import _new_topics

    bootstrap = s.kafka_bootstrap_servers or ""
    src, dst = f"bench.avail.in.{time.time_ns()}", f"bench.avail.out.{time.time_ns()}"
    _new_topics(bootstrap, [src, dst], s.topic_partitions)
    proc = subprocess.Popen([sys.executable, "-m", "bench.baseline", bootstrap, src, dst,
                             str(len(pairs)), "sale.avsc", "0.01"], stdout=subprocess.DEVNULL)
    time.sleep(4)  # subscribed and assigned before the first sale
    paced(bootstrap, src, pairs, RATE)
    proc.wait(120)
    with TopicTail(bootstrap, [src, dst]) as t:
        t.wait_for(lambda t: t.count(dst) >= len(pairs), 60)
        sent = {r.key: r.timestamp for r in t.records[src]}
        return quantiles([r.timestamp - sent[r.key] for r in t.records[dst] if r.key in sent])


async def _adjust_and_wait(s: Settings, tail: TopicTail, codec: AvroCodec, n: int) -> list[float]:
    out = []
    async with NetSuiteClient(s.netsuite_base_url or "", NetSuiteCredentials.dev()) as client:
        for i in range(n):
            rows = await client.suiteql("SELECT quantityavailable FROM aggregateitemlocation "
                                        "WHERE item = '1003' AND location = '2'")
            want = Decimal(rows[0]["quantityavailable"]) - 1
            start = time.time()
            await client.create("inventoryAdjustment", {
                "account": {"id": "520"}, "adjLocation": {"id": "2"},
                "inventory": {"items": [{"item": {"id": "1003"}, "adjustQtyBy": -1}]}})

            def first(t: TopicTail, start: float = start, want: Decimal = want) -> float | None:
                return next((r.timestamp / 1000 for r in t.records[topics.AVAILABILITY]
                             if r.key == b"2/1003" and r.value and r.timestamp / 1000 >= start
                             and codec.decode(r.value, topics.AVAILABILITY)[
                                 "netsuite_available"] == want), None)
            await asyncio.to_thread(tail.wait_for, lambda t: first(t) is not None, 30)
            shown = first(tail)
            out.append((shown if shown is not None else time.time()) - start)
            await asyncio.sleep(1.3 * i)  # changes land at different points of the cycle
    return out


def netsuite_freshness(s: Settings, poll_s: float = 5.0, n: int = 4) -> list[float]:
    codec = AvroCodec(s.schema_registry_url or "")
    ws = s.replace(app_id=f"bench-fresh-{time.time_ns()}", netsuite_poll_s=poll_s,
                   agents="availability")
    with WorkerProcess(ws):
        time.sleep(3)
        with TopicTail(s.kafka_bootstrap_servers or "", [topics.AVAILABILITY]) as tail:
            while tail.poll(1.0):  # what earlier parts wrote, read before the clock starts
                pass
            return asyncio.run(_adjust_and_wait(s, tail, codec, n))


def run(base: Settings, n: int = DEFAULT_SALES) -> dict:
    from bench.workload import encoded_sales

    with local_stack(base, sim_process=True) as stack:
        s = stack.settings
        pairs = encoded_sales(s.schema_registry_url or "", n, seed=13)
        b = baseline_lag(s, pairs)
        w = worker_lag(s, pairs, s.fetch_max_wait_ms)
        print(f"availability at {RATE:.0f} sales/s ({w['n']} sales, default worker, "
              f"fetch wait {s.fetch_max_wait_ms} ms): p50 {w['p50']:.0f} ms, p99 "
              f"{w['p99']:.0f} ms, max {w['max']:.0f} ms; baseline loop p50 {b['p50']:.0f} "
              f"ms, p99 {b['p99']:.0f} ms")
        print(f"availability lag p99: {w['p99']:.0f} ms (target 1000 ms; baseline "
              f"{b['p99']:.0f} ms)")
    with local_stack(base, sim_process=True) as stack:  # a fresh broker: no backlog
        s = stack.settings
        slow = worker_lag(s, encoded_sales(s.schema_registry_url or "", n, seed=13),
                          FAUST_FETCH_WAIT_MS)
        print(f"  with Faust's {FAUST_FETCH_WAIT_MS} ms fetch wait on Tansu: p50 "
              f"{slow['p50']:.0f} ms, p99 {slow['p99']:.0f} ms, max {slow['max']:.0f} ms")
        fresh = netsuite_freshness(s)
        print(f"netsuite change -> availability topic (poll 5 s): max {max(fresh):.1f} s, "
              f"mean {statistics.mean(fresh):.1f} s over {len(fresh)} changes "
              f"(target poll + 5 s = 10 s)")
    return {"worker": w, "baseline": b, "faust_wait": slow, "freshness": fresh}


if __name__ == "__main__":
    run(Settings.from_env(kafka_bootstrap_servers=None, schema_registry_url=None,
                          netsuite_base_url=None), int(sys.argv[1]) if len(sys.argv) > 1
        else DEFAULT_SALES)
