"""The availability agent: POS sales, returns and movements move each item's availability at
its location the moment they are read; a NetSuite poll resets it to NetSuite's figures.

The agent body and the poll timer are thin: decoding and NetSuite ids here, the rules in
``streams/availability`` (pure), the SuiteQL in ``streams/flows/availability.py``. Every
state change is published at once on the compacted availability topic (Avro, keyed
``<location>/<item>``), with the NetSuite read it is based on and the POS events since;
oversell warnings and replenishment triggers go to the signals topic (JSON).

One worker runs this role (it keeps every item's state in memory and sees every input
partition): the default worker, or one pod with ``TILLBRIDGE_AGENTS=availability``. On
start it reads NetSuite in full, then takes events. A replayed event still pending is
counted once (its id); one already in NetSuite is dropped by the next read, which finds
its record.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import DecodeError
from tillbridge.streams.availability import deltas as make
from tillbridge.streams.availability.events import (
    signal_bytes,
    state_from_record,
    state_record,
)
from tillbridge.streams.availability.model import Delta, ItemState, Key, Oversell, key_text
from tillbridge.streams.availability.rules import apply_delta, apply_read
from tillbridge.streams.flows.availability import read_levels
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.ledger.stock import adjustment_external_id
from tillbridge.streams.runtime import control, events, metrics
from tillbridge.streams.runtime.emit import EmitterLike
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.windows.engine import window_start

log = logging.getLogger(__name__)

BATCH = 1000
LOAD_TIMEOUT_S = 60.0
#: POS events kept (in memory) while the first NetSuite read has not landed
EARLY_MAX = 100_000
WITHIN_S = 0.005
INPUTS = (topics.SALE.name, topics.RETURN.name, topics.INVENTORY.name)
_BUILDERS = {topics.SALE.name: make.from_sale, topics.RETURN.name: make.from_return,
             topics.INVENTORY.name: make.from_movement}


class AvailabilityAgent:
    """``run(stream)`` is the Faust agent body; ``poll`` the NetSuite timer."""

    def __init__(self, pipe: Pipeline, emitter: EmitterLike, *, pending_max_s: float,
                 window_s: float, encode: Callable[[dict[str, Any]], bytes] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.pipe, self.emitter = pipe, emitter
        self.max_age = timedelta(seconds=pending_max_s)
        self.window_s = window_s
        self._encode = encode
        self._clock = clock
        self.states: dict[Key, ItemState] = {}
        self.cursor: str | None = None
        #: externalIds (lower case) NetSuite was found to hold (their POS events are in its
        #: figures) -> when found; forgotten after the pending limit, as those events are.
        self.known: dict[str, datetime] = {}
        self.reads = 0
        self.ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._polling = False
        self._early: list[tuple[Source, float]] = []

    # -- POS events --------------------------------------------------------------------
    async def run(self, stream: Any) -> None:
        """Never waits before reading: this agent shares its records with the ingest agent,
        and a channel left unread stalls ingest once its buffer is full (a worker joining
        during a NetSuite outage held every sale it took over). Events that arrive before
        the first NetSuite read are kept (up to ``EARLY_MAX``) and counted once it lands;
        beyond that they are skipped and counted in the metric (NetSuite's figures include
        them once they are posted). They are acked when kept: a crash before the first
        read loses their deltas until the next read, which is NetSuite's truth anyway."""
        async for batch in stream.take_events(BATCH, within=WITHIN_S):
            items = [(events.source(e), e.message.timestamp) for e in batch]
            if not self.ready.is_set():
                self._keep_early(items)
                continue
            await self.flush_early()
            await self.handle(items)

    def _keep_early(self, items: list[tuple[Source, float]]) -> None:
        room = max(0, EARLY_MAX - len(self._early))
        self._early.extend(items[:room])
        for src, _ in items[room:]:
            metrics.AVAILABILITY_SKIPPED.labels(src.topic).inc()

    async def flush_early(self) -> None:
        """Count the events kept before the first read (once it has landed)."""
        if self._early and self.ready.is_set():
            early, self._early = self._early, []
            await self.handle(early)

    async def handle(self, sources: Sequence[tuple[Source, float]]) -> None:
        """``sources``: records with their Kafka timestamps (seconds). A record older than
        the pending limit, or whose NetSuite record a read already found, is in NetSuite's
        figures (or never will be): a restarted worker reads those again."""
        oldest = (self._clock() - self.max_age).timestamp()
        async with self._lock:
            for src, ts in sources:
                if ts and ts < oldest:
                    continue
                for delta in self.deltas(src):
                    if delta.netsuite_key and delta.netsuite_key.lower() in self.known:
                        continue
                    state = self._state(delta.key, delta.store_id, delta.sku)
                    changed, signals = apply_delta(state, delta)
                    if changed:
                        await self._publish(state, delta.event_id)
                    for signal in signals:
                        await self._signal(signal)

    def deltas(self, src: Source) -> list[Delta]:
        """The deltas of one input record; none for a record this flow cannot read (the
        ingest flow dead-letters it with its reason)."""
        build = _BUILDERS.get(src.topic)
        if build is None or src.value is None:
            return []
        try:
            event = self.pipe.codec.decode(src.value, src.topic)
            out = build(f"{src.topic}/{src.partition}/{src.offset}", event, self._clock(),
                        self._resolver())
        except (DecodeError, KeyError, TypeError, ValueError, ArithmeticError) as exc:
            metrics.AVAILABILITY_SKIPPED.labels(src.topic).inc()
            log.info("availability: %s/%s@%s not counted: %s", src.topic, src.partition,
                     src.offset, exc)
            return []
        return out

    def _resolver(self) -> make.Resolver:
        maps, ref = self.pipe.mappings, self.pipe.refdata

        def location(store: str) -> str | None:
            mapped = maps.stores.get(store)
            return mapped.location if mapped is not None else None

        def item(sku: str) -> str | None:
            found = ref.find_item(maps.itemid(sku), maps.sku_ignore_case)
            return found.id if found is not None else None

        def movement_key(mv: dict[str, Any]) -> str | None:
            at = mv.get("occurred_at")
            if not isinstance(at, datetime):
                return None
            return adjustment_external_id(str(mv["store_id"]), window_start(at, self.window_s))

        return make.Resolver(location, item, movement_key)

    # -- NetSuite ----------------------------------------------------------------------
    async def poll(self) -> None:
        """Timer body (and the first read at start): NetSuite's figures in, stale POS
        deltas out. The reads run outside the lock, so sales keep moving meanwhile."""
        if not self.pipe.ready.is_set() or self.pipe.client is None or self._polling:
            return
        self._polling = True
        try:
            await self._poll(self.pipe.client)
        finally:
            self._polling = False

    async def _poll(self, client: Any) -> None:
        pending = {d.netsuite_key for s in self.states.values() for d in s.pending.values()
                   if d.netsuite_key}
        self.reads += 1
        read_id = f"{self._clock().strftime('%Y%m%dT%H%M%SZ')}-{self.reads}"
        started = time.perf_counter()
        try:
            read = await read_levels(client, self.cursor, pending, read_id,
                                     self._clock(), recent=self.max_age)
        except Exception as exc:  # noqa: BLE001 - the next poll tries again
            metrics.AVAILABILITY_POLLS.labels("error").inc()
            log.warning("availability poll failed: %s", exc)
            return
        metrics.AVAILABILITY_POLLS.labels("full" if read.full else "incremental").inc()
        async with self._lock:
            seen: set[Key] = set()
            for level in read.levels:
                seen.add(level.key)
                state = self._state(level.key)
                changed, signals = apply_read(state, level, read.info, read.found, self.max_age)
                if changed or read.full:
                    await self._publish(state, "netsuite_read")
                for signal in signals:
                    await self._signal(signal)
            for state in self.states.values():  # not re-read: only stale deltas go
                if state.key not in seen and state.base is not None and state.read is not None:
                    changed, _ = apply_read(state, state.base, read.info, frozenset(),
                                            self.max_age)
                    if changed:
                        await self._publish(state, "netsuite_read")
            self.cursor = read.cursor
            cut = read.info.read_at - self.max_age
            self.known = {k: t for k, t in self.known.items() if t >= cut}
            self.known.update(dict.fromkeys(read.found, read.info.read_at))
        log.info("availability read %s (%s): %d rows in %.2f s", read_id,
                 "full" if read.full else "incremental", len(read.levels),
                 time.perf_counter() - started)
        self.ready.set()

    async def load(self, bootstrap: str, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """The availability topic read to its end: each item's last state (below its
        reorder point or not, its POS events not in NetSuite yet) survives a restart."""
        last: dict[bytes, bytes | None] = {}

        def keep(key: bytes | None, value: bytes | None, _ts: int) -> None:
            if key is not None:
                last[key] = value

        await control.read_to_end(bootstrap, topics.AVAILABILITY, keep,
                                  name="availability-loader", timeout_s=timeout_s)
        for value in last.values():
            if value:
                state = state_from_record(self.pipe.codec.decode(value, topics.AVAILABILITY))
                self.states[state.key] = state
        log.info("availability: %d item states read back", len(self.states))

    async def start(self, bootstrap: str) -> None:
        """The states read back, then the first (full) read, retried until it works;
        events wait for it."""
        await self.load(bootstrap)
        await self.pipe.ready.wait()
        delay = 1.0
        while not self.ready.is_set():
            await self.poll()
            if not self.ready.is_set():
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        await self.flush_early()

    # -- output ------------------------------------------------------------------------
    def _state(self, key: Key, store_id: str = "", sku: str = "") -> ItemState:
        state = self.states.get(key)
        if state is None:
            if not store_id:
                store_id = next((code for code, m in self.pipe.mappings.stores.items()
                                 if m.location == key[0]), "")
            if not sku:
                found = self.pipe.refdata.item_by_id(key[1])
                sku = found.sku if found is not None else ""
            state = self.states[key] = ItemState(key[0], key[1], store_id, sku)
        return state

    def encode(self, record: dict[str, Any]) -> bytes:
        if self._encode is None:
            self._encode = self.pipe.codec.encoder(topics.AVAILABILITY_TOPIC)
        return self._encode(record)

    async def _publish(self, state: ItemState, cause: str) -> None:
        record = state_record(state, str(uuid.uuid4()), self._clock(), cause)
        await self.emitter.send(Outbound(topics.AVAILABILITY, key_text(state.key).encode(),
                                         self.encode(record)))
        metrics.AVAILABILITY_EVENTS.inc()

    async def _signal(self, signal: Any) -> None:
        kind = "oversell" if isinstance(signal, Oversell) else "replenishment"
        await self.emitter.send(Outbound(topics.AVAILABILITY_SIGNALS,
                                         key_text((signal.location, signal.item)).encode(),
                                         signal_bytes(signal, self._clock())))
        metrics.AVAILABILITY_SIGNALS.labels(kind, signal.store_id or "").inc()
        log.warning("%s at %s/%s (%s): %s", kind, signal.store_id, signal.sku,
                    signal.location, signal)


def install(app: Any, settings: Any, pipe: Pipeline, out: EmitterLike) -> AvailabilityAgent:
    """The agent on the sale, return and inventory topics (beside the ingest agent, in the
    same group), its first read at start and its poll timer."""
    from tillbridge.connectors.kafka.admin import ensure_topics
    from tillbridge.streams.runtime import faust_app

    agent = AvailabilityAgent(pipe, out, pending_max_s=settings.availability_pending_max_s,
                              window_s=settings.window_s)
    app.availability_agent = agent  # tests and the demo read it

    @app.task
    async def start_availability() -> None:
        ensure_topics(settings.kafka_bootstrap_servers or "",
                      [topics.AVAILABILITY, topics.AVAILABILITY_SIGNALS],
                      partitions=settings.topic_partitions, configs=topics.TOPIC_CONFIGS)
        await agent.start(settings.kafka_bootstrap_servers or "")

    faust_app.every(app, settings.netsuite_poll_s, agent.poll)
    topic = app.topic(*INPUTS, key_serializer="raw", value_serializer="raw")
    app.agent(topic, name="availability")(agent.run)
    return agent
