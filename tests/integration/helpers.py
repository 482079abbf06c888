"""Shared steps of the integration tests: publish, wait for outcomes, read the simulator."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterable

import httpx
from confluent_kafka import Producer

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import Record, TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.devstack.stack import WorkerProcess
from tillbridge.streams.runtime.settings import Settings


def produce(settings: Settings, items: Iterable[tuple[bytes | None, bytes]],
            topic: str = topics.SALE.name) -> int:
    """Publish raw (key, value) pairs; returns how many were delivered."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers,
                         "enable.idempotence": True, "linger.ms": 5})
    delivered = []
    n = 0
    for key, value in items:
        producer.produce(topic, key=key, value=value,
                         on_delivery=lambda err, msg: delivered.append(err is None))
        n += 1
    producer.flush(30)
    assert len(delivered) == n and all(delivered), "every test event must reach the broker"
    return n


def encode_sales(settings: Settings, sales: Iterable[dict]) -> list[tuple[bytes, bytes]]:
    encode = AvroCodec(settings.schema_registry_url or "").encoder(topics.SALE)
    return [(s["pos_transaction_id"].encode(), encode(s)) for s in sales]


class Outcomes:
    """Reads results and every DLQ topic until a number of outcomes has arrived."""

    def __init__(self, settings: Settings) -> None:
        self.tail = TopicTail(settings.kafka_bootstrap_servers or "",
                              [topics.RESULTS, *topics.DLQ_TOPICS])

    def wait(self, expected: int, timeout: float = 90.0) -> None:
        self.tail.wait_for(lambda t: t.count() >= expected, timeout)
        assert self.tail.count() >= expected, (
            f"only {self.tail.count()} of {expected} outcomes after {timeout}s: "
            f"{self.summary()}")

    @property
    def results(self) -> list[Record]:
        return self.tail.records[topics.RESULTS]

    @property
    def dead(self) -> list[Record]:
        return [r for name in topics.DLQ_TOPICS for r in self.tail.records[name]]

    def summary(self) -> dict[str, int]:
        c: collections.Counter[str] = collections.Counter()
        for r in self.results:
            c["result:" + (r.header("tillbridge.outcome") or "?")] += 1
        for r in self.dead:
            c["dlq:" + (r.header("tillbridge.reason") or "?")] += 1
        return dict(c)

    def close(self) -> None:
        self.tail.close()


def sim_stats(settings: Settings) -> dict:
    return httpx.get(f"{settings.netsuite_base_url}/__sim/stats", timeout=10).json()


def worker_refdata_version(worker: WorkerProcess) -> int:
    return int(httpx.get(worker.url + "/ready", timeout=5).json()["refdata_version"])


def wait_refdata_version(worker: WorkerProcess, above: int, timeout: float = 30.0) -> int:
    """Wait until the worker uses a reference snapshot newer than ``above``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = worker_refdata_version(worker)
        if version > above:
            return version
        time.sleep(0.2)
    raise AssertionError(f"worker still on reference data v{above} after {timeout}s")


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text page (NaN when absent); ``labels`` must all match."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{", 1)[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            return float(value)
    return float("nan")


def worker_metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    """``metric`` from a running worker's /metrics (NaN while its web server is not up)."""
    try:
        return metric(worker.metrics(), name, **labels)
    except httpx.HTTPError:
        return float("nan")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


async def netsuite_external_ids(settings: Settings, record_type: str) -> list[str]:
    """The externalIds NetSuite holds for one transaction type (SuiteQL, read back)."""
    from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials

    async with NetSuiteClient(settings.netsuite_base_url or "",
                              NetSuiteCredentials.dev()) as client:
        rows = await client.suiteql("SELECT externalid FROM transaction WHERE recordtype = ?",
                                    params=[record_type.lower()])
    return [r["externalid"] for r in rows]
