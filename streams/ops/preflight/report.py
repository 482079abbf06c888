"""Render a preflight report: a rich table per rollout step then the findings, or JSON.

JSON goes to stdout alone (no rich markup) so a deploy pipeline can parse it.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from tillbridge.streams.ops.preflight.model import Report

_STATUS = {"pass": "[green]PASS[/]", "warn": "[yellow]WARN[/]", "fail": "[red]FAIL[/]",
           "skipped": "[dim]skipped[/]"}
_SEVERITY = {"error": "[red]error[/]", "warning": "[yellow]warning[/]"}


def steps_table(report: Report) -> Table:
    table = Table("#", "rollout step", "result", "checked", "errors", "warnings", "what",
                  title="tillbridge preflight")
    for n, step in enumerate(report.steps, start=1):
        table.add_row(str(n), step.title, _STATUS[step.status], str(step.checked),
                      str(step.errors), str(step.warnings), step.detail)
    return table


def findings_table(report: Report) -> Table:
    numbers = {s.id: f"{n} {s.id}" for n, s in enumerate(report.steps, start=1)}
    table = Table("step", "severity", "check", "subject", "finding", "how to fix",
                  title="findings", show_lines=True)
    for f in report.findings:
        table.add_row(numbers.get(f.step, f.step), _SEVERITY[f.severity], f.check, f.subject,
                      f.message, f.fix)
    return table


def show(report: Report, as_json: bool, out: Console | None = None) -> None:
    """Print the report (rich tables, or JSON only)."""
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
        return
    out = out or Console()  # per call: picks up the terminal width (COLUMNS) of this run
    out.print(steps_table(report))
    if report.findings:
        out.print(findings_table(report))
    verdict = ("[red]NOT READY[/]" if report.errors else
               "[yellow]ready, with warnings[/]" if report.warnings else "[green]READY[/]")
    out.print(f"{verdict}: {report.errors} errors, {report.warnings} warnings")


def abort(message: str, as_json: bool, out: Console | None = None) -> None:
    """Preflight could not run (exit code 2)."""
    if as_json:
        print(json.dumps({"ok": False, "exit_code": 2, "error": message}, indent=2))
    else:
        (out or Console(stderr=True)).print(f"[red]preflight could not run:[/] {message}")
