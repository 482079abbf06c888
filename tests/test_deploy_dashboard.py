"""The Grafana dashboard (deploy/grafana) reads only series the worker exports, shows what the
on-call person needs, is what build.py makes, and lays out without overlaps.

A panel naming a series that does not exist draws an empty graph that looks like "all
quiet": the worst thing a dashboard can do during an incident.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy_support import (
    PROMTOOL_MISSING,
    ROOT,
    exported_series,
    metric_names,
    promtool,
    unknown_series,
)

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "tillbridge.json"


def _build() -> ModuleType:
    """deploy/grafana/build.py, imported by path (deploy/ is no package)."""
    spec = importlib.util.spec_from_file_location("tillbridge_grafana_build",
                                                  GRAFANA / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


build = _build()


def _expressions(doc: dict[str, Any]) -> dict[str, str]:
    """``panel title / refId -> PromQL``, template variable queries included."""
    exprs = {f"{p['title']} / {t['refId']}": t["expr"]
             for p in doc["panels"] for t in p.get("targets", [])}
    for var in doc["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            # label_values(metric, label): only the metric is a series.
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", query.strip())
            exprs[f"variable {var['name']}"] = match.group(1) if match else query
    return exprs


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


# -- the series ------------------------------------------------------------------------------

def test_every_panel_reads_only_series_the_worker_exports(committed: dict[str, Any]) -> None:
    bad = unknown_series(_expressions(committed), exported_series())
    assert not bad, f"panels read series the worker does not export: {bad}"


@pytest.mark.parametrize("expr", [
    "sum(rate(tillbridge_no_such_series_total[5m]))",
    # the family name without the counter's _total is not a series on /metrics
    "sum(rate(tillbridge_events_consumed[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(tillbridge_event_to_record_seconds[5m])))",
])
def test_a_panel_naming_a_series_that_does_not_exist_is_caught(expr: str) -> None:
    """The check above must be able to fail: a made-up panel with a wrong name."""
    rows = (*build.ROWS, build.Row("broken", (
        build.Panel("typo", "", (build.Target(expr),)),)))
    doc = build.dashboard(build.exported_families())
    doc["panels"] = build.panels(rows, build.exported_families())
    bad = unknown_series(_expressions(doc), exported_series())
    assert list(bad) == ["typo / A"], bad


def test_the_on_call_essentials_are_on_the_dashboard(committed: dict[str, Any]) -> None:
    """What the issue asks the on-call person to see; removing one fails here."""
    read = set().union(*map(metric_names, _expressions(committed).values()))
    needed = {
        "tillbridge_events_consumed_total", "tillbridge_records_posted_total",
        "tillbridge_events_dead_lettered_total", "tillbridge_consumer_lag",
        "tillbridge_consumer_lag_reliable", "tillbridge_event_to_record_seconds_bucket",
        "tillbridge_netsuite_requests_in_flight", "tillbridge_netsuite_concurrency_limit",
        "tillbridge_netsuite_throttled_total", "tillbridge_netsuite_retries_total",
        "tillbridge_netsuite_breaker_state", "tillbridge_parked_events",
        "tillbridge_events_replayed_total", "tillbridge_ready",
    }
    assert not needed - read, f"missing from the dashboard: {sorted(needed - read)}"
    by_reason = [e for e in _expressions(committed).values()
                 if "tillbridge_events_dead_lettered_total" in e and "reason" in e]
    assert by_reason, "dead letters must be broken down by reason"


def test_guard_panel_is_drawn_exactly_when_the_worker_exports_guard_series() -> None:
    families = build.exported_families()
    titles = {p["title"] for p in build.dashboard(families)["panels"]}
    with_guard = {p["title"] for p in
                  build.dashboard(families | {"tillbridge_guard_failures"})["panels"]}
    assert "Guard failures, by stage" in with_guard
    assert ("Guard failures, by stage" in titles) == ("tillbridge_guard_failures" in families)


# -- the PromQL parser the checks rely on ----------------------------------------------------

@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (topic, reason) (rate(a_total{instance=~"$instance"}[$__rate_interval]))',
     {"a_total"}),
    ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
    ('up{job="tillbridge"} == 0', {"up"}),
    ("absent(tillbridge_ready)", {"tillbridge_ready"}),
    ("x > 5 and on() max(y) == bool 1", {"x", "y"}),
    ("a / ignoring(reason) group_left(stage) b offset 1h30m", {"a", "b"}),
    ('{__name__="by_name", job="j"}', {"by_name"}),
    ("max_over_time(g[1h:5m]) unless count without (le) (c)", {"g", "c"}),
    ('label_replace(v, "dst", "$1", "src", "(.*)")', {"v"}),
])
def test_metric_names_sees_series_not_functions_labels_or_durations(
        expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


# -- the file --------------------------------------------------------------------------------

def test_committed_json_is_what_build_py_makes() -> None:
    assert DASHBOARD.read_text(encoding="utf-8") == build.render(), (
        "deploy/grafana/dashboards/tillbridge.json is stale: run `make dashboard`")


@pytest.mark.parametrize("guard", [False, True], ids=["as-built", "with-guard-series"])
def test_panels_have_unique_ids_and_do_not_overlap(guard: bool) -> None:
    families = build.exported_families() | ({"tillbridge_guard_failures"} if guard else set())
    doc = build.dashboard(families)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in doc["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_uses_the_datasource_variable(committed: dict[str, Any]) -> None:
    """Provisioned on any Grafana, the dashboard asks which Prometheus, never a fixed uid."""
    for panel in committed["panels"]:
        if panel["type"] == "row":
            continue
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
        assert panel["description"], f"{panel['title']}: say what to look for"


def test_provisioning_points_grafana_at_the_dashboard_folder() -> None:
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "tillbridge.yml").read_text())
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert provider["apiVersion"] == 1 and datasources["apiVersion"] == 1
    assert [p["type"] for p in provider["providers"]] == ["file"]
    assert [d["type"] for d in datasources["datasources"]] == ["prometheus"]
    assert sum(bool(d.get("isDefault")) for d in datasources["datasources"]) == 1


def test_every_expression_is_valid_promql(committed: dict[str, Any], tmp_path: Path) -> None:
    """promtool parses each panel's query as a recording rule (variables substituted)."""
    tool = promtool()
    if tool is None:
        pytest.skip(PROMTOOL_MISSING)
    rules = [{"record": f"dashboard:query_{i}",
              "expr": expr.replace("$__rate_interval", "5m").replace("$instance", ".*")}
             for i, expr in enumerate(_expressions(committed).values())]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([tool, "check", "rules", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
