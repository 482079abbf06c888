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

from . import lag as lag_mod
from . import metrics, transport
from .emit import Emitter
from .pipeline import Outbound, Pipeline, Source, internal_error
from .settings import Settings

log = logging.getLogger(__name__)

#: Ingest batch: large enough to amortise the per-batch delivery wait, and `within` caps
#: the latency a partly filled batch adds.
INGEST_BATCH = 1000
INGEST_WITHIN_S = 0.01
SINK_BATCH_PER_SLOT = 8
LAG_INTERVAL_S = 10.0
SINK_WITHIN_S = 0.01


def _source(event: EventT) -> Source:
    msg = event.message
    headers = list(msg.headers.items()) if isinstance(msg.headers, dict) else list(
        msg.headers or ())
    return Source(msg.topic, msg.partition, msg.offset, msg.key, msg.value, headers)


def _flush_emitters_before_commit(app: faust.App, emitters: list[Emitter]) -> None:
    """Make Faust's commit wait for our producers too.

    Faust's consumer awaits ``app.producer.flush()`` right before it commits offsets (so a
    committed offset never points past an unsent output). Our outputs go through
    confluent-kafka emitters, so the same flush must include them: then an input offset is
    committed only after everything produced for it is acknowledged by the broker.
    """
    producer = app.producer
    faust_flush = producer.flush

    async def flush() -> None:
        await faust_flush()
        for emitter in emitters:
            await emitter.flush()

    producer.flush = flush  # type: ignore[method-assign]


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
    bootstrap = settings.kafka_bootstrap_servers or ""
    enabled = {a.strip() for a in settings.agents.split(",") if a.strip()}

    @app.task
    async def load_reference_data() -> None:
        await pipe.start()

    reliable = lag_mod.watermarks_reliable(bootstrap, settings.lag_from_watermarks)
    metrics.LAG_RELIABLE.set(1 if reliable else 0)

    @app.timer(interval=LAG_INTERVAL_S)
    async def export_lag() -> None:
        if not reliable:
            return
        try:
            for tp in app.consumer.assignment():
                value = lag_mod.lag(app.consumer.highwater(tp), await app.consumer.position(tp))
                if value is not None:
                    metrics.LAG.labels(tp.topic, str(tp.partition)).set(value)
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the worker
            log.debug("lag export skipped: %s", exc)

    emitters: list[Emitter] = []
    _flush_emitters_before_commit(app, emitters)

    async def ingest(stream: Any) -> None:
        await pipe.ready.wait()
        emitter = Emitter(bootstrap)
        emitters.append(emitter)
        # Batches amortise the delivery wait; `within` bounds the latency it adds.
        async for batch in stream.take_events(INGEST_BATCH, within=INGEST_WITHIN_S):
            for event in batch:
                src = _source(event)
                try:
                    out = pipe.ingest(src)
                except Exception as exc:  # noqa: BLE001 - never skip a record silently
                    log.exception("ingest failed on %s[%s]@%s", src.topic, src.partition,
                                  src.offset)
                    out = internal_error(src, "decode", exc)
                emitter.emit(out.topic, out.key, out.value, out.headers)

    async def sink_one(event: EventT) -> list[Outbound]:
        # Each gathered task runs in its own context copy; point Faust's current-event
        # context at this record so table writes land in its partition's changelog.
        faust_streams._current_event.set(weakref.ref(event))
        src = _source(event)
        try:
            return await pipe.sink_all(src, posted)
        except Exception as exc:  # noqa: BLE001 - never skip a record silently
            log.exception("sink failed on %s[%s]@%s", src.topic, src.partition, src.offset)
            return [internal_error(pipe.origin(src), "sink", exc)]

    async def sink_key_group(group: Sequence[EventT]) -> list[Outbound]:
        # Same key: strictly in order, so a duplicate sees its original's table entry.
        return [out for event in group for out in await sink_one(event)]

    async def netsuite_sink(stream: Any) -> None:
        await pipe.ready.wait()
        emitter = Emitter(bootstrap)
        emitters.append(emitter)
        # Batches bound the wait; distinct keys post concurrently (NetSuite latency dominates),
        # one key's events stay in order. The batch is acked only after all its outcomes
        # are produced.
        # The HTTP pool caps in-flight requests at the concurrency share; a batch several
        # times larger keeps every slot busy instead of waiting on the slowest of a few.
        batch_size = SINK_BATCH_PER_SLOT * max(1, settings.netsuite_max_concurrency)
        async for batch in stream.take_events(batch_size, within=SINK_WITHIN_S):
            groups: dict[bytes | None, list[EventT]] = defaultdict(list)
            for event in batch:
                groups[event.message.key].append(event)
            results = await asyncio.gather(*(sink_key_group(g) for g in groups.values()))
            for outs in results:
                for out in outs:
                    emitter.emit(out.topic, out.key, out.value, out.headers)

    if "ingest" in enabled:
        app.agent(sales, name="ingest")(ingest)
    if "sink" in enabled:
        app.agent(routed, name="netsuite_sink")(netsuite_sink)

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
