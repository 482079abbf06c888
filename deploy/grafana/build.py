"""Writes ``deploy/grafana/dashboards/tillbridge.json``, the on-call dashboard.

Why a script and not hand-edited JSON: the PromQL sits in one readable list, panel ids and
grid positions follow from the order (no overlaps, no duplicate ids after an edit), and a
panel whose series only newer workers export (the per-record guard's) is included exactly
when this checkout's worker has it. ``tests/test_deploy_dashboard.py`` fails when the
committed JSON is not this script's output, or when a panel reads a series the worker does
not export.

    python deploy/grafana/build.py           # rewrite the JSON (`make dashboard`)
    python deploy/grafana/build.py --check   # exit 1 if the JSON is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "dashboards" / "tillbridge.json"
UID = "tillbridge-oncall"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Every selector is narrowed to the workers picked in the dashboard's "instance" variable.
FILTER = '{instance=~"$instance"}'
RATE = "$__rate_interval"


def s(metric: str, matchers: str = "") -> str:
    """A selector for ``metric`` limited to the chosen instances (plus ``matchers``)."""
    if not matchers:
        return metric + FILTER
    return f'{metric}{{instance=~"$instance",{matchers}}}'


def rate(metric: str, by: str = "", window: str = RATE, matchers: str = "") -> str:
    """``sum [by (labels)] (rate(metric[window]))`` over the chosen instances."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({s(metric, matchers)}[{window}]))"


def quantile(q: float, histogram: str, by: str = "") -> str:
    """A histogram quantile across the chosen instances (optionally per ``by`` label)."""
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({s(histogram)}[{RATE}])))"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """One panel; ``requires`` names a series that must be exported for it to be drawn."""

    title: str
    description: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"  # timeseries, stat, state-timeline
    unit: str = "short"
    width: int = 8
    height: int = 8
    mappings: tuple[tuple[int, str, str], ...] = ()  # (value, text, colour)
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),)
    stacked: bool = False
    requires: str | None = None


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


BREAKER = ((0, "closed", "green"), (1, "half-open (probing)", "yellow"),
           (2, "open (paused)", "red"))

ROWS: tuple[Row, ...] = (
    Row("Is it working?", (
        Panel("Workers ready", "Workers whose reference data is loaded (of all scraped). "
              "Fewer ready than scraped: README runbook TillbridgeNotReady.",
              (Target(f"sum({s('tillbridge_ready')})", "ready"),
               Target(f"count({s('tillbridge_ready')})", "scraped")),
              kind="stat", width=4, height=5),
        Panel("NetSuite breaker", "Worst breaker state across workers. Open: the sink is "
              "paused and events wait in Kafka (runbook TillbridgeNetSuiteDown).",
              (Target(f"max({s('tillbridge_netsuite_breaker_state')})"),),
              kind="stat", width=4, height=5, mappings=BREAKER),
        Panel("Dead letters, last hour", "Records sent to a DLQ in the last hour; the "
              "'Dead-lettered by reason' panel says which reason.",
              (Target(f"sum(increase({s('tillbridge_events_dead_lettered_total')}[1h]))"),),
              kind="stat", width=4, height=5,
              thresholds=((None, "green"), (1, "yellow"), (100, "red"))),
        Panel("Parked events", "Events waiting for a NetSuite record they depend on (a "
              "refund for its sale). Growing for hours: runbook TillbridgeParkedPiling.",
              (Target(f"sum({s('tillbridge_parked_events')})"),),
              kind="stat", width=4, height=5,
              thresholds=((None, "green"), (100, "yellow"))),
        Panel("Consumer lag", "Records behind the high watermark, all topics. Empty where "
              "the broker's watermarks are unreliable (see 'Lag reported').",
              (Target(f"sum({s('tillbridge_consumer_lag')})"),),
              kind="stat", width=4, height=5,
              thresholds=((None, "green"), (10000, "yellow"), (100000, "red"))),
        Panel("Lag reported", "1: lag comes from trustworthy watermarks. 0: this broker "
              "(Tansu) answers wrong watermarks, so no lag is exported and lag alerts "
              "cannot fire: watch 'Events in' vs 'Records posted' instead.",
              (Target(f"min({s('tillbridge_consumer_lag_reliable')})"),),
              kind="stat", width=4, height=5,
              mappings=((0, "no (broker)", "orange"), (1, "yes", "green"))),
    )),
    Row("Flow", (
        Panel("Events in, by topic", "Records read from the POS input topics per second.",
              (Target(rate("tillbridge_events_consumed_total", "topic"), "{{topic}}"),),
              unit="ops"),
        Panel("Records posted, by NetSuite type", "NetSuite records created or upserted "
              "per second.",
              (Target(rate("tillbridge_records_posted_total", "record_type"),
                      "{{record_type}}"),), unit="ops"),
        Panel("Dead-lettered, by reason", "Per stage and reason code; `tillbridge reasons` "
              "says what each means and what to do (runbook TillbridgeDeadLettersRising).",
              (Target(rate("tillbridge_events_dead_lettered_total", "stage, reason"),
                      "{{stage}}: {{reason}}"),), unit="ops", stacked=True),
        Panel("Skipped, duplicates, replays", "Events that made no new record, and why: "
              "skipped (no record needed), duplicate POS transaction, replay after a "
              "restart (its earlier attempt wrote the record), suspected double scan.",
              (Target(rate("tillbridge_events_skipped_total"), "skipped"),
               Target(rate("tillbridge_duplicates_prevented_total"), "duplicate"),
               Target(rate("tillbridge_events_replayed_total"), "replayed"),
               Target(rate("tillbridge_double_scan_suspected_total"), "double scan?")),
              unit="ops", width=12),
        Panel("Replays, by topic", "Events seen again after a crash or restart whose "
              "records their own earlier attempt wrote: nothing is written twice. A burst "
              "follows every restart; a steady rate means workers keep restarting.",
              (Target(rate("tillbridge_events_replayed_total", "topic"), "{{topic}}"),),
              unit="ops", width=12),
    )),
    Row("Latency and lag", (
        Panel("Event to NetSuite record", "POS event time to record posted. Includes time "
              "the till held the event before upload (runbook TillbridgeEventToRecordSlow).",
              (Target(quantile(0.5, "tillbridge_event_to_record_seconds_bucket"), "p50"),
               Target(quantile(0.9, "tillbridge_event_to_record_seconds_bucket"), "p90"),
               Target(quantile(0.99, "tillbridge_event_to_record_seconds_bucket"), "p99")),
              unit="s"),
        Panel("Consumer lag, by topic", "Records behind, where the broker reports it "
              "(runbook TillbridgeConsumerLagHigh).",
              (Target(f"sum by (topic) ({s('tillbridge_consumer_lag')})", "{{topic}}"),)),
        Panel("NetSuite request p99, by record type", "Time NetSuite takes per request "
              "(runbook TillbridgeNetSuiteSlow).",
              (Target(quantile(0.99, "tillbridge_netsuite_request_duration_seconds_bucket",
                               "record_type"), "{{record_type}}"),), unit="s"),
    )),
    Row("NetSuite", (
        Panel("Requests in flight vs limit", "Concurrent NetSuite requests against the "
              "workers' shares of the account limit. Pinned at the limit with 429s: the "
              "shares exceed what the account allows (README, Governance).",
              (Target(f"sum({s('tillbridge_netsuite_requests_in_flight')})", "in flight"),
               Target(f"sum({s('tillbridge_netsuite_concurrency_limit')})", "limit"))),
        Panel("429s (throttled)", "CONCURRENCY_LIMIT_EXCEEDED answers per second; they cost "
              "time, never an event (runbook TillbridgeThrottledHard).",
              (Target(rate("tillbridge_netsuite_throttled_total"), "429/s"),), unit="ops"),
        Panel("Retries, by reason", "NetSuite calls retried: throttled, server_error, "
              "timeout, connection, auth_refresh, lookup.",
              (Target(rate("tillbridge_netsuite_retries_total", "reason"), "{{reason}}"),),
              unit="ops", stacked=True),
        Panel("Requests, by outcome", "ok, throttled, 4xx, 5xx, error (no answer).",
              (Target(rate("tillbridge_netsuite_requests_total", "outcome"), "{{outcome}}"),),
              unit="ops", stacked=True),
        Panel("Breaker state, per worker", "Closed / half-open / open over time. Many "
              "changes: runbook TillbridgeBreakerFlapping.",
              (Target(f"max by (instance) ({s('tillbridge_netsuite_breaker_state')})",
                      "{{instance}}"),),
              kind="state-timeline", mappings=BREAKER),
        Panel("Paused sink partitions", "Sink partitions held while NetSuite is "
              "unavailable, and records that waited for it instead of being dead-lettered.",
              (Target(f"sum({s('tillbridge_sink_paused_partitions')})", "paused partitions"),
               Target(rate("tillbridge_sink_unavailable_waits_total"), "waits/s"))),
        Panel("Backlog drain (async batch jobs)", "Sink batches drained through NetSuite "
              "batch jobs after an outage or burst, the jobs by state and their records.",
              (Target(rate("tillbridge_sink_drains_total"), "drains/s"),
               Target(rate("tillbridge_netsuite_batch_jobs_total", "state"), "jobs {{state}}"),
               Target(rate("tillbridge_netsuite_batch_records_total", "outcome"),
                      "records {{outcome}}")),
              unit="ops", width=24),
    )),
    Row("Parking, reference data, guard", (
        Panel("Parked events and outcomes", "Waiting events, and per second: parked, "
              "released (dependency landed), expired (dead-lettered as orphan_dependency).",
              (Target(f"sum({s('tillbridge_parked_events')})", "waiting"),
               Target(rate("tillbridge_park_outcomes_total", "outcome"), "{{outcome}}/s"))),
        Panel("Reference data", "Snapshot version and items per worker, mappings version; "
              "workers should agree after a refresh.",
              (Target(f"max by (instance) ({s('tillbridge_refdata_version')})",
                      "refdata v {{instance}}"),
               Target(f"max by (instance) ({s('tillbridge_refdata_items')})",
                      "items {{instance}}"),
               Target(f"max by (instance) ({s('tillbridge_mappings_version')})",
                      "mappings v {{instance}}"))),
        Panel("Refreshes and reload errors", "Reference data refreshes by mode and outcome; "
              "mappings files refused (the old mappings stay).",
              (Target(f"sum by (mode, outcome) (increase("
                      f"{s('tillbridge_refdata_refreshes_total')}[1h]))",
                      "{{mode}} {{outcome}} /h"),
               Target(f"sum(increase({s('tillbridge_mappings_reload_errors_total')}[1h]))",
                      "mappings refused /h"))),
        Panel("Guard failures, by stage", "Records an agent step failed on unexpectedly (a "
              "bug, dead-lettered as internal_error); held: their dead letter could not be "
              "written either, so their partition stops committing.",
              (Target(rate("tillbridge_guard_failures_total", "stage"), "failed {{stage}}"),
               Target(rate("tillbridge_guard_held_total", "stage"), "held {{stage}}")),
              unit="ops", width=24, requires="tillbridge_guard_failures"),
    )),
    Row("Process", (
        Panel("CPU, per worker", "CPU seconds per second of each worker process (1 = one "
              "core busy). Faust runs one event loop: a worker near 1 is at its ceiling.",
              (Target(f"rate({s('process_cpu_seconds_total')}[{RATE}])", "{{instance}}"),),
              unit="percentunit", width=6),
        Panel("Resident memory, per worker", "RSS of each worker. Rising at steady load for "
              "hours is a leak (`make soak` measures the trend).",
              (Target(s("process_resident_memory_bytes"), "{{instance}}"),), unit="bytes",
              width=6),
        Panel("Open files, per worker", "Open file descriptors (Kafka and NetSuite sockets, "
              "RocksDB files). Rising at steady load is a leak.",
              (Target(s("process_open_fds"), "{{instance}}"),), width=6),
        Panel("Open files, share of the limit", "Open descriptors over the process limit "
              "(ulimit -n). Above 80% for 10 minutes: runbook TillbridgeOpenFilesNearLimit.",
              (Target(f"{s('process_open_fds')} / {s('process_max_fds')}", "{{instance}}"),),
              unit="percentunit", width=6),
    )),
    Row("Reconciliation (POS vs NetSuite)", (
        Panel("Drift amount, by store", "Latest `tillbridge reconcile` of each store: sum of "
              "its receipts missing, extra or different in NetSuite (net of tax). 0: balanced.",
              (Target(f"max by (store) ({s('tillbridge_reconciliation_drift_amount')})",
                      "{{store}}"),)),
        Panel("Receipts drifting, by store", "How many receipts the latest reconciliation "
              "names; `tillbridge reconcile --date D --store S` lists them with their state.",
              (Target(f"max by (store) ({s('tillbridge_reconciliation_drift_count')})",
                      "{{store}}"),)),
        Panel("Registers flagged", "Registers whose drift is past "
              "TILLBRIDGE_RECONCILE_DRIFT_THRESHOLD_CENTS (runbook "
              "TillbridgeReconciliationDrift).",
              (Target(f"sum(max by (store, register) "
                      f"({s('tillbridge_reconciliation_register_flagged')}))"),),
              kind="stat", thresholds=((None, "green"), (1, "red"))),
    )),
)


def _field_config(panel: Panel) -> dict[str, Any]:
    steps = [{"color": colour, "value": value} for value, colour in panel.thresholds]
    config: dict[str, Any] = {
        "defaults": {
            "unit": panel.unit,
            "thresholds": {"mode": "absolute", "steps": steps},
            "color": {"mode": "thresholds" if panel.kind != "timeseries" else "palette-classic"},
        },
        "overrides": [],
    }
    if panel.mappings:
        config["defaults"]["mappings"] = [{
            "type": "value",
            "options": {str(v): {"text": text, "color": colour, "index": i}
                        for i, (v, text, colour) in enumerate(panel.mappings)},
        }]
        config["defaults"]["color"] = {"mode": "thresholds"}
    if panel.kind == "timeseries":
        config["defaults"]["custom"] = {
            "drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
        }
    return config


def _options(panel: Panel) -> dict[str, Any]:
    if panel.kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "background", "graphMode": "none", "justifyMode": "auto",
                "textMode": "value_and_name" if len(panel.targets) > 1 else "value"}
    if panel.kind == "state-timeline":
        return {"showValue": "never", "mergeValues": True, "rowHeight": 0.9,
                "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"}}
    return {"legend": {"showLegend": True, "displayMode": "table", "placement": "bottom",
                       "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"}}


def _panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": _field_config(panel),
        "options": _options(panel),
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": t.expr,
                     "legendFormat": t.legend or "__auto", "range": True}
                    for i, t in enumerate(panel.targets)],
    }


def panels(rows: Iterable[Row], exported: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Grafana panels for ``rows``, laid out left to right, 24 columns a line; a panel whose
    ``requires`` is not among ``exported`` (family names) is left out."""
    have = None if exported is None else set(exported)
    out: list[dict[str, Any]] = []
    y, next_id = 0, 1
    for row in rows:
        drawn = [p for p in row.panels if p.requires is None or have is None
                 or p.requires in have]
        if not drawn:
            continue
        out.append({"id": next_id, "type": "row", "title": row.title, "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id += 1
        y += 1
        x, line_height = 0, 0
        for panel in drawn:
            if x + panel.width > 24:
                x, y, line_height = 0, y + line_height, 0
            out.append(_panel_json(panel, next_id, x, y))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def exported_families() -> set[str]:
    """Metric family names the worker's registry holds (``tillbridge_guard_failures``...)."""
    from tillbridge.streams.runtime.metrics import REGISTRY

    return {family.name for family in REGISTRY.collect()}


def dashboard(exported: Iterable[str] | None = None) -> dict[str, Any]:
    """The whole dashboard document, as Grafana's file provisioning loads it."""
    return {
        "uid": UID,
        "title": "tillbridge — on call",
        "description": "POS events from Kafka into NetSuite: is it flowing, where does it "
                       "wait, what is dead-lettered. Built by deploy/grafana/build.py.",
        "tags": ["tillbridge", "kafka", "netsuite"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1},
            {"name": "instance", "label": "Worker", "type": "query", "datasource": DATASOURCE,
             "query": {"query": "label_values(tillbridge_ready, instance)", "refId": "A"},
             "definition": "label_values(tillbridge_ready, instance)",
             "includeAll": True, "multi": True, "allValue": ".*", "current": {},
             "refresh": 2, "sort": 1, "hide": 0},
        ]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels(ROWS, exported_families() if exported is None else exported),
    }


def render(exported: Iterable[str] | None = None) -> str:
    """The file's exact text (sorted keys, two-space indent, final newline)."""
    return json.dumps(dashboard(exported), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(HERE.parent.parent)} is stale: "
                  "run `make dashboard`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(HERE.parent.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
