"""`tillbridge trace <id>`: a receipt's whole story (core in streams/observe/trace.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tillbridge.streams.observe.trace import Story, trace
from tillbridge.streams.runtime.settings import Settings, SettingsError

console = Console()
#: Exit code when nothing in Kafka or NetSuite names the id.
EXIT_NOT_FOUND = 1


async def _run(settings: Settings, query: str, budget: float) -> Story:
    from tillbridge.connectors.netsuite.client import NetSuiteClient
    from tillbridge.streams.runtime.auth_config import authenticator

    base = settings.netsuite_base_url
    if not base:
        return await trace(settings.kafka_bootstrap_servers or "", query, None, budget)
    async with NetSuiteClient(base, authenticator(settings, base),
                              timeout=settings.netsuite_timeout_s) as client:
        return await trace(settings.kafka_bootstrap_servers or "", query, client, budget)


def trace_command(
    receipt: Annotated[str, typer.Argument(help="POS transaction id, externalId or NetSuite id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the story as JSON.")] = False,
    budget: Annotated[float, typer.Option(help="Seconds to spend reading Kafka.")] = 10.0,
) -> None:
    """A receipt's story: published, each outcome, parked/released, dead letters with their
    fix, replays, and the NetSuite records it wrote (read live)."""
    settings = Settings.from_env()
    if not settings.kafka_bootstrap_servers:
        raise SettingsError("set KAFKA_BOOTSTRAP_SERVERS (the broker to read the receipt from)")
    story = asyncio.run(_run(settings, receipt, budget))
    if as_json:
        print(json.dumps(story.as_json(), default=str))
    else:
        _print(story)
    if not story.found:
        if not as_json:
            console.print(f"[red]nothing found for {receipt!r}[/] in {story.scanned} records"
                          + ("" if story.complete else " (budget ran out: try --budget)"))
        raise typer.Exit(EXIT_NOT_FOUND)


def _print(story: Story) -> None:
    steps = Table("when", "what", "where", "detail", title=f"trace {story.query}")
    for s in story.steps:
        extra = s.detail.get("fix") or s.detail.get("waiting_for") or ""
        steps.add_row(s.when, s.summary, f"{s.topic}/{s.partition}/{s.offset}", str(extra))
    console.print(steps)
    if story.records:
        ns = Table("record type", "id", "externalId", "total", title="NetSuite (live)")
        for r in story.records:
            ns.add_row(r.record_type, r.netsuite_id, r.external_id, r.error or r.total or "")
        console.print(ns)
    console.print(f"{story.scanned} Kafka records read in {story.seconds:.2f} s"
                  + ("" if story.complete else " (budget ran out before the end)"))
