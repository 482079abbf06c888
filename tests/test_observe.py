"""The receipt trace's pure core (streams/observe/trace.py) over records as Kafka holds
them: which records belong to a receipt, in what order, and what each says. The records are
built here as the pipeline writes them (same header and document spelling); reading them
from a real broker is tests/integration/test_trace.py."""

from __future__ import annotations

import json

import pytest

from tests.test_cli_errors import _one_error, _run
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import Record
from tillbridge.streams.flows.park import ParkEntry
from tillbridge.streams.observe.trace import build_story
from tillbridge.streams.stages import deadletter as dl
from tillbridge.streams.stages.reasons import CATALOGUE

T0 = 1_796_000_000_000


def rec(topic: str, offset: int, key: bytes | None, value: bytes | None, t: int,
        headers: list[tuple[str, bytes | None]] | None = None) -> Record:
    return Record(topic, 0, offset, key, value, headers or [], T0 + t)


def result(key: str, outcome: str, offset: int, t: int, **extra: object) -> Record:
    doc = {"event_type": "sale", "pos_transaction_id": key, "outcome": outcome,
           "source": f"pos.sale.v1/0/{offset}", **extra}
    return rec(topics.RESULTS, offset, key.encode(), json.dumps(doc).encode(), t)


def letter(key: str, reason: str, offset: int, t: int) -> Record:
    return rec(topics.dlq_topic("enrich"), offset, key.encode(), b"avro", t,
               [(dl.H_REASON, reason.encode()), (dl.H_STAGE, b"enrich"),
                (dl.H_TOPIC, b"pos.sale.v1"), (dl.H_PARTITION, b"0"), (dl.H_OFFSET, b"1")])


def test_a_dead_letter_its_replay_and_the_posting_in_time_order() -> None:
    written = [{"record_type": "cashSale", "netsuite_id": "901",
                "external_id": "pos-sale-S001-A1", "created": True}]
    records = [
        result("A1", "posted", 2, 50, external_id="pos-sale-S001-A1", records=written),
        rec("pos.sale.v1", 1, b"A1", b"avro", 0),
        letter("A1", "unknown_tender", 0, 10),
        rec(topics.DLQ_AUDIT, 0, f"{topics.dlq_topic('enrich')}:0:0".encode(),
            json.dumps({"action": "replay", "who": "ana", "why": "tender mapped"}).encode(), 30),
        rec("pos.sale.v1", 2, b"A1", b"avro", 40, [("tillbridge.replay_of", b"x:0:0")]),
        rec("pos.sale.v1", 3, b"B2", b"avro", 5),  # another receipt
        letter("B2", "unknown_sku", 1, 12),
        result("B2", "posted", 3, 60),
    ]
    story = build_story("A1", records)
    assert [s.kind for s in story.steps] == [
        "published", "dead_letter", "audit", "published", "outcome"]
    dead = story.steps[1]
    assert dead.detail["fix"] == CATALOGUE["unknown_tender"].fix
    assert dead.detail["source"] == "pos.sale.v1/0/1"
    assert "ana" in story.steps[2].summary and story.steps[3].summary.startswith("replayed")
    assert story.written() == [("cashSale", "pos-sale-S001-A1")]
    assert story.scanned == 8 and story.found


@pytest.mark.parametrize("query", ["pos-sale-S001-A1", "POS-SALE-S001-A1", "901"])
def test_an_external_or_netsuite_id_leads_to_the_receipt(query: str) -> None:
    written = [{"record_type": "cashSale", "netsuite_id": "901",
                "external_id": "pos-sale-S001-A1"}]
    records = [rec("pos.sale.v1", 0, b"A1", b"avro", 0),
               result("A1", "posted", 0, 5, records=written)]
    story = build_story(query, records)
    assert [s.kind for s in story.steps] == ["published", "outcome"]


def test_parked_then_released() -> None:
    entry = ParkEntry("pos.return.v1/0/4", "pos-sale-S001-A1", ("cashSale",), 1.0, 2.0, 0,
                      b"R9", b"avro", ())
    records = [rec(topics.PARKED, 0, entry.id.encode(), entry.to_json(), 10),
               rec(topics.PARKED, 1, entry.id.encode(), None, 20),
               rec(topics.PARKED, 2, b"pos.return.v1/0/5", None, 21)]  # another entry
    story = build_story("R9", records)
    assert [s.kind for s in story.steps] == ["parked", "released"]
    assert story.steps[0].detail["dependency"] == "pos-sale-S001-A1"


def test_an_unknown_id_finds_nothing() -> None:
    story = build_story("NOPE", [result("A1", "posted", 0, 0)])
    assert not story.found and story.steps == []


def test_trace_without_a_broker_says_which_setting(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    code, err = _run(["trace", "A1"], capsys)
    assert code == 2 and "KAFKA_BOOTSTRAP_SERVERS" in _one_error(err)


def test_the_page_escapes_what_it_shows_and_hides_handled_letters() -> None:
    """Receipt ids and messages come from tills and NetSuite: never markup on the page."""
    from tillbridge.streams.observe.page import build_snapshot, render

    evil = letter("<script>x</script>", "unknown_sku", 0, 10)
    handled = letter("A1", "unknown_tender", 1, 11)
    audit = rec(topics.DLQ_AUDIT, 0, f"{handled.topic}:0:1".encode(), b"{}", 12)
    snap = build_snapshot([evil, handled, audit], codec=None)
    assert [x.receipt for x in snap.letters] == ["<script>x</script>"]
    html = render(snap, {"broker": {"ok": True, "detail": ""}}, '"><b>', build_story("Z", []))
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert 'value="&quot;&gt;&lt;b&gt;"' in html and "Nothing found for Z" in html
    assert "unknown_sku: 1" in html and "closed: no NetSuite outage seen" in html


def test_a_reconciliation_that_names_the_receipt_joins_its_story() -> None:
    drift = {"pos_transaction_id": "R9", "problem": "different", "kind": "sale",
             "pos_amount": "10.00", "netsuite_amount": "12.00", "netsuite_id": "77",
             "state": "posted", "detail": "changed in NetSuite after posting"}
    register = {"type": "register", "run_id": "r1", "origin": "reconcile",
                "store_id": "S001", "register_id": "R02", "business_date": "2026-12-03",
                "drifts": [drift, {**drift, "pos_transaction_id": "OTHER"}]}
    records = [rec("pos.sale.v1", 1, b"R9", b"avro", 0),
               rec(topics.RECONCILIATION, 0, b"S001/R02/2026-12-03",
                   json.dumps(register).encode(), 20),
               rec(topics.RECONCILIATION, 1, b"2026-12-03/S001",
                   json.dumps({"type": "summary", "drifts": [drift]}).encode(), 21)]
    story = build_story("R9", records)
    [step] = [s for s in story.steps if s.kind == "reconciliation"]
    assert step.summary == "reconciliation 2026-12-03 S001/R02: different (posted)"
    assert step.detail["netsuite_amount"] == "12.00" and step.detail["run_id"] == "r1"
