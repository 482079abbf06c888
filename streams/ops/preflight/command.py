"""`tillbridge preflight`: the command that gathers the inputs, runs the checks, reports.

Wired into the CLI with ``app.command("preflight")(preflight_command)``. Gathering lives in
:mod:`.inputs`, the checks in :mod:`.checks`, rendering in :mod:`.report`; this module only
maps their outcome to exit codes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tillbridge.streams.ops.preflight import report as preflight_report
from tillbridge.streams.ops.preflight.checks import run_checks


def preflight_command(
    catalogue: Annotated[Path | None, typer.Option(
        "--catalogue", help="POS catalogue export: CSV (sku,description,price,price_level,"
        "tax_code,store_ids; store_ids separated by ';'; one row per price level; blank "
        "tax_code = the store's) or JSON lines with the same keys.", dir_okay=False)] = None,
    from_topic: Annotated[bool, typer.Option(
        "--from-topic", help="Also read SKUs, stores and tenders from the sale topic "
        "(from its start; needs KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL).")] = False,
    topic: Annotated[str | None, typer.Option(
        help="Topic for --from-topic (default: pos.sale.v1).")] = None,
    max_events: Annotated[int, typer.Option(
        help="Stop reading the topic after this many messages.", min=1)] = 10_000,
    tender: Annotated[list[str] | None, typer.Option(
        "--tender", help="A tender code the POS uses (repeatable).")] = None,
    mappings: Annotated[Path | None, typer.Option(
        help="Mappings file (default: TILLBRIDGE_MAPPINGS, else the packaged one).",
        dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print only JSON: ok, exit_code, sources, steps, findings, summary.")
    ] = False,
) -> None:
    """Check that NetSuite is ready for what the tills sell, in rollout order.

    Steps: 1 items (SKUs/variants exist, active, tax schedule, price tiers, stocked at each
    store's location), 2 customers (guest customer, strategy), 3 tenders (payment methods
    incl. gift cards, store credit, split tenders), 4 stores (location, subsidiary, tax
    codes), 5 traffic (real sales read with --from-topic).

    Exit codes: 0 no errors (warnings allowed); 1 at least one error finding;
    2 preflight could not run (NetSuite unreachable or refused, bad mappings or catalogue
    file, Kafka or the schema registry unreachable).
    """
    from tillbridge.streams.ops.preflight.inputs import PreflightAbort, gather
    from tillbridge.streams.runtime.settings import Settings

    try:
        inputs = gather(Settings.from_env(), catalogue=catalogue, from_topic=from_topic,
                        topic=topic, max_events=max_events, mappings=mappings)
        report = run_checks(inputs.usage, inputs.config, inputs.snapshot,
                            traffic=inputs.traffic, listed_tenders=tender or (),
                            sources=inputs.sources)
    except (PreflightAbort, ValueError) as exc:
        preflight_report.abort(str(exc), as_json)
        raise typer.Exit(2) from None
    except Exception as exc:
        # Anything unforeseen is "could not run" too: exit 1 must only ever mean "gaps found".
        preflight_report.abort(f"unexpected {type(exc).__name__}: {exc}", as_json)
        raise typer.Exit(2) from None
    preflight_report.show(report, as_json)
    raise typer.Exit(report.exit_code)
