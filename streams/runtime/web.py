"""The worker's HTTP pages: ``/metrics`` (Prometheus), ``/ready`` (for readiness probes: 200
when every check in ``health.py`` passes, 503 with the failing ones named) and ``/live``
(for liveness probes: 503 only when a restart would help: the event loop stopped beating
or an agent crashed), ``/dlq`` (the read-only operator page: dead letters, a receipt
trace, breaker and parking; streams/observe/page.py) and ``/debug/memory`` (RSS and, when
tracing, what grew in the Python heap: memprobe.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.breaker import BreakerState
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.observe import page
from tillbridge.streams.observe.trace import trace
from tillbridge.streams.runtime import health, memprobe, metrics
from tillbridge.streams.runtime.health import HEALTH, Check, Health


def ready_doc(pipe: Pipeline, checks: Health = HEALTH) -> tuple[dict[str, Any], int]:
    """The /ready body and status."""
    doc, ok = checks.ready()
    doc.update({"refdata_items": len(pipe.refdata.items),
                "refdata_version": pipe.refdata_version,
                "mappings_version": pipe.mappings.version})
    return doc, 200 if ok else 503


def live_doc(checks: Health = HEALTH) -> tuple[dict[str, Any], int]:
    """The /live body and status."""
    doc, ok = checks.live()
    return doc, 200 if ok else 503


def metrics_body() -> tuple[bytes, str]:
    """The /metrics body and content type (aiohttp wants the charset given apart)."""
    return generate_latest(metrics.REGISTRY), CONTENT_TYPE_LATEST.split("; charset")[0]


#: Seconds the operator page may spend reading Kafka (each of: dead letters, the trace).
PAGE_BUDGET_S = 5.0


async def operator_page(pipe: Pipeline, receipt: str, checks: Health = HEALTH) -> str:
    """The /dlq page: blocking Kafka reads run in an executor, bounded by PAGE_BUDGET_S."""
    s = pipe.settings
    snap = await asyncio.get_running_loop().run_in_executor(
        None, page.snapshot, s.kafka_bootstrap_servers or "", s.schema_registry_url,
        PAGE_BUDGET_S)
    story = None
    if receipt.strip():
        story = await trace(s.kafka_bootstrap_servers or "", receipt.strip()[:200], pipe.client,
                            PAGE_BUDGET_S)
    doc, _ok = checks.ready()
    return page.render(snap, doc["checks"], receipt, story)


def watch(pipe: Pipeline, checks: Health = HEALTH) -> None:
    """Wire the pipeline's own states into the checks: reference data, the sink's breaker."""
    checks.dynamic["refdata"] = lambda: Check(pipe.ready.is_set(),
                                              "" if pipe.ready.is_set() else "not loaded yet")

    def on_breaker(state: BreakerState) -> None:
        checks.set("sink_breaker", state != BreakerState.OPEN,
                   "NetSuite breaker open: the sink holds records (outage)"
                   if state == BreakerState.OPEN else "")

    pipe.on_breaker.append(on_breaker)


def add_routes(app: Any, pipe: Pipeline) -> None:
    """Register the pages on a Faust app, wire the checks, start the probe and heartbeat."""
    watch(pipe)
    HEALTH.agents_crashed = lambda: [name for name, agent in app.agents.items()
                                     if getattr(agent, "_crashed", None) is not None
                                     and agent._crashed.is_set()]

    @app.task
    async def start_probe() -> None:
        # the results topic: one every worker produces to (a producer-type client's
        # metadata request for a missing topic may create it)
        health.Probe(pipe.settings.kafka_bootstrap_servers or "",
                     pipe.settings.schema_registry_url, topic=topics.RESULTS).start()

    @app.timer(interval=health.HEARTBEAT_S)
    async def heartbeat() -> None:
        HEALTH.beat()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        body, content_type = metrics_body()
        return web.bytes(body, content_type=content_type)

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        doc, status = ready_doc(pipe)
        return web.json(doc, status=status)

    @app.page("/live")
    async def live_page(web: Any, request: Any) -> Any:
        doc, status = live_doc()
        return web.json(doc, status=status)

    @app.page("/dlq")
    async def dlq_page(web: Any, request: Any) -> Any:
        return web.html(await operator_page(pipe, request.query.get("receipt", "")))

    @app.page("/debug/memory")
    async def memory_page(web: Any, request: Any) -> Any:
        return web.json(memprobe.report(reset="reset" in request.query, tables=app.tables))
