"""Each readiness/liveness check on its own, the pages' verdicts, and the repeat filter on
log lines. No broker: clocks and states are driven by hand."""

from __future__ import annotations

import asyncio
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

from tillbridge.connectors.netsuite.breaker import BreakerState
from tillbridge.streams.runtime import health, metrics, web
from tillbridge.streams.runtime.health import Health, Probe
from tillbridge.streams.runtime.logfilter import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _pipe() -> Any:
    return SimpleNamespace(ready=asyncio.Event(), on_breaker=[],
                           refdata=SimpleNamespace(items={}), refdata_version=0,
                           mappings=SimpleNamespace(version=1))


def _failing(doc: dict[str, Any]) -> set[str]:
    return {n for n, c in doc["checks"].items() if not c["ok"]}


def test_broker_gone_longer_than_the_grace_is_not_ready_and_back_when_seen() -> None:
    clock = Clock()
    h = Health(clock)
    h.broker_down("all brokers down")
    assert h.ready()[1], "a blip within the grace"
    clock.t += health.BROKER_GRACE_S + 1
    doc, ok = h.ready()
    assert not ok and _failing(doc) == {"broker"}
    assert "all brokers down" in doc["checks"]["broker"]["detail"]
    assert metrics.READY._value.get() == 0
    h.broker_up()
    assert h.ready()[1] and metrics.READY._value.get() == 1


def test_refdata_and_breaker_checks_follow_the_pipeline() -> None:
    h, pipe = Health(Clock()), _pipe()
    web.watch(pipe, h)
    doc, status = web.ready_doc(pipe, h)
    assert status == 503 and _failing(doc) == {"refdata"}
    pipe.ready.set()
    assert web.ready_doc(pipe, h)[1] == 200
    for hook in pipe.on_breaker:
        hook(BreakerState.OPEN)
    doc, status = web.ready_doc(pipe, h)
    assert status == 503 and _failing(doc) == {"sink_breaker"}
    assert "breaker open" in doc["checks"]["sink_breaker"]["detail"]
    for hook in pipe.on_breaker:
        hook(BreakerState.HALF_OPEN)
    assert web.ready_doc(pipe, h)[1] == 200


def test_a_netsuite_401_is_not_ready_until_a_request_succeeds() -> None:
    health.ns_request_hook("cashsale", "POST", 401, 0.1)
    doc, ok = health.HEALTH.ready()
    assert not doc["checks"]["netsuite_auth"]["ok"]
    health.ns_request_hook("cashsale", "POST", 400, 0.1)
    assert not health.HEALTH.checks["netsuite_auth"].ok, "a 400 proves nothing"
    health.ns_request_hook("cashsale", "POST", 204, 0.1)
    assert health.HEALTH.checks["netsuite_auth"].ok


def test_probe_marks_broker_and_registry_down_and_up() -> None:
    clock = Clock()
    h = Health(clock)

    class Admin:
        fail = True

        asked: list[str | None] = []

        def list_topics(self, topic: str | None = None, timeout: float = 0) -> object:
            self.asked.append(topic)
            if self.fail:
                raise RuntimeError("transport failure")
            return object()

    admin = Admin()
    probe = Probe("x", "http://127.0.0.1:1", health=h, interval_s=0.2, admin=admin,
                  topic="tillbridge.results")
    probe.once()
    clock.t += health.BROKER_GRACE_S + 1
    doc, ok = h.ready()
    assert not ok and _failing(doc) == {"broker", "schema_registry"}
    admin.fail = False
    probe.once()
    assert "broker" not in _failing(h.ready()[0])
    assert admin.asked == ["tillbridge.results"] * 2, "one topic's metadata, not the cluster's"


def test_probe_keeps_one_registry_connection_across_rounds() -> None:
    """A registry stand-in (a local HTTP server counting connections): three rounds reuse
    one kept-alive connection, so no client or SSL context is built per round."""
    connections: list[int] = []

    class Registry(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            connections.append(1)
            super().setup()

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *_args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    class Admin:
        def list_topics(self, topic: str | None = None, timeout: float = 0) -> object:
            return object()

    h = Health(Clock())
    probe = Probe("x", f"http://127.0.0.1:{server.server_port}", health=h, admin=Admin())
    try:
        for _ in range(3):
            probe.once()
        assert h.checks["schema_registry"].ok
        assert len(connections) == 1
    finally:
        server.shutdown()


def test_live_fails_on_a_stale_heartbeat_or_a_crashed_agent_not_on_readiness() -> None:
    clock = Clock()
    h = Health(clock)
    h.broker_down("gone")
    clock.t += 100
    h.beat()
    assert h.live()[1] and not h.ready()[1], "a broker outage is no reason to restart"
    clock.t += health.LIVE_MAX_AGE_S + 1
    doc, status = web.live_doc(h)
    assert status == 503 and doc["heartbeat_age_s"] > health.LIVE_MAX_AGE_S
    h.beat()
    h.agents_crashed = lambda: ["ingest"]
    doc, status = web.live_doc(h)
    assert status == 503 and doc["crashed_agents"] == ["ingest"]


def _record(msg: str, *args: object, name: str = "aiokafka") -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_repeat_filter_lets_one_line_per_window_through_with_the_count() -> None:
    clock = Clock()
    flt = RepeatFilter(10.0, clock=clock)
    passed = [flt.filter(_record("connect to %s failed", f"host:{i}")) for i in range(125)]
    assert passed.count(True) == 1, "same template, other argument: one line"
    assert flt.filter(_record("another line")), "another template passes"
    assert flt.filter(_record("connect to %s failed", "h", name="other")), "another logger"
    clock.t += 10.5
    rec = _record("connect to %s failed", "host:1")
    assert flt.filter(rec) and rec.getMessage() == "connect to host:1 failed (repeated 124 times)"
    rec = _record("connect to %s failed", "host:1")
    assert not flt.filter(rec)


def test_repeat_filter_leaves_info_lines_alone() -> None:
    """httpx logs every request under one template: each is a different fact."""
    flt = RepeatFilter(10.0, clock=Clock())
    infos = [logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s",
                               ("POST", f"/token/{i}"), None) for i in range(3)]
    assert all(flt.filter(r) for r in infos)


def test_repeat_filter_on_a_handler_bounds_a_flood(caplog: Any) -> None:
    clock = Clock()
    flt = RepeatFilter(1.0, clock=clock)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Collect()
    handler.addFilter(flt)
    logger = logging.getLogger("librdkafka.test")
    logger.addHandler(handler)
    try:
        for _second in range(5):
            for _ in range(125):
                logger.error("FAIL|rdkafka#producer-1| Connect to ipv4#127.0.0.1:9092 failed")
            clock.t += 1.0
    finally:
        logger.removeHandler(handler)
    assert len(lines) == 5, lines
    assert lines[1].endswith("(repeated 124 times)")
