"""`tillbridge reconcile --date D [--store S] [--json]`: POS versus NetSuite for one
business day. Exit codes: 0 balanced, 1 drift (every difference named), 2 could not run."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tillbridge.streams.reconcile.compare import reconcile
from tillbridge.streams.reconcile.model import RegisterReport
from tillbridge.streams.runtime.settings import Settings

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

EXIT_BALANCED, EXIT_DRIFT, EXIT_CANNOT_RUN = 0, 1, 2


def run(business_date: str, store: str | None = None, settings: Settings | None = None
        ) -> tuple[int, list[RegisterReport], dict[str, Any]]:
    """Gather, compare, publish; (exit code, reports, the summary document). Raises
    ``CannotRun`` when a side cannot be read or the topic cannot be written."""
    from tillbridge.streams.ops.reconcile.gather import CannotRun, gather
    from tillbridge.streams.ops.reconcile.publish import documents, publish
    from tillbridge.streams.runtime import metrics

    settings = settings or Settings.from_env()
    got = gather(settings, business_date, store)
    reports = reconcile(got.day)
    threshold = Decimal(settings.reconcile_drift_threshold_cents) / 100
    docs = documents(reports, business_date, store, threshold, got.sources)
    try:
        publish(settings.kafka_bootstrap_servers or "", docs, settings.topic_partitions)
    except RuntimeError as exc:
        raise CannotRun(str(exc)) from exc
    for _key, doc in docs:
        metrics.reconciliation(doc)
    summary = docs[-1][1]
    return (EXIT_BALANCED if summary["balanced"] else EXIT_DRIFT), reports, summary


def reconcile_command(
    day: Annotated[str, typer.Option("--date", help="Business day, YYYY-MM-DD.")],
    store: Annotated[str | None, typer.Option(help="Only this store.")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print only JSON: summary and one report per register.")] = False,
) -> None:
    """POS versus NetSuite per store, register and business day: counts and totals per
    tender and record type, and every receipt missing in NetSuite, extra in NetSuite or
    different in amount, with its state in tillbridge. Publishes the result on
    tillbridge.reconciliation.v1.

    Exit codes: 0 balanced; 1 drift; 2 could not run (Kafka, the schema registry or
    NetSuite unreachable, a bad date).
    """
    from tillbridge.streams.ops.reconcile.gather import CannotRun

    try:
        date.fromisoformat(day)
        code, reports, summary = run(day, store)
    except (CannotRun, ValueError) as exc:
        _abort(f"reconcile could not run: {exc}", as_json)
    except Exception as exc:  # noqa: BLE001 - exit 1 must only ever mean "drift found"
        _abort(f"reconcile could not run: unexpected {type(exc).__name__}: {exc}", as_json)
    if as_json:
        console.print_json(json.dumps({"exit_code": code, "summary": summary,
                                       "registers": [r.to_json() for r in reports]}))
    else:
        _show(reports, summary)
    raise typer.Exit(code)


def _abort(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"exit_code": EXIT_CANNOT_RUN, "error": message}))
    else:
        err_console.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(EXIT_CANNOT_RUN)


def _show(reports: list[RegisterReport], summary: dict[str, Any]) -> None:
    table = Table("store", "register", "POS receipts", "NetSuite records", "drift",
                  "amount", title=f"reconciliation {summary['business_date']}")
    for rep in reports:
        pos = sum(t.count for t in rep.pos_by_type.values())
        ns = sum(t.count for t in rep.netsuite_by_type.values())
        table.add_row(rep.store_id, rep.register_id, str(pos), str(ns),
                      "balanced" if rep.balanced else str(len(rep.drifts)),
                      str(rep.drift_amount))
    console.print(table)
    for rep in reports:
        for d in rep.drifts:
            console.print(f"{d.problem:9} {d.kind:6} {d.txn_id} {rep.store_id}/"
                          f"{rep.register_id} POS {d.pos_amount} NetSuite "
                          f"{d.netsuite_amount}: {d.state} {d.detail}", highlight=False)
