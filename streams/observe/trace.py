"""A receipt's story from Kafka and NetSuite: `tillbridge trace` (and the worker's page).

How records are found: every topic that can hold a receipt is read from its start with
:class:`~tillbridge.connectors.kafka.reader.TopicTail` (by reading, not by watermarks: Tansu's
are wrong), bounded by a time budget, and filtered here. A record belongs to the receipt when
its Kafka key is the POS transaction id (input, results and dead-letter topics are keyed by
it), when a results document names the id as ``external_id`` or as a NetSuite record's id or
externalId, or when a parking entry's original key is the id. The NetSuite records a result
names are then read live (GET by ``eid:``). :func:`build_story` is pure over the records read.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import Record, TopicTail
from tillbridge.connectors.netsuite.client import NetSuiteClient, eid
from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.streams.stages import deadletter as dl
from tillbridge.streams.stages.reasons import CATALOGUE

#: Topics a trace reads: inputs, outcomes, dead letters and their audit, the parking table.
TRACE_TOPICS: tuple[str, ...] = (*(t.name for t in topics.EVENT_TOPICS), topics.RESULTS,
                                 *topics.DLQ_TOPICS, topics.DLQ_AUDIT, topics.PARKED,
                                 topics.RECONCILIATION)
#: Header a replayed record carries (same spelling as `tillbridge dlq`).
H_REPLAY_OF = "tillbridge.replay_of"


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happened to the receipt, where it sits in Kafka and what it says."""

    when: str  # ISO time of the Kafka record (CreateTime)
    kind: str  # published | outcome | dead_letter | parked | released | audit
    topic: str
    partition: int
    offset: int
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NetSuiteRecord:
    record_type: str
    netsuite_id: str
    external_id: str
    total: str | None  # as NetSuite returns it (a decimal string); None when not read
    error: str | None = None


@dataclass(slots=True)
class Story:
    """What a trace found for one id; ``found`` is false when nothing matched."""

    query: str
    steps: list[Step] = field(default_factory=list)
    records: list[NetSuiteRecord] = field(default_factory=list)
    scanned: int = 0
    complete: bool = True  # false when the time budget ran out before the topics' end
    seconds: float = 0.0

    @property
    def found(self) -> bool:
        return bool(self.steps or self.records)

    def written(self) -> list[tuple[str, str]]:
        """(record type, externalId or id) of every NetSuite record the outcomes name."""
        out: list[tuple[str, str]] = []
        for step in self.steps:
            for rec in step.detail.get("records", []) or []:
                ref = (str(rec.get("record_type") or ""),
                       str(rec.get("external_id") or rec.get("netsuite_id") or ""))
                if all(ref) and ref not in out:
                    out.append(ref)
        return out

    def as_json(self) -> dict[str, Any]:
        return {"query": self.query, "found": self.found, "complete": self.complete,
                "scanned": self.scanned, "seconds": round(self.seconds, 3),
                "steps": [asdict(s) for s in self.steps],
                "netsuite": [asdict(r) for r in self.records]}


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _json(raw: bytes | None) -> dict[str, Any]:
    try:
        doc = json.loads(raw or b"")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _result_matches(doc: dict[str, Any], q: str) -> bool:
    if q in (str(doc.get("pos_transaction_id") or ""), str(doc.get("external_id") or "")):
        return True
    return any(q.lower() in (str(r.get("external_id") or "").lower(),
                             str(r.get("netsuite_id") or "").lower())
               for r in doc.get("records", []) or [])


def _step(rec: Record, kind: str, summary: str, **detail: Any) -> Step:
    return Step(_when(rec.timestamp), kind, rec.topic, rec.partition, rec.offset, summary,
                detail)


def _dead_letter(rec: Record) -> Step:
    reason = rec.header(dl.H_REASON) or "?"
    fix = rec.header(dl.H_FIX) or (CATALOGUE[reason].fix if reason in CATALOGUE else "")
    src = (f"{rec.header(dl.H_TOPIC)}/{rec.header(dl.H_PARTITION)}/"
           f"{rec.header(dl.H_OFFSET)}")
    return _step(rec, "dead_letter", f"dead letter: {reason}", reason=reason, fix=fix,
                 stage=rec.header(dl.H_STAGE), message=rec.header(dl.H_EXC_MESSAGE),
                 attempts=rec.header(dl.H_ATTEMPTS), source=src,
                 id=f"{rec.topic}:{rec.partition}:{rec.offset}",
                 replay_of=rec.header(H_REPLAY_OF))


def _classify(rec: Record, q: str, qb: bytes, letters: set[str]) -> Step | None:
    """The step a record adds to the story of ``q``, or None when it is about another id."""
    if rec.topic == topics.RESULTS:
        doc = _json(rec.value)
        if rec.key != qb and not _result_matches(doc, q):
            return None
        outcome = str(doc.get("outcome") or "?")
        return _step(rec, "outcome", f"{outcome} ({doc.get('source', '?')})", **doc)
    if rec.topic in topics.DLQ_TOPICS:
        return _dead_letter(rec) if rec.key == qb else None
    if rec.topic == topics.DLQ_AUDIT:
        entry_id = (rec.key or b"").decode("utf-8", "replace")
        if entry_id not in letters:
            return None
        doc = _json(rec.value)
        return _step(rec, "audit", f"{doc.get('action', '?')} of {entry_id} by "
                     f"{doc.get('who', '?')}: {doc.get('why', '')}", **doc)
    if rec.topic == topics.PARKED:
        return _parked(rec, qb)
    if rec.topic == topics.RECONCILIATION:
        return _reconciled(rec, q)
    if rec.key == qb:  # an input topic
        replay = rec.header(H_REPLAY_OF)
        return _step(rec, "published", "replayed from " + replay if replay else "published",
                     replay_of=replay)
    return None


def _reconciled(rec: Record, q: str) -> Step | None:
    """A register's reconciliation that names the receipt (missing, extra or different in
    NetSuite); a balanced register lists no receipt, so silence there means no drift."""
    doc = _json(rec.value)
    if doc.get("type") != "register":
        return None
    for drift in doc.get("drifts") or []:
        if str(drift.get("pos_transaction_id") or "") == q:
            return _step(rec, "reconciliation",
                         f"reconciliation {doc.get('business_date')} "
                         f"{doc.get('store_id')}/{doc.get('register_id')}: "
                         f"{drift.get('problem')} ({drift.get('state')})",
                         run_id=doc.get("run_id"), origin=doc.get("origin"),
                         **{("receipt_kind" if k == "kind" else k): v
                            for k, v in drift.items()})
    return None


def _parked(rec: Record, qb: bytes) -> Step | None:
    if rec.value is None:  # tombstone: the entry left the table (released or timed out)
        return None
    doc = _json(rec.value)
    key = base64.b64decode(doc["key"]) if doc.get("key") else None
    if key != qb:
        return None
    return _step(rec, "parked", f"parked waiting for {doc.get('dependency')}",
                 dependency=doc.get("dependency"), entry=doc.get("id"),
                 parked_at=doc.get("parked_at"), deadline=doc.get("deadline"),
                 detail=doc.get("detail"))


def build_story(query: str, records: Iterable[Record]) -> Story:
    """The steps of ``query``'s story among ``records`` (any order), oldest first."""
    q = query.strip()
    story = Story(q)
    recs = sorted(records, key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    story.scanned = len(recs)
    # A NetSuite id or externalId leads to the POS key through its results record.
    keys = {q.encode()}
    for rec in recs:
        if rec.topic == topics.RESULTS and rec.key and _result_matches(_json(rec.value), q):
            keys.add(rec.key)
    letters: set[str] = set()
    parked_ids: dict[str, Step] = {}
    seen: set[tuple[str, int, int]] = set()
    for key in sorted(keys):
        for rec in recs:
            step = _classify(rec, key.decode("utf-8", "replace"), key, letters)
            if step is None or (rec.topic, rec.partition, rec.offset) in seen:
                continue
            seen.add((rec.topic, rec.partition, rec.offset))
            if step.kind == "dead_letter":
                letters.add(step.detail["id"])
            if step.kind == "parked":
                parked_ids[str(step.detail.get("entry"))] = step
            story.steps.append(step)
    story.steps.extend(_released(recs, parked_ids))
    story.steps.sort(key=lambda s: s.when)
    return story


def _released(recs: Sequence[Record], parked: dict[str, Step]) -> list[Step]:
    """A tombstone on a parked entry of the receipt: it left the table."""
    return [_step(r, "released", f"left the parking table ({parked[k].detail['dependency']})")
            for r in recs if r.topic == topics.PARKED and r.value is None
            and (k := (r.key or b"").decode("utf-8", "replace")) in parked]


def read_topics(bootstrap: str, budget_s: float = 10.0, quiet_s: float = 0.5,
                names: Sequence[str] = TRACE_TOPICS) -> tuple[list[Record], bool]:
    """Every record of ``names`` readable within ``budget_s``; the flag says whether reading
    reached quiet (the end) before the budget ran out."""
    deadline = time.monotonic() + budget_s
    with TopicTail(bootstrap, names) as tail:
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if tail.poll(0.1):
                last_new = time.monotonic()
            elif time.monotonic() - last_new >= quiet_s:
                return [r for n in names for r in tail.records[n]], True
        return [r for n in names for r in tail.records[n]], False


async def read_netsuite(client: NetSuiteClient, refs: Sequence[tuple[str, str]],
                        ) -> list[NetSuiteRecord]:
    """Each named record as NetSuite holds it now (GET by ``eid:``, or by internal id)."""
    out = []
    for record_type, ref in refs:
        path_id = ref if ref.isdigit() else eid(ref)
        try:
            body = await client.get(record_type, path_id)
        except NetSuiteError as exc:
            out.append(NetSuiteRecord(record_type, "", ref, None, f"{exc.status} {exc.code}"))
            continue
        total = body.get("total")
        out.append(NetSuiteRecord(record_type, str(body.get("id") or ""),
                                  str(body.get("externalId") or ref),
                                  None if total is None else str(total)))
    return out


async def trace(bootstrap: str, query: str, client: NetSuiteClient | None,
                budget_s: float = 10.0) -> Story:
    """The whole story of ``query``: Kafka (bounded by ``budget_s``) then NetSuite, live."""
    import asyncio

    started = time.monotonic()
    records, complete = await asyncio.get_running_loop().run_in_executor(
        None, read_topics, bootstrap, budget_s)
    story = build_story(query, records)
    story.complete = complete
    refs = story.written()
    if client is not None and not refs and query.lower().startswith("pos-"):
        refs = await _by_external_id(client, query)
    if client is not None and refs:
        story.records = await read_netsuite(client, refs)
    story.seconds = time.monotonic() - started
    return story


async def _by_external_id(client: NetSuiteClient, external_id: str) -> list[tuple[str, str]]:
    """A record written outside the results topic's retention: found by SuiteQL."""
    rows = await client.suiteql(
        "SELECT id, recordtype FROM transaction WHERE externalid = ?", params=[external_id])
    return [(str(r.get("recordtype") or ""), str(r.get("id") or "")) for r in rows]
