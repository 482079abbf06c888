"""The `tillbridge dlq` model: pure, no Kafka and no command line.

What lives here: dead-letter ids, the records as read (:class:`DeadLetter`) and the audit
entries written about them (:class:`AuditEntry`), selection, replay/discard plans, and the
:class:`Backend` seam through which the commands reach Kafka (implemented by
:mod:`tillbridge.streams.ops.dlq.kafka_backend`, faked in tests).

A dead letter's id is ``<dlq topic>:<partition>:<offset>``, e.g.
``tillbridge.dlq.enrich.v1:2:17``: its coordinates in Kafka, so it is stable, unique and
needs no index. ``<stage>:<partition>:<offset>`` (``enrich:2:17``) is accepted as shorthand.

Kafka cannot delete a record, so what was done to one is written to the audit topic
``tillbridge.dlq.audit.v1`` (JSON keyed by the id, compacted). Records with an audit entry
count as handled: `list` hides them (``--all`` shows them) and `replay`/`discard` skip them
unless ``--force``, which is what makes a replay idempotent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from tillbridge.connectors.kafka import topics
from tillbridge.streams.stages import deadletter as dl
from tillbridge.streams.stages.reasons import CATALOGUE

RawHeaders = list[tuple[str, bytes | None]]
Action = Literal["replay", "discard"]

#: Header on a replayed record naming the dead letter it came from.
H_REPLAY_OF = "tillbridge.replay_of"

# -- ids --------------------------------------------------------------------------------


def record_id(topic: str, partition: int, offset: int) -> str:
    """The stable id of a DLQ record (Kafka topic names cannot contain ':')."""
    return f"{topic}:{partition}:{offset}"


def parse_id(text: str) -> tuple[str, int, int]:
    """``topic:partition:offset`` (or ``stage:partition:offset``) -> its parts."""
    parts = text.strip().rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(f"bad dead-letter id {text!r}; expected <dlq topic>:<partition>:<offset>")
    topic = topics.dlq_topic(parts[0]) if parts[0] in topics.DLQ_STAGES else parts[0]
    return topic, int(parts[1]), int(parts[2])


def normalise_id(text: str) -> str:
    return record_id(*parse_id(text))


# -- time -------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An ISO date/datetime (naive means UTC) or an age like ``30m``, ``2h``, ``7d``."""
    raw = text.strip()
    rel = _RELATIVE.match(raw.lower())
    if rel:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[rel[2]]: int(rel[1])})
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"bad time {text!r}; use ISO 8601 (2026-11-26T15:00) or an age "
                         "(30m, 2h, 7d)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _parse_stamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- the records ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DLQ record: where it sits, its untouched bytes and headers, its decoded value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: RawHeaders
    sale: Mapping[str, Any] | None = None  # the decoded value, when it decodes
    decode_error: str | None = None

    @property
    def id(self) -> str:
        return record_id(self.topic, self.partition, self.offset)

    def header(self, name: str) -> str | None:
        return dl.header(self.headers, name)

    @property
    def reason(self) -> str:
        return self.header(dl.H_REASON) or "?"

    @property
    def stage(self) -> str:
        return self.header(dl.H_STAGE) or next(
            (s for s in topics.DLQ_STAGES if topics.dlq_topic(s) == self.topic), "?")

    @property
    def source_topic(self) -> str | None:
        return self.header(dl.H_TOPIC)

    @property
    def source_partition(self) -> int | None:
        raw = self.header(dl.H_PARTITION)
        return int(raw) if raw and raw.isdigit() else None

    @property
    def source_offset(self) -> int | None:
        raw = self.header(dl.H_OFFSET)
        return int(raw) if raw and raw.isdigit() else None

    @property
    def attempts(self) -> int:
        raw = self.header(dl.H_ATTEMPTS)
        return int(raw) if raw and raw.isdigit() else 1

    @property
    def last_failure(self) -> datetime | None:
        return _parse_stamp(self.header(dl.H_LAST))

    @property
    def store_id(self) -> str | None:
        return _text(self.sale.get("store_id")) if self.sale else None

    @property
    def transaction_id(self) -> str | None:
        if self.sale and self.sale.get("pos_transaction_id"):
            return _text(self.sale["pos_transaction_id"])
        return self.key.decode("utf-8", "replace") if self.key else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit topic: who did what to which dead letter, when and why."""

    id: str
    action: Action
    by: str
    why: str
    at: str
    reason: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    forced: bool = False
    replayed_as: str | None = None  # id of the republished record (replays only)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> AuditEntry:
        doc = json.loads(raw)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})


def audit_index(entries: Iterable[AuditEntry]) -> dict[str, AuditEntry]:
    """Latest audit entry per dead-letter id (the audit topic is read in order)."""
    return {e.id: e for e in entries}


def status(letter: DeadLetter, handled: Mapping[str, AuditEntry]) -> str:
    entry = handled.get(letter.id)
    return "pending" if entry is None else ("replayed" if entry.action == "replay"
                                            else "discarded")


# -- selection --------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Filters; each given one must match (any of its values), empty ones match all."""

    topics: frozenset[str] = frozenset()  # DLQ topic, stage name or source topic
    reasons: frozenset[str] = frozenset()
    stores: frozenset[str] = frozenset()
    since: datetime | None = None  # on tillbridge.last_failure, inclusive
    until: datetime | None = None  # exclusive
    ids: frozenset[str] = frozenset()  # normalised ids

    @classmethod
    def build(cls, *, topic: Sequence[str] = (), reason: Sequence[str] = (),
              store: Sequence[str] = (), since: str | None = None, until: str | None = None,
              ids: Sequence[str] = (), now: datetime | None = None) -> Selection:
        """From command-line values; raises ValueError on a bad reason, time or id."""
        unknown = sorted(set(reason) - set(CATALOGUE))
        if unknown:
            raise ValueError(f"unknown reason(s) {', '.join(unknown)}; "
                             "see `tillbridge reasons`")
        return cls(frozenset(topic), frozenset(reason), frozenset(store),
                   parse_when(since, now) if since else None,
                   parse_when(until, now) if until else None,
                   frozenset(normalise_id(i) for i in ids))

    def matches(self, letter: DeadLetter) -> bool:
        if self.ids and letter.id not in self.ids:
            return False
        if self.topics and not self.topics & {letter.topic, letter.stage,
                                              letter.source_topic or ""}:
            return False
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.stores and letter.store_id not in self.stores:
            return False
        when = letter.last_failure
        if self.since and (when is None or when < self.since):
            return False
        return not (self.until and (when is None or when >= self.until))


_NEVER = datetime.min.replace(tzinfo=UTC)


def select(letters: Iterable[DeadLetter], selection: Selection) -> list[DeadLetter]:
    """The matching records, oldest last failure first (replays then keep per-key order)."""
    return sorted((d for d in letters if selection.matches(d)),
                  key=lambda d: d.last_failure or _NEVER)


# -- replay and discard plans -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Planned:
    letter: DeadLetter
    skip: str | None = None  # why it is left alone; None = act on it


def plan(letters: Iterable[DeadLetter], handled: Mapping[str, AuditEntry], action: Action,
         *, force: bool = False) -> list[Planned]:
    """Decide per record. Handled ones are skipped unless forced (idempotent replay);
    so are replays of reasons the catalogue calls not replayable (the same bytes would fail
    the same way) and records that do not say where they came from."""
    out = []
    for letter in letters:
        entry = handled.get(letter.id)
        skip = None
        if entry is not None and not force:
            skip = f"already {status(letter, handled)} by {entry.by} at {entry.at}"
        elif action == "replay" and not letter.source_topic:
            skip = f"no {dl.H_TOPIC} header: source topic unknown"
        elif (action == "replay" and not force and letter.reason in CATALOGUE
              and not CATALOGUE[letter.reason].replayable):
            skip = f"{letter.reason} is not replayable: {CATALOGUE[letter.reason].fix}"
        out.append(Planned(letter, skip))
    return out


def replay_target(letter: DeadLetter, partitions: Collection[int]) -> tuple[str, int | None]:
    """Where a replay goes: the input topic the record was consumed from (its
    ``__connect.errors.topic``), on its original partition when that still exists.

    Re-entering at the input topic is how a record reaches "the stage it failed at" here:
    every stage after decode is a pure function of the sale plus the mappings and NetSuite
    reference data loaded at worker start, and the fix an operator makes is to exactly that
    data. Re-running decode/validate/enrich is cheap and deterministic, so a record that
    passed them passes again, and enrich now sees the fix. A sink failure has to go this way
    too: its DLQ record names the input topic, and the routed topic's enrichment header
    (the stale lookup that failed) is not in the dead letter, so it must be re-enriched.
    The original partition keeps the record in order with later events of the same key.
    """
    topic = letter.source_topic
    if not topic:
        raise ValueError(f"{letter.id} has no {dl.H_TOPIC} header")
    partition = letter.source_partition
    return topic, partition if partition in partitions else None


def replay_headers(letter: DeadLetter) -> RawHeaders:
    """Headers for the republished record: the producer's own headers, plus the attempt
    count and first-failure time so a repeat failure continues the count, plus where it
    came from. Every other DLQ header describes the old failure and is dropped."""
    carried = {dl.H_ATTEMPTS, dl.H_FIRST}
    out: RawHeaders = [(k, v) for k, v in letter.headers
                       if v is not None and (k in carried or not (
                           k.startswith("tillbridge.") or k.startswith("__connect.errors.")))]
    out.append((H_REPLAY_OF, letter.id.encode()))
    return out


def audit_entry(letter: DeadLetter, action: Action, *, by: str, why: str,
                forced: bool = False, replayed_as: str | None = None,
                now: datetime | None = None) -> AuditEntry:
    return AuditEntry(letter.id, action, by, why,
                      (now or datetime.now(UTC)).isoformat(timespec="milliseconds"),
                      letter.reason, letter.source_topic, letter.source_partition,
                      letter.source_offset, forced, replayed_as)


# -- the Kafka seam ---------------------------------------------------------------------


class Backend(Protocol):
    """What the commands need from Kafka; a fake one makes them testable without a broker."""

    def snapshot(self) -> tuple[list[DeadLetter], list[AuditEntry]]:
        """Every DLQ record and every audit entry, read to the end of the topics."""

    def republish(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Produce each letter to its source topic; id -> new record id (delivered only)."""

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Write audit entries; raises when any is not delivered."""
