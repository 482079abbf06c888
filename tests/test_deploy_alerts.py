"""deploy/alerts.yml: valid for Prometheus, unit-tested with promtool (deploy/alerts.test.yml),
reading only series the worker exports, and each alert telling the on-call person what it
means and where the runbook is.

promtool is a Go binary from the Debian package `prometheus` (`make deploy-tools` installs
it as root); where it is missing the promtool tests skip and say so, the others still run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_support import (
    PROMETHEUS_OWN,
    PROMTOOL_MISSING,
    ROOT,
    exported_series,
    metric_names,
    promtool,
    unknown_series,
)

DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "alerts.yml"
ALERT_TESTS = DEPLOY / "alerts.test.yml"
README = ROOT / "README.md"


def _rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


RULES = _rules()
ALERT_NAMES = [r["alert"] for r in RULES if "alert" in r]


def _run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = promtool()
    if tool is None:
        pytest.skip(PROMTOOL_MISSING)
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=120)


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    parts = re.findall(r"(\d+)(ms|[smhdw])", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


# -- promtool --------------------------------------------------------------------------------

def test_promtool_accepts_the_rules() -> None:
    done = _run_promtool("check", "rules", str(ALERTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    done = _run_promtool("test", "rules", str(ALERT_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_fails_a_unit_test_whose_expectation_is_wrong(tmp_path: Path) -> None:
    """The unit tests can fail: the same file expecting WorkerDown not to fire is refused."""
    doc = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    doc["rule_files"] = [str(ALERTS)]
    firing = next(t for t in doc["tests"]
                  if t["alert_rule_test"][0]["alertname"] == "TillbridgeWorkerDown"
                  and t["alert_rule_test"][0]["exp_alerts"])
    firing["alert_rule_test"][0]["exp_alerts"] = []
    doc["tests"] = [firing]
    path = tmp_path / "wrong.test.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    done = _run_promtool("test", "rules", str(path))
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


def test_prometheus_config_is_valid_with_these_rules(tmp_path: Path) -> None:
    """deploy/prometheus.yml as docker-compose.yml mounts it (rule file path made local)."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = [str(ALERTS)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = _run_promtool("check", "config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


# -- what every rule must carry --------------------------------------------------------------

def test_every_alert_reads_only_series_the_worker_exports() -> None:
    exprs = {r.get("alert") or r["record"]: r["expr"] for r in RULES}
    bad = unknown_series(exprs, exported_series() | PROMETHEUS_OWN)
    assert not bad, f"alerts read series the worker does not export: {bad}"


def test_an_alert_on_a_series_that_does_not_exist_is_caught() -> None:
    bad = unknown_series({"typo": "sum(rate(tillbridge_netsuite_throttled[5m])) > 5"},
                         exported_series() | PROMETHEUS_OWN)
    assert bad == {"typo": ["tillbridge_netsuite_throttled"]}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.get("alert", "?"))
def test_every_alert_says_what_it_means_and_links_its_runbook(rule: dict[str, Any]) -> None:
    annotations = rule.get("annotations", {})
    assert annotations.get("summary") and annotations.get("description"), rule["alert"]
    assert annotations.get("runbook_url") == f"README.md#runbook-{rule['alert'].lower()}"
    assert rule.get("labels", {}).get("severity") in {"critical", "warning", "info"}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.get("alert", "?"))
def test_every_alert_waits_before_firing(rule: dict[str, Any]) -> None:
    """One bad scrape or one odd minute must not page anybody."""
    assert "for" in rule, f"{rule['alert']} has no `for:`"
    assert _seconds(rule["for"]) >= 60, rule["alert"]


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    doc = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))
    fires: set[str] = set()
    quiet: set[str] = set()
    for test in doc["tests"]:
        for check in test["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert not set(ALERT_NAMES) - fires, f"never fired: {sorted(set(ALERT_NAMES) - fires)}"
    assert not set(ALERT_NAMES) - quiet, f"no quiet case: {sorted(set(ALERT_NAMES) - quiet)}"
    assert not (fires | quiet) - set(ALERT_NAMES), "tests name alerts that do not exist"


def test_the_alerts_the_issue_asks_for_are_there() -> None:
    by_name = {r["alert"]: r["expr"] for r in RULES}

    def reading(*series: str) -> list[str]:
        return [n for n, e in by_name.items() if set(series) <= metric_names(e)]

    lag = reading("tillbridge_consumer_lag", "tillbridge_consumer_lag_reliable")
    assert lag, "consumer lag, only where the broker's lag is reliable"
    assert any(re.search(r"\bup\{[^}]*\}\s*==\s*0", e) for e in by_name.values())
    assert any("absent(tillbridge_ready)" in e for e in by_name.values())
    assert any("histogram_quantile(0.99" in e for e in
               (by_name[n] for n in reading("tillbridge_event_to_record_seconds_bucket")))
    assert any(re.search(r"by \([^)]*\breason\b", by_name[n])
               for n in reading("tillbridge_events_dead_lettered_total"))


# -- the runbooks ----------------------------------------------------------------------------

def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_runbook_anchors_resolve_in_the_readme() -> None:
    headings = [m.group(1) for m in re.finditer(r"(?m)^#{1,6} (.+)$",
                                                README.read_text(encoding="utf-8"))]
    anchors = {_github_anchor(h) for h in headings}
    if not any(a.startswith("runbook-") for a in anchors):
        pytest.skip("README.md has no runbook section yet (headings 'Runbook: <alert>'); "
                    "until it lands the anchors cannot be checked")
    missing = sorted(r["annotations"]["runbook_url"] for r in RULES
                     if r["annotations"]["runbook_url"].split("#", 1)[1] not in anchors)
    assert not missing, f"runbook anchors with no README heading: {missing}"


def test_github_anchor_of_a_runbook_heading() -> None:
    assert _github_anchor("Runbook: TillbridgeNetSuiteDown") == "runbook-tillbridgenetsuitedown"
