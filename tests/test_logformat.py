"""JSON log lines (``TILLBRIDGE_LOG_FORMAT=json``) and the process metrics on /metrics."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

from tillbridge.devstack.broker import free_port
from tillbridge.streams.runtime import logformat, web
from tillbridge.streams.runtime.settings import Settings


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
