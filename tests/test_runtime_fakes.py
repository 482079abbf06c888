"""Shared harness of the runtime tests (it holds no test itself).

Only the broker is faked: Faust's events and streams (``FakeEvent``/``FakeStream``, which
ack a batch the way Faust does, in a ``finally`` when the agent moves on) and the emitter
(``RecordingEmitter``: what an agent produced, in order). Everything else is real: the
``Pipeline`` with its stages, Avro through the embedded schema registry, and NetSuite as
the simulator over HTTP (``tests/conftest.py``'s ``sim`` fixture).
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from confluent_kafka import KafkaError, KafkaException

from tests.factories import make_sale
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.devstack.registry import RegistryServer
from tillbridge.streams.flows.park import ParkingLot
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.runtime import events, guard
from tillbridge.streams.runtime.emit import ProduceRefused
from tillbridge.streams.runtime.ingest import IngestAgent
from tillbridge.streams.runtime.parking import Parking
from tillbridge.streams.runtime.refdata_loader import RefdataLoader
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.runtime.sink import SinkAgent, SinkConfig
from tillbridge.streams.stages.messages import Outbound, Source

PARTITIONS = 4


# -- the broker, faked ---------------------------------------------------------------------

class FakeMessage:
    """Faust's message as far as the runtime touches it: coordinates, bytes, refcount."""

    def __init__(self, topic: str, partition: int, offset: int, key: bytes | None,
                 value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        self.key, self.value, self.headers = key, value, list(headers)
        self.refcount = 1  # one stream holds it, as Faust's conductor sets it
        self.acked = False

    def incref(self, n: int = 1) -> None:
        self.refcount += n

    def ack(self) -> None:
        """Faust's rule: final-acked (committable) once no reference is left."""
        self.refcount = max(0, self.refcount - 1)
        self.acked = self.acked or self.refcount == 0


class FakeEvent:
    def __init__(self, message: FakeMessage) -> None:
        self.message = message

    @property
    def src(self) -> Source:
        return events.source(self)


class FakeStream:
    """``take_events`` yields the given batches, acking each one when the agent asks for
    the next (or leaves), as Faust's does; then ends, which ends the agent."""

    def __init__(self, *batches: Sequence[FakeEvent]) -> None:
        self.batches = [list(b) for b in batches]
        self.taken = 0

    async def take_events(self, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        for batch in self.batches:
            try:
                self.taken += 1
                yield batch
            finally:
                for event in batch:
                    event.message.ack()


def refused(topic: str) -> ProduceRefused:
    return ProduceRefused(topic, KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)))


def refuse_first(times: int, which: Callable[[Outbound], bool]) -> Callable[[Outbound], bool]:
    """A ``refuse`` predicate: the first ``times`` messages ``which`` picks are refused, then
    accepted (a DLQ that comes back)."""
    left = [times]

    def refuse(out: Outbound) -> bool:
        if left[0] and which(out):
            left[0] -= 1
            return True
        return False
    return refuse


@dataclass
class RecordingEmitter:
    """Records what is produced. ``refuse(out)`` True: librdkafka refuses that message
    (``ProduceRefused``); ``full`` emits answer "queue full" before each is taken."""

    refuse: Callable[[Outbound], bool] = lambda _out: False
    full: int = 0
    sent: list[Outbound] = field(default_factory=list)
    rooms: int = 0
    _full_left: int = 0

    def emit(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes]] | None = None) -> bool:
        out = Outbound(topic, key, value, list(headers or []))
        if self.refuse(out):
            raise refused(topic)
        if self._full_left:
            self._full_left -= 1
            return False
        self._full_left = self.full
        self.sent.append(out)
        return True

    async def room(self) -> None:
        self.rooms += 1
        await asyncio.sleep(0)

    async def send(self, out: Outbound) -> None:
        while not self.emit(out.topic, out.key, out.value, out.headers):
            await self.room()

    async def flush(self) -> None:
        return None


# -- records ---------------------------------------------------------------------------------

def input_events(settings: Settings, docs: Iterable[dict[str, Any]],
                 topic: topics.EventTopic = topics.SALE, *, partition: int = 1,
                 first_offset: int = 100) -> list[FakeEvent]:
    """Avro-encoded input records as consumed: keyed by transaction, one header each."""
    encode = AvroCodec(settings.schema_registry_url or "").encoder(topic)
    return [FakeEvent(FakeMessage(topic.name, partition, first_offset + i,
                                  d["pos_transaction_id"].encode(), encode(d),
                                  [("trace-id", f"t-{i}".encode())]))
            for i, d in enumerate(docs)]


def routed_events(outs: Iterable[Outbound], first_offset: int = 0) -> list[FakeEvent]:
    """The ingest agent's routed outputs as the sink consumes them."""
    routed = [o for o in outs if o.topic == topics.ROUTED_REALTIME]
    return [FakeEvent(FakeMessage(o.topic, zlib.crc32(o.key or b"") % PARTITIONS, first_offset + i,
                                  o.key, o.value, o.headers)) for i, o in enumerate(routed)]


def dead(outs: Iterable[Outbound]) -> list[Outbound]:
    return [o for o in outs if o.topic in topics.DLQ_TOPICS]


def outcomes(outs: Iterable[Outbound]) -> dict[str, str]:
    """Result documents by transaction id -> outcome (the last one wins)."""
    docs = (json.loads(o.value or b"{}") for o in outs if o.topic == topics.RESULTS)
    return {d["pos_transaction_id"]: d["outcome"] for d in docs}


def assert_internal_error(letter: Outbound, original: FakeEvent, stage: str | None = None,
                          *, key: bytes | None = None) -> None:
    """A dead letter for a record tillbridge failed on, with the ORIGINAL bytes and
    input coordinates (``key``: when the sink's record was routed under another key)."""
    h = dict(letter.headers)
    msg = original.message
    assert h["tillbridge.reason"] == b"internal_error", h
    assert letter.value == msg.value, "original bytes untouched"
    assert letter.key == (msg.key if key is None else key)
    assert (h["__connect.errors.topic"], h["__connect.errors.partition"],
            h["__connect.errors.offset"]) == (msg.topic.encode(), str(msg.partition).encode(),
                                              str(msg.offset).encode())
    if stage is not None:
        assert h["__connect.errors.stage"] == stage.encode(), h["__connect.errors.stage"]


# -- the runtime, wired like build_app does it, without Faust --------------------------------

def rig_settings(registry: RegistryServer, sim: SimServer, **overrides: Any) -> Settings:
    creds = sim.credentials  # a base URL means a real NetSuite: credentials are explicit
    return Settings.from_env({"SCHEMA_REGISTRY_URL": registry.url,
                              "NETSUITE_BASE_URL": sim.base_url,
                              "NETSUITE_CONSUMER_KEY": creds.consumer_key,
                              "NETSUITE_CONSUMER_SECRET": creds.consumer_secret,
                              "NETSUITE_TOKEN_ID": creds.token_id,
                              "NETSUITE_TOKEN_SECRET": creds.token_secret},
                             topic_partitions=PARTITIONS, **overrides)


@dataclass
class Rig:
    pipe: Pipeline
    ingest: IngestAgent
    sink: SinkAgent
    parking: Parking
    ingest_out: RecordingEmitter
    sink_out: RecordingEmitter
    posted: dict[str, Any]
    owned: set[int]  # routed partitions this "worker" owns (change it: a rebalance)

    async def route(self, events_: list[FakeEvent]) -> list[FakeEvent]:
        """Run input records through the ingest agent; the sink's input events."""
        start = len(self.ingest_out.sent)
        await self.ingest.run(FakeStream(events_))
        return routed_events(self.ingest_out.sent[start:], first_offset=start)


async def make_rig(settings: Settings, *, ingest_out: RecordingEmitter | None = None,
                   sink_out: RecordingEmitter | None = None,
                   config: SinkConfig | None = None) -> Rig:
    """A started pipeline with reference data loaded from the simulator, both agents and
    the parking side (its table loaded: empty)."""
    pipe = Pipeline(settings)
    await pipe.start()
    await RefdataLoader(pipe).load_until_ready()
    i_out = ingest_out or RecordingEmitter()
    s_out = sink_out or RecordingEmitter()
    sink_guard = guard.standard(s_out.send, origin=pipe.origin, hold=events.hold)
    lot = ParkingLot()
    pipe.parked_lookup = lot.get
    owned = set(range(PARTITIONS))
    parking = Parking(pipe, lot, sink_guard, lambda: owned)
    parking.ready.set()
    posted: dict[str, Any] = {}
    sink = SinkAgent(pipe, posted, s_out, sink_guard, parking, owned=lambda: owned,
                     config=config or SinkConfig(batch=100, drain_threshold=0))
    parking.outlet = sink
    ingest = IngestAgent(pipe, i_out, guard.standard(i_out.send, hold=events.hold))
    return Rig(pipe, ingest, sink, parking, i_out, s_out, posted, owned)


def created(sim: SimServer, record_type: str = "cashSale") -> int:
    """How many records of a type NetSuite (the simulator) created."""
    stats = httpx.get(f"{sim.base_url}/__sim/stats").json()["records"]
    return int(stats.get(record_type, {}).get("created", 0))


def run_rig(settings: Settings, scenario: Callable[[Rig], Awaitable[Any]],
            **rig_kwargs: Any) -> Rig:
    """``scenario(rig)`` on a fresh rig, in its own event loop; the rig, afterwards."""
    async def main() -> Rig:
        rig = await make_rig(settings, **rig_kwargs)
        try:
            await scenario(rig)
        finally:
            await rig.pipe.stop()
        return rig
    return asyncio.run(main())


def sales(prefix: str, n: int) -> list[dict[str, Any]]:
    return [make_sale(pos_transaction_id=f"{prefix}{i:03d}") for i in range(n)]
