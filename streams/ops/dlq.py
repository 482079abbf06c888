"""`tillbridge dlq`: list, show, replay and discard dead letters.

A dead letter's id is ``<dlq topic>:<partition>:<offset>``, e.g.
``tillbridge.dlq.enrich.v1:2:17``: its coordinates in Kafka, so it is stable, unique and
needs no index. ``<stage>:<partition>:<offset>`` (``enrich:2:17``) is accepted as shorthand.

Kafka cannot delete a record, so what was done to one is written to the audit topic
``tillbridge.dlq.audit.v1`` (JSON keyed by the id, compacted). Records with an audit entry
count as handled: `list` hides them (``--all`` shows them) and `replay`/`discard` skip them
unless ``--force``, which is what makes a replay idempotent.

Business logic lives in pure functions here; reading and writing Kafka is in
:mod:`tillbridge.streams.ops.dlq_kafka`, reached through the :class:`Backend` seam so the
commands can be tested without a broker.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol

import typer
from rich.console import Console
from rich.table import Table

from tillbridge.connectors.kafka import topics
from tillbridge.streams.runtime.settings import Settings
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


# -- presentation -----------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Decoded Avro -> JSON: Decimals as strings (exact), datetimes ISO, bytes base64."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def summary(letter: DeadLetter, handled: Mapping[str, AuditEntry]) -> dict[str, Any]:
    """One `list` row."""
    return {"id": letter.id, "reason": letter.reason, "stage": letter.stage,
            "source_topic": letter.source_topic, "store_id": letter.store_id,
            "transaction_id": letter.transaction_id, "attempts": letter.attempts,
            "first_failure": letter.header(dl.H_FIRST),
            "last_failure": letter.header(dl.H_LAST), "status": status(letter, handled)}


def describe(letter: DeadLetter, entries: Iterable[AuditEntry]) -> dict[str, Any]:
    """Everything `show` prints: decoded value, all headers, the reason's catalogue entry."""
    reason = CATALOGUE.get(letter.reason)
    key = letter.key.decode("utf-8", "replace") if letter.key is not None else None
    doc: dict[str, Any] = {
        "id": letter.id, "topic": letter.topic, "partition": letter.partition,
        "offset": letter.offset, "key": key,
        "value": jsonable(letter.sale) if letter.sale is not None else None,
        "headers": [[k, v.decode("utf-8", "replace") if v is not None else None]
                    for k, v in letter.headers],
        "reason": ({"code": reason.code, "stage": reason.stage, "meaning": reason.meaning,
                    "cause": reason.cause, "fix": reason.fix, "replayable": reason.replayable}
                   if reason else {"code": letter.reason}),
        "audit": [asdict(e) for e in entries if e.id == letter.id],
    }
    if letter.sale is None:
        doc["value_error"] = letter.decode_error
        doc["value_base64"] = (base64.b64encode(letter.value).decode()
                               if letter.value is not None else None)
    return doc


# -- the Kafka seam ---------------------------------------------------------------------


class Backend(Protocol):
    def snapshot(self) -> tuple[list[DeadLetter], list[AuditEntry]]:
        """Every DLQ record and every audit entry, read to the end of the topics."""

    def republish(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Produce each letter to its source topic; id -> new record id (delivered only)."""

    def append_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Write audit entries; raises when any is not delivered."""


def _backend(settings: Settings) -> Backend:
    from tillbridge.streams.ops.dlq_kafka import KafkaBackend

    return KafkaBackend(settings)


# -- CLI --------------------------------------------------------------------------------

dlq_app = typer.Typer(
    help="Dead letters: list, show, replay to the stage they failed at, or discard with an "
         "audit record. Ids are <dlq topic>:<partition>:<offset>.",
    no_args_is_help=True)
console = Console()

TopicOpt = Annotated[list[str] | None, typer.Option(
    "--topic", "-t", help="DLQ topic, stage (decode/validate/enrich/route/sink) or source "
                          "topic. Repeatable.")]
ReasonOpt = Annotated[list[str] | None, typer.Option(
    "--reason", "-r", help="Reason code (`tillbridge reasons`). Repeatable.")]
StoreOpt = Annotated[list[str] | None, typer.Option(
    "--store", "-s", help="store_id of the decoded sale. Repeatable.")]
SinceOpt = Annotated[str | None, typer.Option(
    help="Last failure at or after: ISO time or an age (30m, 2h, 7d).")]
UntilOpt = Annotated[str | None, typer.Option(help="Last failure before: ISO time or an age.")]
IdOpt = Annotated[list[str] | None, typer.Option("--id", help="Record id. Repeatable.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ByOpt = Annotated[str | None, typer.Option(help="Who is acting (default: $USER).")]
ForceOpt = Annotated[bool, typer.Option(
    help="Also act on records already replayed/discarded, and replay reasons the catalogue "
         "marks not replayable.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOpt = Annotated[bool, typer.Option(help="Show what would be done; write nothing.")]


def _settings() -> Settings:
    s = Settings.from_env()
    if not s.kafka_bootstrap_servers:
        console.print("[red]set KAFKA_BOOTSTRAP_SERVERS[/] (and SCHEMA_REGISTRY_URL to decode "
                      "values)")
        raise typer.Exit(2)
    return s


def _selection(topic: list[str] | None, reason: list[str] | None, store: list[str] | None,
               since: str | None, until: str | None, ids: list[str] | None) -> Selection:
    try:
        return Selection.build(topic=topic or (), reason=reason or (), store=store or (),
                               since=since, until=until, ids=ids or ())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _default_user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


@dataclass
class _Loaded:
    backend: Backend
    letters: list[DeadLetter]
    entries: list[AuditEntry]
    handled: dict[str, AuditEntry] = field(init=False)

    def __post_init__(self) -> None:
        self.handled = audit_index(self.entries)


def _load() -> _Loaded:
    backend = _backend(_settings())
    letters, entries = backend.snapshot()
    return _Loaded(backend, letters, entries)


@dlq_app.command("list")
def list_cmd(topic: TopicOpt = None, reason: ReasonOpt = None, store: StoreOpt = None,
             since: SinceOpt = None, until: UntilOpt = None, ids: IdOpt = None,
             show_all: Annotated[bool, typer.Option(
                 "--all", help="Include records already replayed or discarded.")] = False,
             limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
             as_json: JsonOpt = False) -> None:
    """List dead letters (pending ones unless --all), oldest failure first."""
    sel = _selection(topic, reason, store, since, until, ids)
    loaded = _load()
    rows = [summary(d, loaded.handled) for d in select(loaded.letters, sel)]
    if not show_all:
        rows = [r for r in rows if r["status"] == "pending"]
    rows = rows[:limit] if limit is not None else rows
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "reason", "store", "transaction", "attempts", "last failure",
                  *(["status"] if show_all else []), title=f"{len(rows)} dead letter(s)")
    for r in rows:
        table.add_row(r["id"], r["reason"], r["store_id"] or "", r["transaction_id"] or "",
                      str(r["attempts"]), r["last_failure"] or "",
                      *([r["status"]] if show_all else []))
    console.print(table)


@dlq_app.command("show")
def show_cmd(record: Annotated[str, typer.Argument(help="<dlq topic>:<partition>:<offset>")]
             ) -> None:
    """One dead letter as JSON: decoded value, every header, the reason and what to do."""
    try:
        wanted = normalise_id(record)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    loaded = _load()
    found = next((d for d in loaded.letters if d.id == wanted), None)
    if found is None:
        console.print(f"[red]no dead letter {wanted}[/]")
        raise typer.Exit(1)
    typer.echo(json.dumps(describe(found, loaded.entries), indent=2))


def _report(planned: Sequence[Planned], done: Mapping[str, str | None], verb: str,
            dry_run: bool, as_json: bool) -> None:
    acted = [p for p in planned if p.skip is None]
    if as_json:
        typer.echo(json.dumps({
            "dry_run": dry_run,
            verb: [{"id": p.letter.id, "reason": p.letter.reason,
                    "as": done.get(p.letter.id)} for p in acted if dry_run or
                   p.letter.id in done],
            "failed": [p.letter.id for p in acted if not dry_run and p.letter.id not in done],
            "skipped": [{"id": p.letter.id, "why": p.skip} for p in planned if p.skip],
        }, indent=2))
        return
    table = Table("id", "reason", "outcome",
                  title=f"{len(acted)} to be {verb} (dry run)" if dry_run else verb)
    for p in planned:
        outcome = p.skip and f"skipped: {p.skip}"
        if outcome is None:
            outcome = ("would be " + verb if dry_run else
                       verb if p.letter.id in done else "[red]failed[/]")
            if done.get(p.letter.id):
                outcome += f" as {done[p.letter.id]}"
        table.add_row(p.letter.id, p.letter.reason, outcome)
    console.print(table)


def _confirm(planned: Sequence[Planned], verb: str, yes: bool, dry_run: bool,
             as_json: bool) -> None:
    """Unless --yes: show the plan, then ask (declining aborts with exit code 1)."""
    n = sum(1 for p in planned if p.skip is None)
    if n and not (yes or dry_run):
        if not as_json:
            _report(planned, {}, verb, True, False)
        typer.confirm(f"{verb.removesuffix('ed').capitalize()} {n} dead letter(s)?", abort=True)


@dlq_app.command("replay", help=(
    "Republish the selected records' original bytes to the topic they were consumed from, so "
    "decode/validate/enrich/sink run again with today's mappings and NetSuite data. Each "
    "replay is audited; records already replayed or discarded are skipped unless --force. "
    "Even a forced replay cannot post twice: the sink dedupes by POS transaction and "
    "NetSuite upserts by externalId."))
def replay_cmd(topic: TopicOpt = None, reason: ReasonOpt = None, store: StoreOpt = None,
               since: SinceOpt = None, until: UntilOpt = None, ids: IdOpt = None,
               dry_run: DryRunOpt = False, yes: YesOpt = False, force: ForceOpt = False,
               by: ByOpt = None,
               why: Annotated[str, typer.Option(help="Note for the audit record.")] = "",
               as_json: JsonOpt = False) -> None:
    sel = _selection(topic, reason, store, since, until, ids)
    loaded = _load()
    planned = plan(select(loaded.letters, sel), loaded.handled, "replay", force=force)
    todo = [p.letter for p in planned if p.skip is None]
    _confirm(planned, "replayed", yes, dry_run, as_json)
    done: dict[str, str | None] = {}
    if todo and not dry_run:
        done.update(loaded.backend.republish(todo))
        who = by or _default_user()
        loaded.backend.append_audit([
            audit_entry(d, "replay", by=who, why=why, forced=force, replayed_as=done[d.id])
            for d in todo if d.id in done])
    _report(planned, done, "replayed", dry_run, as_json)
    if len(done) < len(todo) and not dry_run:
        raise typer.Exit(1)


@dlq_app.command("discard", help=(
    "Mark the selected records as dealt with without replaying them: an audit record says "
    "who and why, and `list` stops showing them (`list --all` still does)."))
def discard_cmd(why: Annotated[str, typer.Option(help="Why these are dropped (audited).")],
                topic: TopicOpt = None, reason: ReasonOpt = None, store: StoreOpt = None,
                since: SinceOpt = None, until: UntilOpt = None, ids: IdOpt = None,
                by: ByOpt = None, dry_run: DryRunOpt = False, yes: YesOpt = False,
                force: ForceOpt = False, as_json: JsonOpt = False) -> None:
    if not why.strip():
        raise typer.BadParameter("--why must say why", param_hint="--why")
    sel = _selection(topic, reason, store, since, until, ids)
    loaded = _load()
    planned = plan(select(loaded.letters, sel), loaded.handled, "discard", force=force)
    todo = [p.letter for p in planned if p.skip is None]
    _confirm(planned, "discarded", yes, dry_run, as_json)
    done: dict[str, str | None] = {}
    if todo and not dry_run:
        who = by or _default_user()
        loaded.backend.append_audit([audit_entry(d, "discard", by=who, why=why, forced=force)
                                     for d in todo])
        done = {d.id: None for d in todo}
    _report(planned, done, "discarded", dry_run, as_json)
