"""Fault injection: one step raises for ONE record of a batch. That record ends
dead-lettered as ``internal_error`` with its original key/value bytes and input
coordinates, every other record of the batch gets its normal outcome, and the agent goes
on to its next batch.

Every test uses the real ``Pipeline`` and stages, Avro through the embedded schema
registry, and the NetSuite simulator over HTTP; only the broker is faked (Faust events and
streams, and a recording emitter: ``tests/test_runtime_fakes.py``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.factories import make_return, make_sale
from tests.test_runtime_fakes import (
    FakeEvent,
    FakeStream,
    RecordingEmitter,
    Rig,
    assert_internal_error,
    created,
    dead,
    input_events,
    outcomes,
    refuse_first,
    rig_settings,
    run_rig,
    sales,
)
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.devstack.registry import RegistryServer
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.health import HEALTH
from tillbridge.streams.runtime.sink import SinkConfig

VICTIM = "S001-R01-VICTIM"
VICTIM_KEY = VICTIM.encode()
VICTIM_AT = 2  # its place in the batch
VICTIM_RETURN = "S001-R02-VICTIM"
RETURNS_AT = (2, 40)  # partition and first offset of the returns that park
#: A parking entry's id is its record's input coordinates: the victim return is the 2nd.
VICTIM_PARKED = f"pos.return.v1/{RETURNS_AT[0]}/{RETURNS_AT[1] + 1}"

#: Where each step is looked up today, and how a call of it names the victim's record
#: (``args``: the call's arguments; ``n``: how many calls came before). Retarget the names
#: here when the flows rewrite moves a step.
FAULTS: dict[str, tuple[str, Callable[[tuple[Any, ...], int], bool]]] = {
    "decode": ("tillbridge.streams.flows.ingest.decode",
               lambda args, n: args[1].key == VICTIM_KEY),
    "validate": ("tillbridge.streams.flows.sale.validate_sale",
                 lambda args, n: args[0]["pos_transaction_id"] == VICTIM),
    "enrich": ("tillbridge.streams.flows.sale.enrich_sale",
               lambda args, n: args[0]["pos_transaction_id"] == VICTIM),
    "route": ("tillbridge.streams.flows.ingest.route.destination",  # (topic): by order
              lambda args, n: n == VICTIM_AT),
    "sink": ("tillbridge.streams.flows.pipeline.Pipeline.sink_all",
             lambda args, n: args[1].key == VICTIM_KEY),
    "settle": ("tillbridge.streams.flows.sale.SaleFlow._settle",  # (self, ctx, pending, ...)
               lambda args, n: args[2].sale["pos_transaction_id"] == VICTIM),
    "drain split": ("tillbridge.streams.flows.pipeline.Pipeline.drainable",
                    lambda args, n: args[1].key == VICTIM_KEY),
    "release": ("tillbridge.streams.runtime.parking.released",
                lambda args, n: args[0].id == VICTIM_PARKED),
}


def inject(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """Make ``step`` raise for the victim's record only. The exception is raised from a
    frame of the step's own module, as a bug in that step would be."""
    target, is_victim = FAULTS[step]
    module, _, name = target.rpartition(".")
    owner = _resolve(module)
    original = getattr(owner, name)
    calls = [0]

    def boom() -> None:
        raise RuntimeError(f"injected fault: {step}")

    raise_there = types.FunctionType(boom.__code__, original.__globals__, "boom",
                                     None, boom.__closure__)

    def hit(args: tuple[Any, ...]) -> bool:
        calls[0] += 1
        return is_victim(args, calls[0] - 1)

    if inspect.iscoroutinefunction(original):
        async def faulty_async(*args: Any, **kwargs: Any) -> Any:
            if hit(args):
                raise_there()
            return await original(*args, **kwargs)
        monkeypatch.setattr(owner, name, faulty_async)
    else:
        def faulty(*args: Any, **kwargs: Any) -> Any:
            if hit(args):
                raise_there()
            return original(*args, **kwargs)
        monkeypatch.setattr(owner, name, faulty)


def _resolve(dotted: str) -> Any:
    """A module, or an attribute path below one (``pkg.module.Class``)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


def _sales(prefix: str = "S001-R01-F", n: int = 5) -> list[dict[str, Any]]:
    batch = sales(prefix, n)
    batch[VICTIM_AT]["pos_transaction_id"] = VICTIM
    return batch


def _later() -> list[dict[str, Any]]:
    return [make_sale(pos_transaction_id="S001-R01-LATER")]


# -- ingest: decode, validate, enrich, route, emit -------------------------------------------

INGEST_STAGE = {"decode": "decode", "validate": "validate", "enrich": "enrich",
                "route": "route"}


@pytest.mark.parametrize("step", list(INGEST_STAGE))
def test_ingest_step_failing_on_one_record(step: str, registry: RegistryServer, sim: SimServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Faked: broker (events, stream, emitter). Real: pipeline, stages, registry; the
    simulator serves reference data."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, _sales())
    later = input_events(settings, _later(), first_offset=200)
    stream = FakeStream(first, later)
    inject(monkeypatch, step)
    rig = run_rig(settings, lambda rig: rig.ingest.run(stream))

    sent = rig.ingest_out.sent
    [letter] = dead(sent)
    assert letter.topic == topics.dlq_topic(INGEST_STAGE[step]), "the failing stage's DLQ"
    assert_internal_error(letter, first[VICTIM_AT], stage=INGEST_STAGE[step])
    routed = [o.key for o in sent if o.topic == topics.ROUTED_REALTIME]
    assert routed == [e.message.key for e in first + later if e is not first[VICTIM_AT]]
    assert stream.taken == 2, "the agent went on to its next batch"
    assert all(e.message.acked for e in first + later)


def test_ingest_emit_refused_for_one_record(registry: RegistryServer, sim: SimServer) -> None:
    """librdkafka refuses the victim's routed record (e.g. too large): dead-lettered.
    Faked: broker (the emitter refuses). Real: pipeline, stages, registry, simulator."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, _sales())
    later = input_events(settings, _later(), first_offset=200)
    stream = FakeStream(first, later)
    out = RecordingEmitter(refuse=lambda o: o.topic == topics.ROUTED_REALTIME
                           and o.key == VICTIM_KEY)
    run_rig(settings, lambda rig: rig.ingest.run(stream), ingest_out=out)

    [letter] = dead(out.sent)
    assert_internal_error(letter, first[VICTIM_AT], stage="emit")
    routed = [o.key for o in out.sent if o.topic == topics.ROUTED_REALTIME]
    assert routed == [e.message.key for e in first + later if e is not first[VICTIM_AT]]
    assert stream.taken == 2 and all(e.message.acked for e in first + later)


def test_dead_letter_refused_is_retried_until_the_dlq_takes_it(registry: RegistryServer,
                                                               sim: SimServer,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """Validation blows up on the victim AND its dead letter is refused twice: the guard
    retries with backoff (metric, /ready's dead_letters check) instead of skipping it or
    exiting; once the DLQ takes it the victim has its outcome and is acked like the rest.
    Faked: broker (the emitter refuses the victim's first two dead letters). Real: the rest."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, _sales())
    later = input_events(settings, _later(), first_offset=200)
    stream = FakeStream(first, later)
    inject(monkeypatch, "validate")
    out = RecordingEmitter(refuse=refuse_first(2, lambda o: o.key == VICTIM_KEY))
    retries = metrics.DLQ_PRODUCE_RETRIES._value.get()
    seen: list[bool] = []
    monkeypatch.setattr(HEALTH, "set", lambda name, ok, detail="": seen.append(ok)
                        if name == "dead_letters" else None)
    rig = run_rig(settings, lambda rig: rig.ingest.run(stream), ingest_out=out)

    [letter] = dead(out.sent)
    assert letter.key == VICTIM_KEY
    assert metrics.DLQ_PRODUCE_RETRIES._value.get() == retries + 2
    assert seen == [False, False, True], "not ready while refused, ready once produced"
    assert all(e.message.acked for e in first + later)
    assert len([o for o in rig.ingest_out.sent if o.topic == topics.ROUTED_REALTIME]) == 5


# -- sink: sink, settle, emit, drain split ---------------------------------------------------

def _sink_scenario(first: list[FakeEvent], later: list[FakeEvent], stream_out: list[Any],
                   before_sink: Callable[[], None] = lambda: None
                   ) -> Callable[[Rig], Any]:
    """Route the inputs (unfaulted), then run the sink agent over two routed batches."""
    async def scenario(rig: Rig) -> None:
        routed_first = await rig.route(first)
        routed_later = await rig.route(later)
        before_sink()
        stream = FakeStream(routed_first, routed_later)
        stream_out.append(stream)
        await rig.sink.run(stream)
    return scenario


def _check_sink(rig: Rig, first: list[FakeEvent], later: list[FakeEvent], stage: str,
                streams: list[FakeStream]) -> None:
    [letter] = dead(rig.sink_out.sent)
    assert letter.topic == topics.dlq_topic("sink")
    assert_internal_error(letter, first[VICTIM_AT], stage=stage)
    expected = {e.message.key.decode(): "posted" for e in first + later
                if e is not first[VICTIM_AT]}
    assert outcomes(rig.sink_out.sent) == expected
    assert streams[0].taken == 2, "the agent went on to its next batch"
    assert all(e.message.acked for b in streams[0].batches for e in b)


@pytest.mark.parametrize("step,records", [("sink", 5), ("settle", 6)])
def test_sink_step_failing_on_one_record(step: str, records: int, registry: RegistryServer,
                                         sim: SimServer, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """Faked: broker. Real: pipeline, stages, registry, NetSuite simulator over HTTP.
    (``settle`` fails after NetSuite wrote the victim's cashSale: 6 records.)"""
    settings = rig_settings(registry, sim)
    first = input_events(settings, _sales())
    later = input_events(settings, _later(), first_offset=200)
    streams: list[FakeStream] = []
    rig = run_rig(settings, _sink_scenario(first, later, streams,
                                        lambda: inject(monkeypatch, step)))
    _check_sink(rig, first, later, "sink", streams)
    assert created(sim) == records


def test_sink_emit_refused_for_one_record(registry: RegistryServer, sim: SimServer) -> None:
    """librdkafka refuses the victim's result: its dead letter replaces it. Faked: broker
    (the emitter refuses). Real: pipeline, stages, registry, NetSuite simulator."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, _sales())
    later = input_events(settings, _later(), first_offset=200)
    streams: list[FakeStream] = []
    out = RecordingEmitter(refuse=lambda o: o.topic == topics.RESULTS and o.key == VICTIM_KEY)
    rig = run_rig(settings, _sink_scenario(first, later, streams), sink_out=out)
    _check_sink(rig, first, later, "emit", streams)


def test_drain_split_failing_on_one_record(registry: RegistryServer, sim: SimServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain's split (``drainable``) raises for the victim: dead-lettered; the other
    sales still go through an async batch job. Faked: broker. Real: the rest."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, _sales())
    later = input_events(settings, _later(), first_offset=200)
    streams: list[FakeStream] = []
    drains = metrics.DRAINS._value.get()
    rig = run_rig(settings, _sink_scenario(first, later, streams,
                                        lambda: inject(monkeypatch, "drain split")),
               config=SinkConfig(batch=100, drain_threshold=3))
    _check_sink(rig, first, later, "drain", streams)
    assert metrics.DRAINS._value.get() == drains + 1, "the four others were drained"
    assert created(sim) == 5


def test_settle_failing_inside_a_drain_falls_back_to_one_by_one(
        registry: RegistryServer, sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settling the victim raises inside the drain: the drain falls back to the guarded
    one-by-one path. The victim is dead-lettered; the others come out as duplicates of what
    the drain wrote (never twice in NetSuite). Faked: broker. Real: the rest."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, _sales())
    streams: list[FakeStream] = []
    rig = run_rig(settings, _sink_scenario(first, [], streams,
                                        lambda: inject(monkeypatch, "settle")),
               config=SinkConfig(batch=100, drain_threshold=3))
    [letter] = dead(rig.sink_out.sent)
    assert_internal_error(letter, first[VICTIM_AT], stage="sink")
    others = {e.message.key.decode() for e in first if e is not first[VICTIM_AT]}
    got = outcomes(rig.sink_out.sent)
    assert set(got) == others and set(got.values()) <= {"posted", "duplicate"}, got
    assert created(sim) == 5, "each sale once in NetSuite"


# -- parking: release of a parked record -----------------------------------------------------

def test_release_failing_for_one_parked_record(registry: RegistryServer, sim: SimServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Two refunds park before their sale; the sale lands and releases them; releasing the
    victim raises: it is dead-lettered (original return bytes and coordinates) and leaves
    the table; the other refund posts. Faked: broker. Real: the rest."""
    settings = rig_settings(registry, sim)
    sale = make_sale(pos_transaction_id="S001-R01-PARKED")
    rets = [make_return(pos_transaction_id=t) for t in ("S001-R02-OTHER", VICTIM_RETURN)]
    for r in rets:
        r["original"]["pos_transaction_id"] = sale["pos_transaction_id"]
    returns = input_events(settings, rets, topics.RETURN, partition=RETURNS_AT[0],
                           first_offset=RETURNS_AT[1])
    sales = input_events(settings, [sale], first_offset=300)
    later = input_events(settings, _later(), first_offset=301)
    streams: list[FakeStream] = []

    async def scenario(rig: Rig) -> None:
        batches = [await rig.route(returns), await rig.route(sales), await rig.route(later)]
        inject(monkeypatch, "release")
        streams.append(FakeStream(*batches))
        await rig.sink.run(streams[0])

    rig = run_rig(settings, scenario)
    sent = rig.sink_out.sent
    [letter] = dead(sent)
    assert letter.topic == topics.dlq_topic("sink")
    # Key, value and input coordinates are the return's own, though it was routed under its
    # sale's key (``route.origin`` restores the input key from the hop headers).
    assert_internal_error(letter, returns[1], stage="release")
    docs = [json.loads(o.value or b"{}") for o in sent if o.topic == topics.RESULTS]
    by_txn = [(d["pos_transaction_id"], d["outcome"]) for d in docs]
    assert by_txn == [("S001-R02-OTHER", "parked"), (VICTIM_RETURN, "parked"),
                      ("S001-R01-PARKED", "posted"), ("S001-R02-OTHER", "posted"),
                      ("S001-R01-LATER", "posted")], by_txn
    tombstones = [o.key for o in sent if o.topic == topics.PARKED and o.value is None]
    assert sorted(tombstones) == sorted(e.message.topic.encode() + b"/%d/%d" % (
        e.message.partition, e.message.offset) for e in returns), "both left the table"
    assert len(rig.parking.lot) == 0
    assert streams[0].taken == 3
