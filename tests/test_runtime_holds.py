"""Holding instead of acking: a NetSuite outage holds the sink's batch (never a dead
letter); a worker stopping mid-batch, or a partition moving to another worker during the
hold, leaves records unacked so whoever owns them next reads them again; a full producer
queue is waited for without blocking the loop.

Real ``Pipeline``, stages, schema registry and NetSuite simulator over HTTP (its outage
switch is NetSuite going down); only the broker is faked (``tests/test_runtime_fakes.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.test_runtime_fakes import (
    FakeEvent,
    FakeStream,
    RecordingEmitter,
    Rig,
    created,
    dead,
    input_events,
    outcomes,
    rig_settings,
    run_rig,
    sales,
)
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.devstack.registry import RegistryServer
from tillbridge.streams.runtime import metrics


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


def test_ingest_waits_for_room_when_the_producer_queue_is_full(registry: RegistryServer,
                                                               sim: SimServer) -> None:
    """After each emit the queue is full twice: the agent awaits room (the loop is never
    blocked) and every record is still routed, in order. Faked: broker."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, sales("S001-R01-ROOM", 5))
    out = RecordingEmitter(full=2)
    run_rig(settings, lambda rig: rig.ingest.run(FakeStream(first)), ingest_out=out)
    assert [o.key for o in out.sent] == [e.message.key for e in first]
    assert out.rooms >= len(first) - 1


# -- outage: held, not dead-lettered; a stop meanwhile acks nothing --------------------------

FAST_BREAKER: dict[str, Any] = {"netsuite_breaker_failures": 1,
                                "netsuite_breaker_cooldown_s": 0.2, "netsuite_max_attempts": 1}


@contextlib.asynccontextmanager
async def _outage(sim: SimServer) -> AsyncIterator[None]:
    """NetSuite (the simulator) down for the block."""
    httpx.post(f"{sim.base_url}/__sim/outage", json={"seconds": 60}).raise_for_status()
    try:
        yield
    finally:
        httpx.delete(f"{sim.base_url}/__sim/outage").raise_for_status()


async def _holding(rig: Rig, routed: list[FakeEvent], waits: int) -> asyncio.Task[None]:
    """The sink on ``routed``, once it has waited for NetSuite ``waits`` times."""
    before = metrics.UNAVAILABLE_WAITS._value.get()
    task = asyncio.create_task(rig.sink.handle(routed))
    while metrics.UNAVAILABLE_WAITS._value.get() < before + waits:
        await asyncio.sleep(0.05)
    return task

def test_outage_holds_the_batch_and_a_stop_meanwhile_acks_none_of_it(
        registry: RegistryServer, sim: SimServer) -> None:
    """NetSuite down: the sink holds its batch (no dead letter); cancelled then (the worker
    stops), every event of the batch is held so the acks Faust sends on the way out commit
    none of them. Faked: broker. Real: the rest; the outage is the simulator's."""
    settings = rig_settings(registry, sim, **FAST_BREAKER)
    first = input_events(settings, sales("S001-R01-OUT", 3))

    async def scenario(rig: Rig) -> None:
        routed = await rig.route(first)
        async with _outage(sim):
            task = await _holding(rig, routed, waits=3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        for event in routed:
            event.message.ack()  # what Faust's take_events does on the way out
        assert not any(e.message.acked for e in routed)

    rig = run_rig(settings, scenario)
    assert not rig.sink_out.sent, "nothing dead-lettered, nothing posted"


def test_outage_then_recovery_posts_everything_once(registry: RegistryServer,
                                                    sim: SimServer) -> None:
    """A short outage while the sink holds: once NetSuite is back every sale is posted
    once, none dead-lettered. Faked: broker. Real: the rest."""
    settings = rig_settings(registry, sim, **FAST_BREAKER)
    first = input_events(settings, sales("S001-R01-REC", 4))

    async def scenario(rig: Rig) -> None:
        routed = await rig.route(first)
        httpx.post(f"{sim.base_url}/__sim/outage", json={"seconds": 1.0}).raise_for_status()
        await rig.sink.run(FakeStream(routed))

    rig = run_rig(settings, scenario)
    assert not dead(rig.sink_out.sent)
    assert outcomes(rig.sink_out.sent) == {e.message.key.decode(): "posted" for e in first}
    assert created(sim) == 4



def test_records_whose_partition_moved_during_the_hold_are_left_to_the_new_owner(
        registry: RegistryServer, sim: SimServer) -> None:
    """NetSuite down while the sink holds; a rebalance gives two routed partitions away.
    Once NetSuite is back, the records of those partitions are held for good (never acked:
    their new owner reads them again), the others are posted. Faked: broker (the
    assignment too). Real: the rest; the outage is the simulator's."""
    settings = rig_settings(registry, sim, **FAST_BREAKER)
    first = input_events(settings, sales("S001-R01-MOV", 8))

    async def scenario(rig: Rig) -> list[FakeEvent]:
        routed = await rig.route(first)
        async with _outage(sim):
            task = await _holding(rig, routed, waits=2)
            rig.owned.difference_update({0, 1})  # the rebalance
        await task
        return routed

    held_before = metrics.HELD_AFTER_REBALANCE._value.get()
    routed: list[FakeEvent] = []

    async def run(rig: Rig) -> None:
        routed.extend(await scenario(rig))

    rig = run_rig(settings, run)
    moved = [e for e in routed if e.message.partition in (0, 1)]
    kept = [e for e in routed if e.message.partition not in (0, 1)]
    assert moved and kept, "the test's keys spread over both halves"
    assert not dead(rig.sink_out.sent)
    assert set(outcomes(rig.sink_out.sent)) == {e.message.key.decode() for e in kept}
    assert all(e.message.refcount == 2 for e in moved), "held: never acked here"
    assert metrics.HELD_AFTER_REBALANCE._value.get() == held_before + len(moved)


def test_ingest_stopped_while_waiting_for_room_holds_the_rest_of_its_batch(
        registry: RegistryServer, sim: SimServer) -> None:
    """The producer queue stays full after the first record; the worker stops meanwhile:
    the record waiting and those after it have no outcome, so they are held and the acks
    Faust sends on the way out commit only the first. Faked: broker."""
    settings = rig_settings(registry, sim)
    first = input_events(settings, sales("S001-R01-STOP", 5))
    out = RecordingEmitter(full=10**9)

    async def scenario(rig: Rig) -> None:
        task = asyncio.create_task(rig.ingest.handle(first))
        while out.rooms < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for event in first:
            event.message.ack()

    run_rig(settings, scenario, ingest_out=out)
    assert [o.key for o in out.sent] == [first[0].message.key]
    assert [e.message.acked for e in first] == [True] + [False] * (len(first) - 1)
