"""What the deploy tests share: the series the worker exports, and the metric names a PromQL
expression (a dashboard panel's, an alert's) reads.

Why a lexer and not a regex over the whole expression: function names (``rate``), label
names in ``by (...)``, durations (``5m``), strings and Grafana variables all look like
identifiers, and a check that trips over them gets an allow-list that hides real mistakes.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Series Prometheus itself writes for every target: not the worker's, but fair to alert on.
PROMETHEUS_OWN = frozenset({"up"})

#: Names the exposition format adds to a family's name, by family type (prometheus_client).
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "unknown": ("",),
}


def exported_series() -> frozenset[str]:
    """Every series name the worker's /metrics can show, from its registry (not from a
    scrape, so a labelled family nobody has incremented yet counts too)."""
    from tillbridge.streams.runtime.metrics import REGISTRY

    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
    return frozenset(names)


# -- PromQL ----------------------------------------------------------------------------------

#: Words that are PromQL syntax, never a metric, even without a parenthesis after them.
_KEYWORDS = frozenset({
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "atan2", "inf", "nan",
    # aggregation operators: ``sum by (le) (...)`` puts a keyword between name and "("
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
})
#: Keywords followed by a parenthesised list of label names.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})

_TOKEN = re.compile(r"""
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
                 (?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<open>[({\[])
    | (?P<close>[)}\]])
    | (?P<space>\s+)
    | (?P<other>.)
""", re.VERBOSE | re.DOTALL)
# Grafana's template variables: $var, ${var}, ${var:format}, [[var]].
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_]\w*|\[\[[^\]]*\]\]")


def _tokens(expr: str) -> Iterator[tuple[str, str]]:
    for match in _TOKEN.finditer(expr):
        kind = match.lastgroup or "other"
        if kind != "space":
            yield kind, match.group()


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects: bare names, and ``{__name__="..."}`` matchers.

    Grafana variables become a duration (``[$__rate_interval]``) or vanish inside strings, so
    a dashboard's expressions parse like plain PromQL.
    """
    expr = _GRAFANA_VARIABLE.sub("5m", expr)
    tokens = list(_tokens(expr))
    names: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "open" and text in "{[":
            # Label matchers or a range/subquery: skip to the matching close, reading only a
            # __name__ matcher from it.
            depth, j = 1, i + 1
            while j < len(tokens) and depth:
                depth += {"open": 1, "close": -1}.get(tokens[j][0], 0)
                j += 1
            inner = tokens[i + 1:j - 1]
            if text == "{":
                for k in range(len(inner) - 2):
                    if (inner[k][1] == "__name__" and inner[k + 1][1] == "="
                            and inner[k + 2][0] == "string"):
                        names.add(inner[k + 2][1][1:-1])
            i = j
            continue
        if kind == "ident":
            word = text.lower()
            if word in _LABEL_LISTS and following == "(":
                depth, j = 1, i + 2
                while j < len(tokens) and depth:
                    depth += {"open": 1, "close": -1}.get(tokens[j][0], 0)
                    j += 1
                i = j
                continue
            if word not in _KEYWORDS and following != "(":
                names.add(text)
        i += 1
    return names


def unknown_series(exprs: dict[str, str], allowed: frozenset[str]) -> dict[str, list[str]]:
    """``where -> [names not in allowed]`` for every expression that reads one."""
    found = {where: sorted(metric_names(expr) - allowed) for where, expr in exprs.items()}
    return {where: names for where, names in found.items() if names}


def promtool() -> str | None:
    """promtool's path, or None (the tests that need it skip, naming what is missing)."""
    return shutil.which("promtool")


PROMTOOL_MISSING = ("promtool not on PATH: `make deploy-tools` installs it as root with "
                    "apt-get (Debian package `prometheus`); elsewhere install Prometheus' "
                    "promtool by hand")
