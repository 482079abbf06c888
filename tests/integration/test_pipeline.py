"""End to end over a real broker, registry and NetSuite simulator, worker in its own process.

Every test counts: each published event must end posted, dead-lettered or deduplicated.
"""

from __future__ import annotations

import json
import struct

import pytest

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce, sim_stats
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.stack import WorkerProcess

pytestmark = pytest.mark.integration


def _sales(n: int, prefix: str = "T") -> list[dict]:
    return [make_sale(pos_transaction_id=f"{prefix}-{i:05d}", event_id=f"e-{prefix}-{i}")
            for i in range(n)]


def test_happy_path_posts_each_sale_once_with_results_and_metrics(stack) -> None:
    s = stack.settings
    out = Outcomes(s)
    with WorkerProcess(s) as worker:
        produce(s, encode_sales(s, _sales(25)))
        out.wait(25)
        metrics = worker.metrics()
    assert out.summary() == {"result:posted": 25}
    assert sim_stats(s)["records"]["cashSale"]["created"] == 25
    doc = json.loads(out.results[0].value)
    assert doc["outcome"] == "posted" and doc["netsuite_id"]
    assert 'tillbridge_records_posted_total{record_type="cashSale"} 25.0' in metrics
    assert 'tillbridge_events_consumed_total{topic="pos.sale.v1"} 25.0' in metrics
    assert "tillbridge_netsuite_request_duration_seconds_bucket" in metrics
    out.close()


def test_each_dead_letter_reason_keeps_original_bytes_and_headers(stack) -> None:
    s = stack.settings
    bad = {
        "missing_tax_code": make_sale(pos_transaction_id="D1"),
        "totals_mismatch": make_sale(pos_transaction_id="D2"),
        "unknown_sku": make_sale(pos_transaction_id="D3"),
        "unknown_store": make_sale(pos_transaction_id="D4", store_id="S999"),
        "unknown_tender": make_sale(pos_transaction_id="D5"),
    }
    bad["missing_tax_code"]["lines"][0]["tax_code"] = None
    bad["totals_mismatch"]["total"] += 1
    bad["unknown_sku"]["lines"][0]["sku"] = "TEE-0001"
    bad["unknown_tender"]["tenders"][0]["tender_type"] = "BITCOIN"
    sent = dict(zip(bad, encode_sales(s, bad.values()), strict=True))
    out = Outcomes(s)
    with WorkerProcess(s):
        produce(s, sent.values())
        out.wait(len(sent))
    by_reason = {r.header("tillbridge.reason"): r for r in out.dead}
    assert set(by_reason) == set(sent)
    for reason, (key, value) in sent.items():
        rec = by_reason[reason]
        assert (rec.key, rec.value) == (key, value), "original bytes untouched"
        assert rec.header("__connect.errors.topic") == topics.SALE.name
        assert rec.header("__connect.errors.offset") is not None
        assert rec.header("tillbridge.rule") and rec.header("tillbridge.fix")
        assert rec.header("tillbridge.attempts") == "1"
        assert rec.header("__connect.errors.exception.message")
    assert by_reason["unknown_sku"].topic == topics.dlq_topic("enrich")
    assert json.loads(by_reason["unknown_sku"].header("tillbridge.inputs"))[
        "closest_match"] == "TEE-001"
    assert by_reason["totals_mismatch"].topic == topics.dlq_topic("validate")
    assert sim_stats(s)["records"].get("cashSale", {}).get("created", 0) == 0


def test_duplicate_publish_makes_exactly_one_record(stack) -> None:
    s = stack.settings
    sale = make_sale(pos_transaction_id="DUP-1")
    (pair,) = encode_sales(s, [sale])
    out = Outcomes(s)
    with WorkerProcess(s):
        produce(s, [pair, pair, pair])
        out.wait(3)
    assert out.summary() == {"result:posted": 1, "result:duplicate": 2}
    assert sim_stats(s)["records"]["cashSale"]["created"] == 1


def test_poison_bytes_are_dead_lettered_and_the_worker_keeps_going(stack) -> None:
    s = stack.settings
    good = encode_sales(s, _sales(5, "P"))
    unknown_id = b"\x00" + struct.pack(">I", 999_999) + b"\x02\x04"
    poison = [(b"p1", b"{\"json\": true}"), (b"p2", b""), (b"p3", unknown_id),
              (b"p4", good[0][1][:5] + b"\xff\xffgarbage-body")]  # real id, bad body
    out = Outcomes(s)
    with WorkerProcess(s) as worker:
        produce(s, poison[:2] + good[:2] + poison[2:] + good[2:])
        out.wait(9)
        assert worker.proc is not None and worker.proc.poll() is None, "worker still running"
    summary = out.summary()
    assert summary["result:posted"] == 5
    assert summary["dlq:not_avro"] == 2
    assert summary["dlq:unknown_schema_id"] == 1
    assert summary["dlq:schema_mismatch"] == 1
    assert {r.topic for r in out.dead} == {topics.dlq_topic("decode")}
