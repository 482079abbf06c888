"""Poison records and honest health over a real broker (Tansu), registry, simulator and a
worker process.

Measured: Tansu enforces no record size limit (60 MB uncompressed accepted) and answers
``describe_configs`` only for topics created with an explicit config (not for the broker).
So the DLQ topics here are created first with ``max.message.bytes`` of 1 MiB: the worker
reads that limit, as it would a real cluster's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Producer

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, netsuite_external_ids
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import ensure_topics
from tillbridge.devstack.broker import EmbeddedBroker
from tillbridge.devstack.stack import Stack, WorkerProcess, local_stack
from tillbridge.streams.runtime.settings import Settings

pytestmark = pytest.mark.integration

DLQ_LIMIT = 1_048_576
TOO_LARGE = 1_100_000  # "1.1 MB"
FITS = 999 * 1024  # "999 KB": stored whole


@contextlib.contextmanager
def _stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Stack, EmbeddedBroker]]:
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "NETSUITE_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with EmbeddedBroker() as broker:
        configs = {t: {"max.message.bytes": str(DLQ_LIMIT)} for t in topics.DLQ_TOPICS}
        ensure_topics(broker.bootstrap, list(topics.DLQ_TOPICS), partitions=4,
                      configs={**topics.TOPIC_CONFIGS, **configs})
        base = Settings.from_env(topic_partitions=4).replace(
            kafka_bootstrap_servers=broker.bootstrap)
        with local_stack(base) as stack:
            yield stack, broker


def _publish(bootstrap: str, items: list[tuple[bytes | None, bytes | None]]) -> list[int]:
    """Publish in order to one partition (key-less records would scatter); the offsets."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 5_000_000,
                         "enable.idempotence": True})
    offsets: list[int] = []
    for key, value in items:
        producer.produce(topics.SALE.name, key=key, value=value, partition=0,
                         on_delivery=lambda err, msg: offsets.append(
                             -1 if err else msg.offset()))
    producer.flush(30)
    assert len(offsets) == len(items) and -1 not in offsets
    return offsets


def test_oversized_null_and_garbage_records_each_end_in_a_dlq_and_sales_post(
        monkeypatch: pytest.MonkeyPatch) -> None:
    big = bytes(range(256)) * (TOO_LARGE // 256) + b"!" * (TOO_LARGE % 256)
    fits = b"\x07" * FITS
    with _stack(monkeypatch) as (stack, _broker):
        s = stack.settings
        sales = encode_sales(s, [make_sale(pos_transaction_id=f"P-{i}", event_id=f"e-p-{i}")
                                 for i in range(6)])
        items: list[tuple[bytes | None, bytes | None]] = [
            sales[0], (b"big", big), sales[1], (b"fits", fits), sales[2],
            (b"null", None), sales[3], (b"garbage", b"\xff\x00not avro at all"), sales[4],
            (None, b"\x00\x00"), sales[5]]
        out = Outcomes(s)
        with WorkerProcess(s) as worker:
            offsets = _publish(s.kafka_bootstrap_servers or "", items)
            out.wait(len(items), timeout=120)
            time.sleep(2)  # a duplicate outcome would show up by now
            log = worker.log_tail(200)
        sale_offset = {key: offsets[items.index((key, value))] for key, value in sales}
        by_offset: dict[int, list[str]] = {}
        for r in out.results:  # a result is keyed by its sale's key
            by_offset.setdefault(sale_offset.get(r.key or b"", -2), []).append("result")
        for r in out.dead:
            by_offset.setdefault(int(r.header("__connect.errors.offset") or -1), []).append(
                r.header("tillbridge.reason") or "?")
        assert sorted(by_offset) == sorted(offsets), (by_offset, log)
        assert all(len(v) == 1 for v in by_offset.values()), by_offset
        assert by_offset[offsets[1]] == ["payload_too_large"]
        assert by_offset[offsets[3]] == ["not_avro"]
        [large] = [r for r in out.dead if r.header("tillbridge.reason") == "payload_too_large"]
        assert large.topic == topics.dlq_topic("decode")
        assert large.header("__connect.errors.topic") == topics.SALE.name
        assert large.header("__connect.errors.partition") == "0"
        assert large.header("tillbridge.original.size") == str(TOO_LARGE)
        assert large.header("tillbridge.original.sha256") == hashlib.sha256(big).hexdigest()
        assert large.value == big[:1024] and large.key == b"big"
        [whole] = [r for r in out.dead if r.header("__connect.errors.offset") == str(offsets[3])]
        assert whole.value == fits, "a dead letter that fits keeps the original bytes"
        posted = asyncio.run(netsuite_external_ids(s, "cashSale"))
        assert len(posted) == 6, posted
        out.close()


def _lines(worker: WorkerProcess) -> int:
    return len(worker.log_path.read_text(errors="replace").splitlines())


def test_broker_gone_is_not_ready_within_15s_still_live_and_the_log_stays_quiet(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with _stack(monkeypatch) as (stack, broker), WorkerProcess(stack.settings) as worker:
        assert httpx.get(worker.url + "/ready", timeout=5).json()["ready"] is True
        memory = httpx.get(worker.url + "/debug/memory", timeout=5).json()
        assert memory["tracing"] is False and memory["rss_mb"] > 50, memory
        broker.stop()
        stopped, before = time.monotonic(), _lines(worker)
        not_ready_after = None
        while time.monotonic() - stopped < 30:
            r = httpx.get(worker.url + "/ready", timeout=5)
            if r.status_code == 503 and not_ready_after is None:
                not_ready_after = time.monotonic() - stopped
                assert not r.json()["checks"]["broker"]["ok"], r.json()
            assert httpx.get(worker.url + "/live", timeout=5).status_code == 200
            time.sleep(0.5)
        elapsed = time.monotonic() - stopped
        text = worker.log_path.read_text(errors="replace").splitlines()[before:]
        # librdkafka's stderr lines ("%3|...|FAIL|rdkafka#consumer-N|") come from clients
        # built without a ``logger`` (control.py's command followers): counted apart
        stderr_lines = sum(1 for t in text if t.startswith("%"))
        rate = (len(text) - stderr_lines) / elapsed
        print(f"/ready 503 after {not_ready_after} s; {rate:.1f} log lines/s through "
              f"logging; {stderr_lines / elapsed:.1f} lines/s from librdkafka on stderr")
        assert not_ready_after is not None and not_ready_after <= 15, worker.log_tail()
        assert rate <= 3, worker.log_tail(60)
        assert 'tillbridge_ready 0.0' in httpx.get(worker.url + "/metrics", timeout=5).text
