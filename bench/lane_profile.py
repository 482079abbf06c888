"""Where the inventory lane's CPU goes, per movement, without a broker in the loop.

``python -m bench.lane_profile [N]``: the lane's loop body (``InventoryLane.handle``:
decode, validate, enrich, window add) over N movements already read, then the windows'
close (one inventoryAdjustment per store and window against the simulator, a result per
movement), under cProfile, with the worker's garbage-collector settings; what is produced
is kept in memory, not sent. Prints µs per movement (with and without the profiler) and
the top functions by own time. The consumer, the producer and the broker are left out:
this is the part the lane's own code decides.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from typing import Any

from bench.windows import encoded_movements
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.stack import local_stack
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.runtime import gc_tuning
from tillbridge.streams.runtime.acks import OffsetAcks
from tillbridge.streams.runtime.guard import standard
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.runtime.window_lane import INVENTORY_PLAN, InventoryLane
from tillbridge.streams.runtime.windows import WindowAgent
from tillbridge.streams.stages.messages import Outbound
from tillbridge.streams.windows.engine import WindowSpec


class Kept:
    """An emitter that keeps what it is given (nothing leaves the process)."""

    def __init__(self) -> None:
        self.count = 0

    def emit(self, topic: str, key: bytes | None, value: bytes | None,
             headers: Any = None) -> bool:
        self.count += 1
        return True

    async def room(self) -> None:
        return None

    async def send(self, out: Outbound) -> None:
        self.count += 1

    async def flush(self) -> None:
        return None


class Msg:
    """A consumed record's accessors, as confluent-kafka gives them."""

    __slots__ = ("_offset", "_key", "_value")

    def __init__(self, offset: int, key: bytes, value: bytes) -> None:
        self._offset, self._key, self._value = offset, key, value

    def topic(self) -> str:
        return topics.INVENTORY.name

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def headers(self) -> None:
        return None

    def error(self) -> None:
        return None


async def _run(settings: Settings, msgs: list[Msg], profile: cProfile.Profile | None
               ) -> tuple[float, int]:
    pipe = Pipeline(settings)
    await pipe.start()
    async with NetSuiteClient(settings.netsuite_base_url or "", NetSuiteCredentials.dev()) as c:
        ref = ReferenceData()
        await ref.load(c)
    pipe.use_refdata(ref, 1)
    out = Kept()
    spec = WindowSpec(3600, 60, 0.5, 7200)
    clock = [time.time()]
    agent = WindowAgent(pipe, out, standard(out.send, origin=pipe.origin,
                                            hold=lambda _e: None), spec,
                        source=lambda e: e.raw, hold=lambda _e: None,
                        mine=lambda flow: flow == INVENTORY_PLAN, clock=lambda: clock[0],
                        acks=OffsetAcks(topics.INVENTORY.name))
    agent.ready.set()
    lane = InventoryLane(pipe, agent, out, agent.guard, {}, consumer=lambda _c: None)
    start = time.perf_counter()
    if profile:
        profile.enable()
    for i in range(0, len(msgs), 2000):
        await lane.handle(msgs[i:i + 2000])
    clock[0] += 10_000  # every window quiet long enough: the tick closes and posts them
    await agent.tick()
    if profile:
        profile.disable()
    spent = time.perf_counter() - start
    await pipe.stop()
    return spent, out.count


def main(n: int = 20_000) -> None:
    with local_stack(Settings.from_env({})) as stack:
        s = stack.settings
        msgs = [Msg(i, k, v) for i, (k, v) in
                enumerate(encoded_movements(s.schema_registry_url or "", n))]
        gc_tuning.tune(s.gc_gen0_threshold)  # as the worker does (its heap built)
        bare, made = asyncio.run(_run(s.replace(app_id="lane-profile-1"), msgs, None))
        prof = cProfile.Profile()
        profiled, _ = asyncio.run(_run(s.replace(app_id="lane-profile-2"), msgs, prof))
    print(f"{n} movements, {made} records produced: {bare / n * 1e6:.1f} µs a movement "
          f"({profiled / n * 1e6:.1f} under cProfile)")
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
