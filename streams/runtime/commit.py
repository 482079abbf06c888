"""Faust's commit made to wait for our producers: no input offset is committed before
everything produced for it is acknowledged by the broker (at-least-once end to end).

Faust's consumer awaits ``app.producer.flush()`` right before it commits offsets (so a
committed offset never points past an unsent output). Our outputs go through
confluent-kafka emitters (``emit.py``), so that same flush must include them. Faust also
flushes there before giving partitions up in a rebalance.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol


class Flushable(Protocol):
    async def flush(self) -> None: ...


def flush_emitters_before_commit(app: Any, emitters: Sequence[Flushable]) -> None:
    """Wrap ``app.producer.flush`` so it flushes ``emitters`` too (the list is read at each
    flush: emitters added later count)."""
    producer = app.producer
    faust_flush: Callable[[], Awaitable[None]] = producer.flush

    async def flush() -> None:
        await faust_flush()
        for emitter in emitters:
            await emitter.flush()

    producer.flush = flush
