"""`tillbridge dlq`: the typer commands (list, show, replay, discard) and what they print.

The decisions (selection, plans, audit entries) are in :mod:`tillbridge.streams.ops.dlq.model`;
Kafka is reached through :func:`_backend`, which tests replace with a fake backend. The
Kafka backend is imported when a command runs, so `tillbridge --help` does not load the
Kafka client.
"""

from __future__ import annotations

import base64
import getpass
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tillbridge.streams.ops.dlq.model import (
    AuditEntry,
    Backend,
    DeadLetter,
    Planned,
    Selection,
    audit_entry,
    audit_index,
    normalise_id,
    plan,
    select,
    status,
)
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import deadletter as dl
from tillbridge.streams.stages.reasons import CATALOGUE

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


def _backend(settings: Settings) -> Backend:
    from tillbridge.streams.ops.dlq.kafka_backend import KafkaBackend

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
