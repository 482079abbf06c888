"""JSON log lines (``TILLBRIDGE_LOG_FORMAT=json``), the record ids the guard's, the dead
letters' and the sink's lines carry, and the process metrics on /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.factories import make_sale
from tillbridge.devstack.broker import free_port
from tillbridge.streams.flows import sink as flow_sink
from tillbridge.streams.flows.sale import SaleFlow
from tillbridge.streams.ledger.types import Missing, Refused
from tillbridge.streams.runtime import guard, logformat, metrics, web
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import deadletter
from tillbridge.streams.stages.messages import Outbound, Source, log_ids
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection

SRC = Source("pos.sale.v1", 3, 17, b"S001-R01-000042", b"\x00raw", [])


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("tillbridge.test", logging.ERROR, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_a_line_is_one_object_with_the_record_ids() -> None:
    line = logformat.JsonFormatter().format(
        _record("sink failed on %s", "pos.sale.v1[2]@7", topic="pos.sale.v1", partition=2,
                offset=7, stage="sink", unrelated="left out"))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "error" and doc["logger"] == "tillbridge.test"
    assert doc["message"] == "sink failed on pos.sale.v1[2]@7"
    assert (doc["topic"], doc["partition"], doc["offset"], doc["stage"]) == \
        ("pos.sale.v1", 2, 7, "sink")
    assert "unrelated" not in doc and doc["time"].endswith("Z")


def test_an_exception_travels_as_one_field_and_text_stays_unicode() -> None:
    try:
        raise ValueError("prix négatif: −3,00 €")
    except ValueError:
        rec = _record("refused %s", "Kasse 3")
        rec.exc_info = sys.exc_info()
    line = logformat.JsonFormatter().format(rec)
    assert line.count("\n") == 0, "the traceback's newlines are escaped inside the string"
    doc = json.loads(line)
    assert "ValueError: prix négatif: −3,00 €" in doc["exc"]
    assert "€" in line, "non-ASCII kept as is, not \\u-escaped"


def test_log_format_setting() -> None:
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"TILLBRIDGE_LOG_FORMAT": "JSON"}).log_format == "json"


def test_install_puts_the_formatter_on_root_handlers_only_for_json() -> None:
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logformat.install("text")
        assert not isinstance(handler.formatter, logformat.JsonFormatter)
        logformat.install("json")
        assert isinstance(handler.formatter, logformat.JsonFormatter)
    finally:
        root.removeHandler(handler)


def test_the_worker_logs_json_lines_from_its_first_line_on(tmp_path) -> None:
    """The real worker entry with an unreachable broker (port 1): every stderr line it
    writes before it is stopped parses as JSON, Faust's and librdkafka's included."""
    env = {**os.environ, "TILLBRIDGE_LOG_FORMAT": "json", "TILLBRIDGE_LOG_LEVEL": "info",
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TILLBRIDGE_DATA_DIR": str(tmp_path),
           "TILLBRIDGE_WEB_PORT": str(free_port()), "TILLBRIDGE_LAG_FROM_WATERMARKS": "off",
           # nothing listens on these: the worker logs its attempts, which is the point
           "SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{free_port()}",
           "NETSUITE_BASE_URL": f"http://127.0.0.1:{free_port()}",
           **{f"NETSUITE_{name}": "x" for name in ("ACCOUNT_ID", "CONSUMER_KEY",
                                                    "CONSUMER_SECRET", "TOKEN_ID",
                                                    "TOKEN_SECRET")}}
    proc = subprocess.Popen([sys.executable, "-m", "tillbridge.streams.ops.cli", "worker"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        out, _ = proc.communicate(timeout=8)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) >= 3, out
    docs = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    assert all({"time", "level", "logger", "message"} <= set(d) for d in docs)
    assert any(d["logger"].startswith("librdkafka") for d in docs), \
        "librdkafka's connection errors come through logging, as JSON"


def test_metrics_expose_process_cpu_memory_and_open_files() -> None:
    body = web.metrics_body()[0].decode()
    for series in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                   "process_open_fds", "process_max_fds"):
        assert f"\n{series} " in body, series


def test_observe_all_exposes_what_observe_one_by_one_does() -> None:
    """The window results' bulk observation against the client's own ``observe``: the
    same buckets (bounds included: 0.25 falls in le=0.25), count and sum."""
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    amounts = [0.0, 0.05, 0.051, 0.25, 3.0, 29.9, 1e6, 0.25]
    texts = []
    for bulk in (False, True):
        reg = CollectorRegistry()
        h = Histogram("x_seconds", "x", buckets=(.05, .1, .25, .5, 1, 30), registry=reg)
        if bulk:
            metrics.observe_all(h, amounts)
        else:
            for a in amounts:
                h.observe(a)
        texts.append("\n".join(line for line in generate_latest(reg).decode().splitlines()
                               if "_created" not in line))
    assert texts[0] == texts[1] and 'x_seconds_bucket{le="0.25"} 5.0' in texts[0]


# -- the ids each line carries --------------------------------------------------------------

@contextlib.contextmanager
def _json_lines(name: str, level: int = logging.INFO) -> Iterator[list[str]]:
    """Lines logger ``name`` writes through a JsonFormatter handler at ``level``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logformat.JsonFormatter())
    logger = logging.getLogger(name)
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    lines: list[str] = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        lines.extend(stream.getvalue().splitlines())


def test_log_ids_key_as_text_cut_and_only_known_event_ids() -> None:
    ids = log_ids(SRC, {"pos_transaction_id": "P-1", "amount": "9.99", "order_id": None},
                  stage="sink")
    assert ids == {"topic": "pos.sale.v1", "partition": 3, "offset": 17,
                   "key": "S001-R01-000042", "pos_transaction_id": "P-1", "stage": "sink"}
    garbage = Source("pos.sale.v1", 0, 1, b"\xff" * 10_000, None, [])
    assert log_ids(garbage)["key"] == "\ufffd" * 128, "undecodable and long: replaced, cut"
    assert "key" not in log_ids(Source("t", 0, 1, None, None, []))


def test_the_guard_failure_line_carries_the_record_ids_and_the_traceback() -> None:
    sent: list[Outbound] = []

    async def send(out: Outbound) -> None:
        sent.append(out)

    g = guard.Guard([guard.LogReporter(logging.getLogger("test.guard.log")),
                     guard.DeadLetterReporter(send)])
    try:
        raise KeyError("lines")
    except KeyError as exc:
        failing = exc
    with _json_lines("test.guard.log", logging.ERROR) as lines:
        assert asyncio.run(g.failed("validate", SRC, failing)) is guard.Failed.DEAD_LETTERED
    [doc] = [json.loads(line) for line in lines]
    assert (doc["topic"], doc["partition"], doc["offset"], doc["key"]) == \
        ("pos.sale.v1", 3, 17, "S001-R01-000042")
    assert (doc["stage"], doc["reason"], doc["level"]) == ("validate", "internal_error", "error")
    assert doc["exc"].startswith("Traceback") and "KeyError: 'lines'" in doc["exc"]
    assert len(sent) == 1


def test_dead_letter_retries_and_the_hold_name_the_record() -> None:
    """A DLQ that refuses twice with two attempts allowed: one retry line (attempt 1), then
    the record is held (critical line): both carry the record's ids."""

    async def refuse(_out: Outbound) -> None:
        raise RuntimeError("DLQ topic gone")

    g = guard.Guard([guard.DeadLetterReporter(refuse, attempts=2, backoff_s=0.0)])
    with _json_lines(guard.__name__, logging.WARNING) as lines:
        assert asyncio.run(g.failed("sink", SRC, ValueError("x"))) is guard.Failed.HELD
    docs = [json.loads(line) for line in lines]
    retry = next(d for d in docs if "not produced" in d["message"])
    assert (retry["attempt"], retry["key"], retry["offset"]) == (1, "S001-R01-000042", 17)
    held = next(d for d in docs if "has no outcome" in d["message"])
    assert (held["level"], held["stage"], held["offset"]) == ("critical", "sink", 17)


def _rejection() -> Rejection:
    return Rejection(Stage.SINK, ReasonCode.NETSUITE_REJECTED, "netsuite.cashSale",
                     "NetSuite 400 INVALID_CONTENT: item inactive", {})


def test_a_dead_letter_is_one_info_line_with_its_ids() -> None:
    with _json_lines(deadletter.__name__) as lines:
        deadletter.dead_letter(SRC, _rejection(), event_ids={"pos_transaction_id": "P-9"})
    [doc] = [json.loads(line) for line in lines]
    assert doc["level"] == "info" and "dead-lettered: netsuite_rejected" in doc["message"]
    assert (doc["reason"], doc["stage"], doc["rule"]) == \
        ("netsuite_rejected", "sink", "netsuite.cashSale")
    assert (doc["key"], doc["pos_transaction_id"], doc["offset"]) == \
        ("S001-R01-000042", "P-9", 17)


def test_below_info_a_dead_letter_builds_no_log_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-record path stays lean at the default level: the ids are never built."""
    def boom(*_a: object, **_k: object) -> dict[str, object]:
        raise AssertionError("log ids built for a line nobody logs")

    monkeypatch.setattr(deadletter, "log_ids", boom)
    with _json_lines(deadletter.__name__, logging.WARNING) as lines:
        deadletter.dead_letter(SRC, _rejection())
    assert lines == []
    with pytest.raises(AssertionError), _json_lines(deadletter.__name__):
        deadletter.dead_letter(SRC, _rejection())


def test_the_sink_names_the_pos_transaction_it_refuses_or_parks() -> None:
    flow, sale = SaleFlow(), make_sale(pos_transaction_id="S009-R02-000777")
    with _json_lines("tillbridge.streams") as lines:
        flow_sink.messages(flow, sale, SRC, SRC, Refused(_rejection(), None),
                           parked_lookup=lambda _id: None, park_timeout_s=60.0)
        flow_sink.messages(flow, sale, SRC, SRC, Missing("CS-S001-R01-000001", ("cashSale",)),
                           parked_lookup=lambda _id: None, park_timeout_s=60.0)
    refused, parked = [json.loads(line) for line in lines]
    assert (refused["pos_transaction_id"], refused["reason"]) == \
        ("S009-R02-000777", "netsuite_rejected")
    assert parked["logger"] == flow_sink.__name__
    assert (parked["pos_transaction_id"], parked["event_id"], parked["dependency"]) == \
        ("S009-R02-000777", "pos.sale.v1/3/17", "CS-S001-R01-000001")
