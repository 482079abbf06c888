"""The worker's HTTP pages: ``/metrics`` (Prometheus) and ``/ready`` (for probes: 200 once
reference data is loaded, 503 before)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import metrics


def ready_doc(pipe: Pipeline) -> tuple[dict[str, Any], int]:
    """The /ready body and status."""
    ok = pipe.ready.is_set()
    return ({"ready": ok, "refdata_items": len(pipe.refdata.items),
             "refdata_version": pipe.refdata_version,
             "mappings_version": pipe.mappings.version}, 200 if ok else 503)


def metrics_body() -> tuple[bytes, str]:
    """The /metrics body and content type (aiohttp wants the charset given apart)."""
    return generate_latest(metrics.REGISTRY), CONTENT_TYPE_LATEST.split("; charset")[0]


def add_routes(app: Any, pipe: Pipeline) -> None:
    """Register both pages on a Faust app."""

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        body, content_type = metrics_body()
        return web.bytes(body, content_type=content_type)

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        doc, status = ready_doc(pipe)
        return web.json(doc, status=status)
