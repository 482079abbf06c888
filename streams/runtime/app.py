"""The Faust app: thin agents around the pipeline handlers.

Faust acks a record in a ``finally`` when the agent moves on, so an exception escaping an
agent body would silently skip the record. Each agent therefore catches everything per
record and turns it into a dead letter. Outputs go through confluent-kafka emitters, and
Faust's pre-commit producer flush is extended to wait for them, so no input offset is
committed before its outcome is acknowledged by the broker (at-least-once end to end).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import faust
from faust import streams as faust_streams
from faust.types import EventT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import ensure_topics
from tillbridge.connectors.netsuite.breaker import BreakerState
from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable
from tillbridge.streams.flows import drain
from tillbridge.streams.flows.park import ParkEntry, ParkingLot, parked_source, released
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata import sync as refdata_sync
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime import control, metrics, transport
from tillbridge.streams.runtime import lag as lag_mod
from tillbridge.streams.runtime.emit import Emitter
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import route
from tillbridge.streams.stages.deadletter import internal_error
from tillbridge.streams.stages.messages import Outbound, Source

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


def _mtime(path: str | None) -> float | None:
    """Modification time of the mappings file (None: packaged file or missing)."""
    if not path:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


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
        store=settings.store,
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
        consumer_group_instance_id=settings.group_instance_id,
    )
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms  # read by transport.ConsumerThread
    pipe = pipeline or Pipeline(settings)
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    # One ingest agent over every input family the route stage knows (same partition
    # count), not one agent each: Tansu's group assignment degrades with more agents.
    inputs = app.topic(*(t for t in route.ROUTES), **raw)
    routed = app.topic(topics.ROUTED_REALTIME, **raw)
    posted = app.Table("posted", default=None, partitions=settings.topic_partitions,
                       help="POS transaction -> NetSuite record, for dedupe.")
    bootstrap = settings.kafka_bootstrap_servers or ""
    enabled = {a.strip() for a in settings.agents.split(",") if a.strip()}

    lot = ParkingLot()  # the parking table (streams/flows/park.py), loaded from its topic
    pipe.parked_lookup = lot.get
    parking_ready = asyncio.Event()
    snapshot: dict[str, Any] = {}  # this worker's reference rows, keyed <kind>:<id>
    refresh_lock = asyncio.Lock()

    async def run_refresh(full: bool) -> bool:
        """Pull from NetSuite into this worker's snapshot; True when it worked."""
        mode = "full" if full else "incremental"
        async with refresh_lock:  # one pull at a time; a second request waits its turn
            # All of it in the try: an error escaping a timer or task stops the worker.
            try:
                assert pipe.client is not None, "NetSuite client not started"
                writes, meta = await refdata_sync.refresh(pipe.client, snapshot, full=full)
                for key, row in writes.items():
                    if row is None:
                        snapshot.pop(key, None)
                    else:
                        snapshot[key] = row
                snapshot[refdata_sync.META] = meta
                ref, _ = refdata_sync.build_index(snapshot.items())
                pipe.use_refdata(ref, int(meta["version"]))
            except Exception as exc:  # noqa: BLE001 - a failed refresh keeps the old data
                metrics.REFDATA_REFRESHES.labels(mode, "error").inc()
                log.warning("reference data refresh (%s) failed: %s", mode, exc)
                return False
            metrics.REFDATA_REFRESHES.labels(meta["mode"], "ok").inc()
            log.info("reference data v%s (%s): %s rows changed, %s deleted", meta["version"],
                     meta["mode"], meta["written"], meta["deleted"])
            return True

    @app.task
    async def load_reference_data() -> None:
        """Connect, then load the first snapshot; retried until it works (the worker is
        not ready, and handles no record, before that)."""
        await pipe.start()
        loop = asyncio.get_running_loop()
        commanded: set[asyncio.Task[bool]] = set()  # the loop holds tasks only weakly

        def start_refresh(full: bool) -> None:
            task = loop.create_task(run_refresh(full))
            commanded.add(task)
            task.add_done_callback(commanded.discard)

        def on_command(doc: dict[str, Any]) -> None:
            if doc.get("command") == control.REFRESH_REFDATA:
                loop.call_soon_threadsafe(start_refresh, bool(doc.get("full")))
            else:
                log.warning("ignoring unknown control command %r", doc.get("command"))

        control.ControlFollower(bootstrap, topics.CONTROL, on_command).start()
        ensure_topics(bootstrap, [topics.PARKED, topics.AUDIT_PAYMENTS],
                      partitions=settings.topic_partitions, configs=topics.TOPIC_CONFIGS)
        follower = control.TopicFollower(bootstrap, topics.PARKED,
                                         lambda k, v, _ts: lot.apply_record(k, v),
                                         name="parked-follower")
        follower.start()
        follower.mark()
        # The sink starts only once the parking table is loaded: a replayed event that
        # parks again must find its first entry (and keep its deadline).
        if not await loop.run_in_executor(None, follower.caught_up.wait, 60.0):
            log.error("parking table not loaded after 60 s; the sink starts without it")
        metrics.PARKED.set(len(lot))
        parking_ready.set()
        delay = 1.0
        while not await run_refresh(full=True):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    @app.timer(interval=settings.refdata_refresh_s)
    async def scheduled_refresh() -> None:
        if pipe.ready.is_set():
            await run_refresh(full=False)

    mappings_watch = {"mtime": _mtime(settings.mappings_path)}

    @app.timer(interval=settings.mappings_reload_s)
    async def reload_mappings() -> None:
        mtime = _mtime(settings.mappings_path)
        if mtime is None or mtime == mappings_watch["mtime"]:
            return
        mappings_watch["mtime"] = mtime
        try:
            new = Mappings.load(settings.mappings_path)
        except Exception as exc:  # noqa: BLE001 - any bad file keeps the old mappings
            metrics.MAPPINGS_RELOAD_ERRORS.inc()
            log.error("mappings not reloaded, keeping v%s: %s", pipe.mappings.version, exc)
            return
        pipe.use_mappings(new)
        log.warning("mappings reloaded: v%s from %s", new.version, new.source)

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

    async def sink_src(src: Source) -> list[Outbound]:
        """One record's outcome. NetSuite down or saturated (``NetSuiteUnavailable``): the
        record is held and tried again after the breaker's cool-down, never dead-lettered;
        its offset is not committed meanwhile (the batch is not acked), so a worker killed
        during an outage loses nothing."""
        while True:
            try:
                return await pipe.sink_all(src, posted)
            except NetSuiteUnavailable as err:
                await pipe.wait_for_netsuite(err)
            except Exception as exc:  # noqa: BLE001 - never skip a record silently
                log.exception("sink failed on %s[%s]@%s", src.topic, src.partition,
                              src.offset)
                return [internal_error(pipe.origin(src), "sink", exc)]

    async def drain_held(items: list[tuple[EventT, Source]],
                         writer: drain.BatchWriter) -> list[list[Outbound]]:
        """The drain, held (not dead-lettered) while NetSuite is unavailable: everything in
        it is idempotent, so the whole drain is simply tried again."""
        srcs = [src for _, src in items]

        def at(i: int) -> None:
            faust_streams._current_event.set(weakref.ref(items[i][0]))

        while True:
            try:
                return await drain.drain_batch(pipe, writer, srcs, posted, at)
            except NetSuiteUnavailable as err:
                await pipe.wait_for_netsuite(err)
            except Exception:  # noqa: BLE001 - fall back to one record at a time
                log.exception("drain of %d sales failed; posting them one by one", len(srcs))
                return await sink_by_key(items)

    async def sink_one(event: EventT, src: Source) -> list[Outbound]:
        # Each gathered task runs in its own context copy; point Faust's current-event
        # context at this record so table writes land in its partition's changelog.
        faust_streams._current_event.set(weakref.ref(event))
        return await sink_src(src)

    async def sink_key_group(group: Sequence[tuple[EventT, Source]]) -> list[Outbound]:
        # Same key: strictly in order, so a duplicate sees its original's table entry.
        return [out for event, src in group for out in await sink_one(event, src)]

    async def sink_by_key(items: list[tuple[EventT, Source]]) -> list[list[Outbound]]:
        """Distinct keys concurrently (NetSuite latency dominates), one key's records in
        order."""
        groups: dict[bytes | None, list[tuple[EventT, Source]]] = defaultdict(list)
        for item in items:
            groups[item[1].key].append(item)
        return list(await asyncio.gather(*(sink_key_group(g) for g in groups.values())))

    def owned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment()
                if tp.topic == topics.ROUTED_REALTIME}

    def emit_out(emitter: Emitter, out: Outbound) -> None:
        emitter.emit(out.topic, out.key, out.value, out.headers)
        if out.topic == topics.PARKED and out.key is not None:
            lot.apply(out.key.decode(), out.parked)
            metrics.PARKED.set(len(lot))

    async def release(emitter: Emitter, entries: list[ParkEntry]) -> None:
        """Run claimed parked events through the sink again (``released``: off the table
        unless parked again). Cancelled midway, the rest are unclaimed, not left busy."""
        done = 0
        try:
            for entry in entries:
                outs = await sink_src(parked_source(entry))
                done += 1
                lot.unclaim(entry.id)
                for out in released(entry, outs):
                    emit_out(emitter, out)
        finally:
            for entry in entries[done:]:
                lot.unclaim(entry.id)

    async def sweep_parked(emitter: Emitter) -> None:
        """Expire overdue entries (orphan_dependency), release those whose dependency is in
        NetSuite by now (written by another worker, or before this worker loaded the
        table)."""
        now = time.time()
        entries = lot.claim_due(owned())
        due: list[ParkEntry] = []
        for entry in entries:
            if now >= entry.deadline:
                for out in pipe.expire(entry, now):
                    emit_out(emitter, out)
                continue
            try:
                found = await pipe.dependency_exists(entry)
            except Exception as exc:  # noqa: BLE001 - unclaimed below, checked next sweep
                log.info("parked %s: dependency check failed: %s", entry.id, exc)
                found = False
            if found:
                due.append(entry)
            else:
                lot.unclaim(entry.id)
        await release(emitter, due)
        metrics.PARKED.set(len(lot))

    park_emitter: dict[str, Emitter] = {}  # the sink's, once it runs

    @app.timer(interval=settings.park_recheck_s)
    async def parked_timer() -> None:
        if not pipe.ready.is_set() or not len(lot) or park_emitter.get("e") is None:
            return
        try:
            await sweep_parked(park_emitter["e"])
        except Exception:  # noqa: BLE001 - a timer must never stop the worker
            log.exception("parking sweep failed")

    async def netsuite_sink(stream: Any) -> None:
        await pipe.ready.wait()
        await parking_ready.wait()
        emitter = Emitter(bootstrap)
        emitters.append(emitter)
        park_emitter.setdefault("e", emitter)
        # Batches bound the wait; distinct keys post concurrently (NetSuite latency dominates),
        # one key's events stay in order. The batch is acked only after all its outcomes
        # are produced.
        # The HTTP pool caps in-flight requests at the concurrency share; a batch several
        # times larger keeps every slot busy instead of waiting on the slowest of a few.
        batch_size = SINK_BATCH_PER_SLOT * max(1, settings.netsuite_max_concurrency)
        draining = settings.drain_threshold > 0 and settings.netsuite_write_mode == "create"
        if draining:
            batch_size = max(batch_size, settings.drain_batch)
        writer = drain.batch_writer(pipe)
        async for batch in stream.take_events(batch_size, within=SINK_WITHIN_S):
            results: list[list[Outbound]] = []
            items = [(e, _source(e)) for e in batch]
            if draining:
                sales: list[tuple[EventT, Source]] = []
                rest: list[tuple[EventT, Source]] = []
                for item in items:
                    (sales if pipe.drainable(item[1]) else rest).append(item)
                if len(sales) >= settings.drain_threshold:
                    # Behind: the batch's sales go as async batch jobs, then the rest
                    # (returns, payments wait on sales, never the other way round) as usual.
                    results += await drain_held(sales, writer)
                    metrics.DRAINS.inc()
                    items = rest
            results += await sink_by_key(items)
            written: list[str] = []
            for outs in results:
                for out in outs:
                    emit_out(emitter, out)
                    written.extend(out.written)
            if written and len(lot):
                # Parked events waiting on what this batch wrote go right away (their
                # dependency shares this routed partition, by the routing key).
                await release(emitter, [e for x in written
                                        for e in lot.claim_waiting_on(x, owned())])

    def on_breaker(state: BreakerState) -> None:
        """Open: the sink's partitions are paused — by holding, not by
        ``consumer.pause_partitions``. Every record in hand waits for the probe and the
        agent takes no new batch, so its stream buffer fills and Faust stops fetching
        those partitions (its own flow control); nothing is acked or committed meanwhile.
        Faust's ``pause_partitions``/``resume_partitions`` were tried first and lost
        records: after a resume, 13 to 27 of 400 held sales never reached the agent
        (3 runs of 3 on Tansu), so they are not used. Closed: held records go on."""
        if state is BreakerState.OPEN:
            held = len(owned())
            metrics.PAUSED_PARTITIONS.set(held)
            log.warning("NetSuite unavailable: %d sink partitions held", held)
        elif state is BreakerState.CLOSED:
            metrics.PAUSED_PARTITIONS.set(0)
            log.warning("NetSuite back: sink partitions resumed")

    pipe.on_breaker.append(on_breaker)

    if "ingest" in enabled:
        app.agent(inputs, name="ingest")(ingest)
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
                         "refdata_version": pipe.refdata_version,
                         "mappings_version": pipe.mappings.version},
                        status=200 if ok else 503)

    return app
