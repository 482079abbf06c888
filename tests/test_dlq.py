"""`tillbridge dlq` without a broker: ids, selection, audit-skip logic, replay headers and the
commands over a fake backend."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from tests.factories import make_sale
from tillbridge.connectors.kafka import topics
from tillbridge.streams.ops.dlq import commands, model
from tillbridge.streams.ops.dlq.commands import describe
from tillbridge.streams.ops.dlq.model import (
    AuditEntry,
    DeadLetter,
    Selection,
    audit_entry,
    audit_index,
    parse_id,
    parse_when,
    plan,
    replay_headers,
    replay_target,
    select,
)
from tillbridge.streams.stages.deadletter import dlq_headers, header
from tillbridge.streams.stages.records import Rejection

T0 = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
ENRICH = topics.dlq_topic("enrich")


def letter(reason: str = "unknown_tender", *, stage: str = "enrich", offset: int = 0,
           store: str = "S001", when: datetime = T0, original: list | None = None,
           source: str = topics.SALE.name) -> DeadLetter:
    rej = Rejection(stage, reason, f"{stage}.rule", "message", {"x": "1"})
    headers = dlq_headers(rej, topic=source, partition=1, offset=40 + offset,
                          original=original, now=when)
    sale = make_sale(store_id=store, pos_transaction_id=f"T-{offset}")
    return DeadLetter(topics.dlq_topic(stage), 2, offset, sale["pos_transaction_id"].encode(),
                      b"\x00\x00\x00\x00\x01body", list(headers), sale)


# -- ids and times ------------------------------------------------------------------------

def test_id_is_topic_partition_offset_and_stage_is_shorthand() -> None:
    d = letter(offset=17)
    assert d.id == f"{ENRICH}:2:17"
    assert parse_id(d.id) == (ENRICH, 2, 17)
    assert parse_id("enrich:2:17") == (ENRICH, 2, 17)
    assert model.normalise_id(" enrich:2:17 ") == d.id


@pytest.mark.parametrize("bad", ["", "enrich:2", "enrich:x:1", ":1:2", "a:1:-2"])
def test_bad_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="dead-letter id"):
        parse_id(bad)


def test_times_are_iso_or_ages_and_naive_means_utc() -> None:
    assert parse_when("2h", T0) == T0 - timedelta(hours=2)
    assert parse_when("7d", T0) == T0 - timedelta(days=7)
    assert parse_when("2026-11-26T15:00") == datetime(2026, 11, 26, 15, tzinfo=UTC)
    assert parse_when("2026-11-26T15:00+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError, match="ISO"):
        parse_when("yesterday")


# -- selection ----------------------------------------------------------------------------

def test_each_filter_narrows_and_empty_selection_takes_all() -> None:
    a = letter("unknown_tender", offset=0, store="S001", when=T0)
    b = letter("unknown_sku", offset=1, store="S002", when=T0 + timedelta(hours=1))
    c = letter("totals_mismatch", stage="validate", offset=2, store="S002",
               when=T0 + timedelta(hours=2))
    every = [a, b, c]
    assert select(every, Selection()) == every
    assert select(every, Selection.build(reason=["unknown_sku"])) == [b]
    assert select(every, Selection.build(store=["S002"])) == [b, c]
    assert select(every, Selection.build(topic=["validate"])) == [c]
    assert select(every, Selection.build(topic=[ENRICH])) == [a, b]
    assert select(every, Selection.build(topic=[topics.SALE.name])) == every
    assert select(every, Selection.build(since="2026-11-26T17:00",
                                         until="2026-11-26T18:00")) == [b]
    assert select(every, Selection.build(ids=["validate:2:2", a.id])) == [a, c]
    assert select(every, Selection.build(reason=["unknown_sku"], store=["S001"])) == []


def test_undecodable_value_has_no_store_and_never_matches_a_store_filter() -> None:
    d = DeadLetter(topics.dlq_topic("decode"), 0, 5, None, b"{}", [], None, "not_avro: ...")
    assert d.store_id is None and d.reason == "?" and d.stage == "decode"
    assert select([d], Selection.build(store=["S001"])) == []


def test_unknown_reason_in_a_filter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        Selection.build(reason=["made_up"])


# -- plans and audit ----------------------------------------------------------------------

def test_handled_records_are_skipped_unless_forced() -> None:
    a, b = letter(offset=0), letter(offset=1)
    done = audit_index([audit_entry(a, "replay", by="ann", why="", now=T0)])
    planned = plan([a, b], done, "replay")
    assert [(p.letter.id, p.skip is None) for p in planned] == [(a.id, False), (b.id, True)]
    assert "already replayed by ann" in (planned[0].skip or "")
    assert all(p.skip is None for p in plan([a, b], done, "replay", force=True))
    assert plan([a], done, "discard")[0].skip, "a replayed record is not discarded silently"


def test_latest_audit_entry_wins_and_status_follows_it() -> None:
    a = letter()
    entries = [audit_entry(a, "replay", by="ann", why=""),
               audit_entry(a, "discard", by="bob", why="dup", forced=True)]
    assert model.status(a, audit_index(entries)) == "discarded"
    assert model.status(letter(offset=9), audit_index(entries)) == "pending"


def test_not_replayable_reasons_and_unknown_sources_are_not_replayed() -> None:
    bad_total = letter("totals_mismatch", stage="validate")
    no_source = DeadLetter(ENRICH, 0, 1, b"k", b"v", [("tillbridge.reason", b"unknown_sku")])
    skips = [p.skip for p in plan([bad_total, no_source], {}, "replay")]
    assert "not replayable" in (skips[0] or "") and "source topic" in (skips[1] or "")
    assert plan([bad_total], {}, "replay", force=True)[0].skip is None
    assert plan([bad_total], {}, "discard")[0].skip is None


def test_audit_entry_round_trips_and_names_the_source() -> None:
    d = letter(offset=3)
    e = audit_entry(d, "discard", by="ann", why="test data", now=T0)
    back = AuditEntry.from_json(e.to_json())
    assert back == e
    doc = json.loads(e.to_json())
    assert doc["id"] == d.id and doc["action"] == "discard" and doc["by"] == "ann"
    assert (doc["source_topic"], doc["source_partition"], doc["source_offset"]) == (
        topics.SALE.name, 1, 43)
    assert doc["reason"] == "unknown_tender" and doc["at"].startswith("2026-11-26T16:00")


# -- replayed record ----------------------------------------------------------------------

def test_replay_headers_keep_producer_headers_and_the_attempt_history() -> None:
    first = dlq_headers(Rejection("enrich", "unknown_tender", "r", "m"), topic="t",
                        partition=0, offset=1, original=[("traceparent", b"00-abc")], now=T0)
    d = letter(original=[*first, ("tillbridge.replay_of", b"old:0:0")],
               when=T0 + timedelta(hours=1))
    h = replay_headers(d)
    names = [k for k, _ in h]
    assert header(h, "traceparent") == "00-abc"
    assert header(h, "tillbridge.attempts") == "2"
    assert header(h, "tillbridge.first_failure") == T0.isoformat(timespec="milliseconds")
    assert names.count("tillbridge.replay_of") == 1 and header(h, "tillbridge.replay_of") == d.id
    assert not any(n.startswith("__connect.errors.") for n in names)
    assert "tillbridge.reason" not in names and "tillbridge.last_failure" not in names
    # ...and when it fails again the pipeline counts on from there.
    again = dlq_headers(Rejection("enrich", "unknown_tender", "r", "m"), topic="t",
                        partition=0, offset=2, original=h, now=T0 + timedelta(hours=2))
    assert header(again, "tillbridge.attempts") == "3"
    assert header(again, "tillbridge.first_failure") == T0.isoformat(timespec="milliseconds")


def test_replay_goes_to_the_source_topic_and_partition_when_it_exists() -> None:
    d = letter()
    assert replay_target(d, range(4)) == (topics.SALE.name, 1)
    assert replay_target(d, [0]) == (topics.SALE.name, None)


def test_show_document_has_decimals_as_strings_headers_and_catalogue() -> None:
    d = letter()
    doc = json.loads(json.dumps(describe(d, [audit_entry(d, "replay", by="a", why="")])))
    assert doc["value"]["total"] == "41.26"
    assert doc["value"]["tenders"][0]["amount"] == "41.26"
    assert doc["value"]["completed_at"].startswith("2026-11-26T15:30")
    assert ["tillbridge.reason", "unknown_tender"] in doc["headers"]
    assert doc["reason"]["fix"].startswith("Add the tender") and doc["reason"]["meaning"]
    assert doc["audit"][0]["action"] == "replay"
    raw = describe(DeadLetter(ENRICH, 0, 0, None, b"\x01", [], None, "not_avro: x"), [])
    assert raw["value"] is None and raw["value_error"] == "not_avro: x"
    assert raw["value_base64"] == "AQ=="


# -- the commands over a fake backend -----------------------------------------------------

class FakeBackend:
    def __init__(self, letters: list[DeadLetter]) -> None:
        self.letters = letters
        self.audit: list[AuditEntry] = []
        self.published: list[DeadLetter] = []

    def snapshot(self) -> tuple[list[DeadLetter], list[AuditEntry]]:
        return list(self.letters), list(self.audit)

    def republish(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        self.published.extend(letters)
        return {d.id: f"{topics.SALE.name}:1:{100 + i}" for i, d in enumerate(letters)}

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        self.audit.extend(entries)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    backend = FakeBackend([letter("unknown_tender", offset=0),
                           letter("unknown_sku", offset=1, store="S002")])
    monkeypatch.setattr(commands, "_backend", lambda settings: backend)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "fake:9092")
    monkeypatch.setenv("USER", "tester")
    return backend


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(commands.dlq_app, list(args), input=input)
    return result.exit_code, result.output


def test_list_json_and_table(fake: FakeBackend) -> None:
    code, out = run("list", "--json", "--store", "S002")
    assert code == 0
    rows = json.loads(out)
    assert [(r["reason"], r["store_id"], r["status"]) for r in rows] == [
        ("unknown_sku", "S002", "pending")]
    code, out = run("list")
    assert code == 0 and "2 dead letter(s)" in out


def test_show_prints_one_record_or_fails(fake: FakeBackend) -> None:
    code, out = run("show", "enrich:2:1")
    assert code == 0 and json.loads(out)["reason"]["code"] == "unknown_sku"
    assert run("show", "enrich:2:99")[0] == 1
    assert run("show", "nonsense")[0] == 2


def test_replay_asks_publishes_audits_and_is_idempotent(fake: FakeBackend) -> None:
    code, _ = run("replay", "--reason", "unknown_sku", input="n\n")
    assert code == 1 and fake.published == [], "declining the prompt writes nothing"
    code, out = run("replay", "--reason", "unknown_sku", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["replayed"][0]["id"] == f"{ENRICH}:2:1"
    assert fake.published == [] and fake.audit == []
    code, out = run("replay", "--reason", "unknown_sku", "--yes", "--why", "item added",
                    "--json")
    assert code == 0, out
    assert [d.id for d in fake.published] == [f"{ENRICH}:2:1"]
    (entry,) = fake.audit
    assert (entry.action, entry.by, entry.why) == ("replay", "tester", "item added")
    assert entry.replayed_as == f"{topics.SALE.name}:1:100"
    code, out = run("replay", "--reason", "unknown_sku", "--yes", "--json")
    assert json.loads(out)["skipped"][0]["why"].startswith("already replayed by tester")
    assert len(fake.published) == 1
    run("replay", "--reason", "unknown_sku", "--yes", "--force")
    assert len(fake.published) == 2 and fake.audit[-1].forced


def test_discard_needs_why_and_hides_the_record(fake: FakeBackend) -> None:
    assert run("discard", "--reason", "unknown_tender", "--yes")[0] == 2
    code, out = run("discard", "--reason", "unknown_tender", "--by", "ann", "--why",
                    "test sale", "--yes")
    assert code == 0, out
    assert [(e.action, e.by, e.why) for e in fake.audit] == [("discard", "ann", "test sale")]
    assert [r["reason"] for r in json.loads(run("list", "--json")[1])] == ["unknown_sku"]
    rows = json.loads(run("list", "--json", "--all")[1])
    assert {r["reason"]: r["status"] for r in rows} == {"unknown_tender": "discarded",
                                                        "unknown_sku": "pending"}
    assert fake.published == []


def test_without_a_broker_setting_the_commands_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    code, out = run("list")
    assert code == 2 and "KAFKA_BOOTSTRAP_SERVERS" in out
