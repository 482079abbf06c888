"""The Faust app with tillbridge's settings, the channels the agents read, and timers that
never stop the worker.

Why these Faust settings: Tansu makes every group join wait the rebalance timeout (keep it
short); its waiting fetch is not woken by new data (the fetch wait comes from our settings,
see ``transport.py``); outputs are ours (confluent-kafka emitters), so Faust's own producer
only carries table changelogs; and ``stream_wait_empty=False``: a rebalance does not wait
for the sink to finish records it holds during a NetSuite outage (they are not acked, so
their offsets are not committed, and the next owner reads them again).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import faust

from tillbridge.connectors.kafka import topics
from tillbridge.streams.runtime import metrics, transport
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages import route

log = logging.getLogger(__name__)


def make_app(settings: Settings, *, trust_watermarks: bool = True) -> faust.App:
    """``trust_watermarks`` False (Tansu, see ``lag.py``): Faust's recovery check that a
    table's local RocksDB offset is not past the changelog's high watermark is off. Tansu
    reports a watermark below the real end, so the check crashed a worker that already held
    table data at its first rebalance; its local state being ahead is what is expected."""
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
        recovery_consistency_check=trust_watermarks,
    )
    # Read by transport.ConsumerThread; not a Faust setting, so an attribute of our own.
    app.fetch_max_wait_ms = settings.fetch_max_wait_ms  # type: ignore[attr-defined]
    return app


@dataclass(frozen=True)
class Channels:
    inputs: Any  # every input family, raw bytes
    routed: Any  # the sink's input, raw bytes
    posted: Any  # the dedupe table: POS transaction -> NetSuite record


def channels(app: faust.App, settings: Settings, skip: frozenset[str] = frozenset()
             ) -> Channels:
    # One ingest agent over every input family the route stage knows (same partition
    # count), not one agent each: Tansu's group assignment degrades with more agents.
    return Channels(
        inputs=app.topic(*(t for t in route.ROUTES if t not in skip), key_serializer="raw",
                         value_serializer="raw"),
        routed=app.topic(topics.ROUTED_REALTIME, key_serializer="raw",
                         value_serializer="raw"),
        posted=app.Table("posted", default=None, partitions=settings.topic_partitions,
                         help="POS transaction -> NetSuite record, for dedupe.",
                         options=rocksdb_options()))


def rocksdb_options() -> dict[str, int]:
    """RocksDB sizes for the dedupe table, one database per partition. Faust's defaults
    (a 2 GiB block cache, 500 MiB compressed cache, up to 3 x 64 MiB memtables per database)
    let a worker's RSS climb for hours at steady load (`make soak`); the table's reads are
    point lookups of recent keys, so small caches serve it. A new dict each call: Faust pops
    keys off the mapping it is given."""
    return {"write_buffer_size": 4 * 1024 * 1024, "max_write_buffer_number": 2,
            "block_cache_size": 8 * 1024 * 1024,
            "block_cache_compressed_size": 2 * 1024 * 1024}


def owned_partitions(app: faust.App, topic: str = topics.ROUTED_REALTIME) -> set[int]:
    """Partitions of ``topic`` assigned to this worker right now."""
    return {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}


def track_assignment(app: faust.App) -> None:
    """``tillbridge_assigned_partitions{topic}`` after every rebalance (Faust hands the
    whole new assignment to this signal; a topic no longer assigned drops to 0)."""
    seen: set[str] = set()

    def on_assigned(sender: Any, /, *args: Any, signal: Any = None, **_: Any) -> None:
        assigned: Iterable[Any] = args[0] if args else ()
        counts = Counter(tp.topic for tp in assigned)
        seen.update(counts)
        for topic in seen:
            metrics.ASSIGNED.labels(topic).set(counts.get(topic, 0))

    app.on_partitions_assigned.connect(on_assigned)


def every(app: faust.App, interval_s: float, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` every ``interval_s``. An error escaping a Faust timer stops the worker,
    so one never escapes here: it is logged and the timer goes on."""
    name = getattr(body, "__qualname__", repr(body))

    async def tick() -> None:
        try:
            await body()
        except Exception:  # noqa: BLE001 - a timer must never stop the worker
            log.exception("%s failed", name)

    tick.__qualname__ = tick.__name__ = name
    app.timer(interval=interval_s)(tick)
