"""The Faust app: thin agents around the pipeline handlers.

Faust acks a record in a ``finally`` when the agent moves on, so an exception escaping an
agent body would silently skip the record. Each agent therefore catches everything per
record and turns it into a dead letter; nothing is acked before its outcome is produced,
and Faust flushes the producer before it commits offsets (at-least-once end to end).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import faust
from faust import streams as faust_streams
from faust.types import EventT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tillbridge.connectors.kafka import topics

from . import metrics, transport
from .pipeline import Outbound, Pipeline, Source, internal_error
from .settings import Settings

log = logging.getLogger(__name__)


def _source(event: EventT) -> Source:
    msg = event.message
    headers = list(msg.headers.items()) if isinstance(msg.headers, dict) else list(
        msg.headers or ())
    return Source(msg.topic, msg.partition, msg.offset, msg.key, msg.value, headers)


def build_app(settings: Settings, pipeline: Pipeline | None = None) -> faust.App:
    """Create the worker app. ``pipeline`` may be injected (tests); else built from settings."""
    transport.register()
    app = faust.App(
        settings.app_id,
        broker=f"tillbridge://{settings.kafka_bootstrap_servers}",
        store="memory://",
        datadir=settings.data_dir,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(1.0, settings.session_timeout_s / 3),
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        topic_partitions=settings.topic_partitions,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.005,
        producer_acks=-1,
        stream_wait_empty=False,
    )
    pipe = pipeline or Pipeline(settings)
    app.tillbridge_pipeline = pipe  # type: ignore[attr-defined]
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    sales = app.topic(topics.SALE.name, **raw)
    routed = app.topic(topics.ROUTED_REALTIME, **raw)
    posted = app.Table("posted", default=None, partitions=settings.topic_partitions,
                       help="POS transaction -> NetSuite record, for dedupe.")
    out_topics: dict[str, Any] = {}

    def topic_for(name: str) -> Any:
        if name not in out_topics:
            out_topics[name] = app.topic(name, **raw)
        return out_topics[name]

    async def emit(out: Outbound) -> None:
        await topic_for(out.topic).send(key=out.key, value=out.value, headers=out.headers)

    @app.task
    async def load_reference_data() -> None:
        await pipe.start()

    @app.agent(sales)
    async def ingest(stream: Any) -> None:
        await pipe.ready.wait()
        async for event in stream.events():
            src = _source(event)
            try:
                out = pipe.ingest(src)
            except Exception as exc:  # noqa: BLE001 - never skip a record silently
                log.exception("ingest failed on %s[%s]@%s", src.topic, src.partition, src.offset)
                out = internal_error(src, "decode", exc)
            await emit(out)

    async def sink_one(event: EventT) -> Outbound:
        # Each gathered task runs in its own context copy; point Faust's current-event
        # context at this record so table writes land in its partition's changelog.
        faust_streams._current_event.set(weakref.ref(event))
        src = _source(event)
        try:
            return await pipe.sink(src, posted)
        except Exception as exc:  # noqa: BLE001 - never skip a record silently
            log.exception("sink failed on %s[%s]@%s", src.topic, src.partition, src.offset)
            return internal_error(pipe.origin(src), "sink", exc)

    async def sink_key_group(group: Sequence[EventT]) -> list[Outbound]:
        # Same key: strictly in order, so a duplicate sees its original's table entry.
        return [await sink_one(event) for event in group]

    @app.agent(routed)
    async def netsuite_sink(stream: Any) -> None:
        await pipe.ready.wait()
        # Batches bound the wait; distinct keys post concurrently (NetSuite latency dominates),
        # one key's events stay in order. The batch is acked only after all its outcomes
        # are produced.
        async for batch in stream.take_events(max(1, settings.netsuite_max_concurrency),
                                               within=0.02):
            groups: dict[bytes | None, list[EventT]] = defaultdict(list)
            for event in batch:
                groups[event.message.key].append(event)
            results = await asyncio.gather(*(sink_key_group(g) for g in groups.values()))
            for outs in results:
                for out in outs:
                    await emit(out)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp wants the charset separately from the content type.
        return web.bytes(generate_latest(metrics.REGISTRY),
                         content_type=CONTENT_TYPE_LATEST.split("; charset")[0])

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        ok = pipe.ready.is_set()
        return web.json({"ready": ok, "refdata_items": len(pipe.refdata.items),
                         "mappings_version": pipe.mappings.version},
                        status=200 if ok else 503)

    return app
