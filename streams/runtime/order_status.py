"""The order-status poller: changes NetSuite made to orders from the POS or a storefront go
out on the order-status topic (JSON, keyed by order id), each once.

Each poll reads the transactions modified since the cursor (``flows/availability.py``),
turns them into status changes (``streams/availability/orders.py``), publishes the ones the
cursor has not seen, then the cursor itself (compacted topic, one key). The cursor is read
back at start, so a restarted worker, which on Tansu reads its inputs again, publishes
nothing twice. At least once in one case only: a crash after a poll's changes are delivered
and before its cursor is.

One worker runs this role (two pollers would each publish every change).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.streams.availability.orders import Cursor, changes
from tillbridge.streams.flows.availability import next_cursor, read_order_changes
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.sync import CURSOR_OVERLAP, STAMP
from tillbridge.streams.runtime import control, metrics
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.stages.messages import Outbound

log = logging.getLogger(__name__)

CURSOR_KEY = b"order-status"
LOAD_TIMEOUT_S = 60.0


class OrderStatusPoller:
    def __init__(self, pipe: Pipeline, emitter: EmitterLike, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.pipe, self.emitter, self._clock = pipe, emitter, clock
        self.cursor = Cursor()
        self.loaded = asyncio.Event()
        self.published = 0
        self._lock = asyncio.Lock()

    async def load(self, bootstrap: str, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """The cursor as last written (the topic read to its end)."""
        last: dict[str, bytes | None] = {}

        def keep(key: bytes | None, value: bytes | None, _ts: int) -> None:
            if key == CURSOR_KEY:
                last["doc"] = value

        await control.read_to_end(bootstrap, topics.ORDER_STATUS_CURSOR, keep,
                                  name="order-status-cursor", timeout_s=timeout_s)
        raw = last.get("doc")
        self.cursor = Cursor.from_doc(json.loads(raw) if raw else None)
        log.info("order-status cursor: since %s, %d changes remembered", self.cursor.since,
                 len(self.cursor.seen))
        self.loaded.set()

    async def poll(self) -> None:
        """Timer body: one read of NetSuite's changes; never raises."""
        if not self.loaded.is_set() or not self.pipe.ready.is_set() or self.pipe.client is None:
            return
        async with self._lock:
            started = self._clock()
            since = self.cursor.since or (started - CURSOR_OVERLAP).strftime(STAMP)
            try:
                rows, orders = await read_order_changes(self.pipe.client, since)
            except Exception as exc:  # noqa: BLE001 - the next poll tries again
                metrics.ORDER_STATUS_POLLS.labels("error").inc()
                log.warning("order-status poll failed: %s", exc)
                return
            fresh = self.cursor.fresh(changes(rows, orders))
            for change in fresh:
                await self.emitter.send(Outbound(
                    topics.ORDER_STATUS, change.order_id.encode(),
                    json.dumps(change.doc(), sort_keys=True).encode()))
                metrics.ORDER_STATUS_CHANGES.labels(
                    change.status, "tillbridge" if change.by_tillbridge else "netsuite").inc()
            await self.emitter.flush()  # the changes first: the cursor only names delivered ones
            self.cursor.advance(fresh, next_cursor((r.modified for r in rows), since))
            await self.emitter.send(Outbound(topics.ORDER_STATUS_CURSOR, CURSOR_KEY,
                                             json.dumps(self.cursor.to_doc()).encode()))
            await self.emitter.flush()
            self.published += len(fresh)
            metrics.ORDER_STATUS_POLLS.labels("ok").inc()


def install(app: Any, settings: Any, pipe: Pipeline, out: EmitterLike) -> OrderStatusPoller:
    """The poller: its cursor read at start, then a poll every ``netsuite_poll_s``."""
    from tillbridge.connectors.kafka.admin import ensure_topics
    from tillbridge.streams.runtime import faust_app

    poller = OrderStatusPoller(pipe, out)
    app.order_status_poller = poller  # tests and the demo read it
    bootstrap = settings.kafka_bootstrap_servers or ""

    @app.task
    async def start_order_status() -> None:
        ensure_topics(bootstrap, [topics.ORDER_STATUS, topics.ORDER_STATUS_CURSOR],
                      partitions=settings.topic_partitions, configs=topics.TOPIC_CONFIGS)
        await poller.load(bootstrap)
        await pipe.ready.wait()
        await poller.poll()

    faust_app.every(app, settings.netsuite_poll_s, poller.poll)
    return poller
