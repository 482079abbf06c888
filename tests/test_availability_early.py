"""The availability agent never stalls ingest: events before the first NetSuite read are
kept and counted once it lands, beyond a bound skipped and counted in the metric."""

from __future__ import annotations

import asyncio
from typing import Any

from tillbridge.streams.runtime import availability, metrics
from tillbridge.streams.runtime.availability import AvailabilityAgent
from tillbridge.streams.stages.messages import Source


def _src(offset: int) -> tuple[Source, float]:
    return Source("pos.sale.v1", 0, offset, b"k", b"v", []), 0.0


def test_events_before_the_first_read_are_kept_then_counted(monkeypatch: Any) -> None:
    monkeypatch.setattr(availability, "EARLY_MAX", 3)
    agent = AvailabilityAgent(None, None, pending_max_s=900, window_s=5)  # type: ignore
    handled: list[int] = []

    async def handle(items: list[tuple[Source, float]]) -> None:
        handled.extend(src.offset for src, _ in items)

    agent.handle = handle  # type: ignore[method-assign]
    skipped = metrics.REGISTRY.get_sample_value(
        "tillbridge_availability_skipped_total", {"topic": "pos.sale.v1"}) or 0.0
    agent._keep_early([_src(1), _src(2)])
    agent._keep_early([_src(3), _src(4)])  # the fourth is over the bound
    asyncio.run(agent.flush_early())
    assert handled == [], "nothing is counted before the first read"
    agent.ready.set()
    asyncio.run(agent.flush_early())
    assert handled == [1, 2, 3]
    assert metrics.REGISTRY.get_sample_value(
        "tillbridge_availability_skipped_total", {"topic": "pos.sale.v1"}) == skipped + 1
