"""The worker's read-only operator page (``/dlq``): dead letters by reason, store and time
with their fix, a receipt trace by id, the breaker and the parking table.

Server-rendered HTML, every value escaped, no script. Replay and discard stay in the CLI
(`tillbridge dlq`): they need a who and a why, and this page has no login. The Kafka side
(:func:`snapshot`) blocks, so the worker runs it in an executor, bounded by a time budget.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import Record
from tillbridge.connectors.kafka.serde import AvroCodec, DecodeError
from tillbridge.streams.observe.trace import Story, read_topics
from tillbridge.streams.stages import deadletter as dl
from tillbridge.streams.stages.reasons import CATALOGUE

#: What the page reads: dead letters, who handled them, the parking table.
PAGE_TOPICS: tuple[str, ...] = (*topics.DLQ_TOPICS, topics.DLQ_AUDIT, topics.PARKED)


@dataclass(frozen=True, slots=True)
class LetterRow:
    id: str
    when: str
    reason: str
    store: str
    receipt: str
    stage: str
    message: str
    fix: str


@dataclass(frozen=True, slots=True)
class ParkedRow:
    entry: str
    receipt: str
    dependency: str
    since: str


@dataclass(slots=True)
class Snapshot:
    """Pending dead letters (no audit entry yet) and the parking table, as read now."""

    letters: list[LetterRow] = field(default_factory=list)
    parked: list[ParkedRow] = field(default_factory=list)
    complete: bool = True
    error: str | None = None


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _store(rec: Record, codec: AvroCodec | None) -> str:
    source = rec.header(dl.H_TOPIC) or ""
    if codec is None or not rec.value or not source:
        return "?"
    try:
        return str(codec.decode(rec.value, source).get("store_id") or "?")
    except (DecodeError, ValueError, KeyError):
        return "?"


def letter_row(rec: Record, codec: AvroCodec | None) -> LetterRow:
    reason = rec.header(dl.H_REASON) or "?"
    fix = rec.header(dl.H_FIX) or (CATALOGUE[reason].fix if reason in CATALOGUE else "")
    return LetterRow(f"{rec.topic}:{rec.partition}:{rec.offset}", _iso(rec.timestamp), reason,
                     _store(rec, codec), (rec.key or b"").decode("utf-8", "replace"),
                     rec.header(dl.H_STAGE) or "?", rec.header(dl.H_EXC_MESSAGE) or "", fix)


def build_snapshot(records: Sequence[Record], codec: AvroCodec | None) -> Snapshot:
    """Pure over the records read: pending letters newest first, the parked entries now."""
    handled = {(r.key or b"").decode() for r in records if r.topic == topics.DLQ_AUDIT}
    letters = [letter_row(r, codec) for r in records if r.topic in topics.DLQ_TOPICS]
    pending = sorted((x for x in letters if x.id not in handled), key=lambda x: x.when,
                     reverse=True)
    table: dict[bytes, Record] = {}
    for r in records:
        if r.topic == topics.PARKED and r.key is not None:
            if r.value is None:
                table.pop(r.key, None)
            else:
                table[r.key] = r
    parked = []
    for r in table.values():
        try:
            doc: dict[str, Any] = json.loads(r.value or b"{}")
        except ValueError:
            doc = {"id": (r.key or b"").decode("utf-8", "replace"), "dependency": "unreadable"}
        key = base64.b64decode(doc["key"]).decode("utf-8", "replace") if doc.get("key") else ""
        parked.append(ParkedRow(str(doc.get("id")), key, str(doc.get("dependency")),
                                _iso(float(doc.get("parked_at", 0)) * 1000)))
    return Snapshot(pending, parked)


def snapshot(bootstrap: str, registry_url: str | None, budget_s: float = 5.0) -> Snapshot:
    """Blocking: read the page's topics (within ``budget_s``) and build the snapshot."""
    try:
        records, complete = read_topics(bootstrap, budget_s, names=PAGE_TOPICS)
    except Exception as exc:  # noqa: BLE001 - the page says what failed rather than a 500
        return Snapshot(error=f"Kafka not read: {exc}")
    snap = build_snapshot(records, AvroCodec(registry_url) if registry_url else None)
    snap.complete = complete
    return snap


def _table(head: Sequence[str], rows: Sequence[Sequence[object]], cls: str) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _letters(snap: Snapshot) -> str:
    if snap.error:
        return f'<p class="error">{escape(snap.error)}</p>'
    by_reason = Counter(x.reason for x in snap.letters)
    summary = ", ".join(f"{escape(r)}: {n}" for r, n in by_reason.most_common()) or "none"
    rows = [(x.when, x.reason, x.store, x.receipt, x.stage, x.message, x.fix, x.id)
            for x in snap.letters]
    note = "" if snap.complete else '<p class="error">read budget ran out: list may be short</p>'
    return (f'<h2>Dead letters pending ({len(snap.letters)})</h2>{note}'
            f'<p id="by-reason">By reason: {summary}</p>'
            + _table(("when (UTC)", "reason", "store", "receipt", "stage", "message", "fix",
                      "id"), rows, "letters"))


def _trace(story: Story | None) -> str:
    if story is None:
        return ""
    if not story.found:
        return (f'<section id="trace"><h2>Trace {escape(story.query)}</h2>'
                f"<p>Nothing found for {escape(story.query)} in {story.scanned} records.</p>"
                "</section>")
    steps = [(s.when, s.kind, s.summary, f"{s.topic}/{s.partition}/{s.offset}",
              s.detail.get("fix") or s.detail.get("waiting_for") or "") for s in story.steps]
    ns = [(r.record_type, r.netsuite_id, r.external_id, r.error or r.total or "")
          for r in story.records]
    return (f'<section id="trace"><h2>Trace {escape(story.query)}</h2>'
            + _table(("when (UTC)", "what", "summary", "where", "fix / waiting for"), steps,
                     "steps")
            + "<h3>NetSuite (read live)</h3>"
            + _table(("record type", "id", "externalId", "total"), ns, "netsuite")
            + f"<p>{story.scanned} Kafka records read in {story.seconds:.2f} s</p></section>")


def _state(checks: dict[str, Any], snap: Snapshot) -> str:
    rows = [(name, "ok" if c.get("ok") else "FAILING", c.get("detail", ""))
            for name, c in checks.items()]
    if "sink_breaker" not in checks:  # set on the breaker's first change of state
        rows.append(("sink_breaker", "ok", "closed: no NetSuite outage seen"))
    parked = [(p.receipt, p.dependency, p.since, p.entry) for p in snap.parked]
    return ("<h2>Health</h2>" + _table(("check", "state", "detail"), rows, "checks")
            + f"<h2>Parked ({len(snap.parked)})</h2>"
            + _table(("receipt", "waiting for", "since (UTC)", "entry"), parked, "parked"))


def render(snap: Snapshot, checks: dict[str, Any], query: str = "",
           story: Story | None = None) -> str:
    """The whole page; ``checks`` is the /ready document's ``checks``."""
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            "<title>tillbridge dead letters</title><style>"
            "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;font-size:13px}"
            ".error{color:#a00}</style></head><body><h1>tillbridge</h1>"
            '<form method="get" action=""><label>Receipt (POS id, externalId or NetSuite id) '
            f'<input name="receipt" id="receipt" value="{escape(query, quote=True)}"></label>'
            ' <button type="submit" id="trace-button">Trace</button></form>'
            + _trace(story) + _letters(snap) + _state(checks, snap)
            + "<p>Read-only: replay and discard with <code>tillbridge dlq</code>.</p>"
            "</body></html>")
