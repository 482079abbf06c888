"""`tillbridge dlq` against a real broker, registry, NetSuite simulator and worker process:
a replay that fails again counts attempts, a replay after the fix posts exactly once (and
never twice, forced or not), a discard is audited and hidden."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from tests.factories import make_sale
from tests.integration.helpers import (
    Outcomes,
    encode_sales,
    produce,
    sim_stats,
    wait_refdata_version,
    worker_refdata_version,
)
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.devstack.stack import WorkerProcess, settings_env
from tillbridge.streams.ops import cli
from tillbridge.streams.ops.dlq.commands import dlq_app
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.deadletter import dlq_headers
from tillbridge.streams.stages.reasons import CATALOGUE
from tillbridge.streams.stages.records import Rejection

pytestmark = pytest.mark.integration


def dlq(settings: Settings, *args: str) -> Any:
    """Run one `tillbridge dlq` command against the test stack; its JSON output."""
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
           "SCHEMA_REGISTRY_URL": settings.schema_registry_url or ""}
    result = CliRunner().invoke(dlq_app, list(args), env=env)
    assert result.exit_code == 0, f"dlq {' '.join(args)}: {result.output}"
    return json.loads(result.stdout)


def seed_dead_letter(settings: Settings, sale: dict, rej: Rejection) -> None:
    """Write a DLQ record the way the pipeline does (no worker needed to test the tool)."""
    ((key, value),) = encode_sales(settings, [sale])
    headers = dlq_headers(rej, topic=topics.SALE.name, partition=0, offset=0)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers})
    producer.produce(topics.dlq_topic(rej.stage), key=key, value=value, headers=headers)
    assert producer.flush(10) == 0


def test_replay_with_the_mapping_still_broken_fails_again_and_counts(stack) -> None:
    s = stack.settings
    bad = make_sale(pos_transaction_id="TND-1")
    bad["tenders"][0]["tender_type"] = "BITCOIN"
    out = Outcomes(s)
    with WorkerProcess(s):
        produce(s, encode_sales(s, [make_sale(pos_transaction_id="OK-1"), bad]))
        out.wait(2)
        (row,) = dlq(s, "list", "--json")
        assert (row["reason"], row["transaction_id"], row["store_id"], row["attempts"]) == (
            "unknown_tender", "TND-1", "S001", 1)
        shown = dlq(s, "show", row["id"])
        assert shown["value"]["tenders"][0]["tender_type"] == "BITCOIN"
        assert shown["value"]["total"] == "41.26", "Decimals print exactly, as strings"
        assert ["__connect.errors.topic", topics.SALE.name] in shown["headers"]
        assert shown["reason"]["fix"] == CATALOGUE["unknown_tender"].fix
        done = dlq(s, "replay", "--reason", "unknown_tender", "--yes", "--json")
        assert [r["id"] for r in done["replayed"]] == [row["id"]]
        out.wait(3)
    first, again = sorted(out.dead, key=lambda r: r.header("tillbridge.attempts") or "")
    assert (again.key, again.value) == (first.key, first.value), "same bytes, untouched"
    assert again.header("tillbridge.reason") == "unknown_tender"
    assert again.header("tillbridge.attempts") == "2"
    assert again.header("tillbridge.first_failure") == first.header("tillbridge.first_failure")
    assert again.header("tillbridge.replay_of") == row["id"]
    (pending,) = dlq(s, "list", "--json")
    assert pending["attempts"] == 2 and pending["id"] != row["id"]
    assert {r["status"] for r in dlq(s, "list", "--all", "--json")} == {"pending", "replayed"}
    out.close()


def test_replay_after_the_item_is_created_posts_exactly_once(stack) -> None:
    s = stack.settings
    sale = make_sale(pos_transaction_id="SKU-1")
    sale["lines"][0]["sku"] = "MUG-777"
    out = Outcomes(s)
    with WorkerProcess(s) as worker:
        produce(s, encode_sales(s, [sale]))
        out.wait(1)
        assert out.dead[0].header("tillbridge.reason") == "unknown_sku"
        httpx.post(f"{s.netsuite_base_url}/__sim/items/MUG-777", timeout=10).raise_for_status()
        # Operators refresh reference data on demand; the worker picks the new version up.
        before = worker_refdata_version(worker)
        refresh = CliRunner().invoke(cli.app, ["refdata", "refresh"],
                                     env=settings_env(s))
        assert refresh.exit_code == 0, refresh.output
        wait_refdata_version(worker, above=before)
        done = dlq(s, "replay", "--reason", "unknown_sku", "--yes", "--json",
                   "--by", "ops", "--why", "item created")
        assert len(done["replayed"]) == 1
        out.wait(2)
        assert sim_stats(s)["records"]["cashSale"]["created"] == 1
        again = dlq(s, "replay", "--reason", "unknown_sku", "--yes", "--json")
        assert again["replayed"] == [] and again["skipped"][0]["why"].startswith(
            "already replayed by ops")
        forced = dlq(s, "replay", "--reason", "unknown_sku", "--yes", "--force", "--json")
        assert len(forced["replayed"]) == 1
        out.wait(3)
    assert [r.header("tillbridge.outcome") for r in out.results] == ["posted", "duplicate"]
    assert sim_stats(s)["records"]["cashSale"]["created"] == 1
    out.close()


def test_discard_is_audited_and_hidden_unless_all(stack) -> None:
    s = stack.settings
    seed_dead_letter(s, make_sale(pos_transaction_id="ST-1", store_id="S999"),
                     Rejection("enrich", "unknown_store", "store.mapped", "no location"))
    (row,) = dlq(s, "list", "--json", "--store", "S999")
    done = dlq(s, "discard", "--reason", "unknown_store", "--by", "alice",
               "--why", "store S999 closed", "--yes", "--json")
    assert [r["id"] for r in done["discarded"]] == [row["id"]]
    with TopicTail(s.kafka_bootstrap_servers or "", [topics.DLQ_AUDIT]) as tail:
        assert tail.wait_for(lambda t: t.count() >= 1, 10)
        (rec,) = tail.records[topics.DLQ_AUDIT]
    audit = json.loads(rec.value)
    assert rec.key == row["id"].encode()
    assert {k: audit[k] for k in ("id", "action", "by", "why", "reason", "source_topic",
                                  "source_partition", "source_offset")} == {
        "id": row["id"], "action": "discard", "by": "alice", "why": "store S999 closed",
        "reason": "unknown_store", "source_topic": topics.SALE.name, "source_partition": 0,
        "source_offset": 0}
    assert dlq(s, "list", "--json") == []
    (hidden,) = dlq(s, "list", "--all", "--json")
    assert hidden["status"] == "discarded"
    again = dlq(s, "discard", "--id", row["id"], "--why", "again", "--yes", "--json")
    assert again["discarded"] == [] and len(again["skipped"]) == 1
