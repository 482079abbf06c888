"""Acks in offset order per partition, for an agent that finishes records out of order.

Faust commits a partition up to the first gap in the offsets acked *after its first acked
one*: with nothing committed yet, records held at the head of a partition (the window
agent's members of a still-open window) would be committed past as soon as a later record
is acked (faust ``Consumer._new_offset`` skips its head-gap check while the committed
offset is unset or 0). So the window agent holds every record it takes (one extra
reference) and releases them here strictly in offset order: a record is acked only once it
and every earlier record of its partition are done.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class AckQueue:
    """``take`` each record as it arrives, ``done`` it when its outcome is out."""

    def __init__(self, hold: Callable[[Any], None], release: Callable[[Any], None],
                 partition: Callable[[Any], int] = lambda e: e.message.partition) -> None:
        self._hold, self._release, self._partition = hold, release, partition
        self._queues: dict[int, deque[list[Any]]] = {}
        self._entries: dict[int, list[Any]] = {}

    def take(self, event: Any) -> None:
        self._hold(event)
        entry = [event, False]
        self._queues.setdefault(self._partition(event), deque()).append(entry)
        self._entries[id(event)] = entry

    def done(self, event: Any) -> None:
        entry = self._entries.get(id(event))
        if entry is None:
            return
        entry[1] = True
        queue = self._queues[self._partition(event)]
        while queue and queue[0][1]:
            head = queue.popleft()[0]
            del self._entries[id(head)]
            self._release(head)

    def drop(self, partitions: set[int]) -> None:
        """Revoked partitions: their records are never acked here (the next owner reads
        them again)."""
        for p in partitions:
            for entry in self._queues.pop(p, deque()):
                self._entries.pop(id(entry[0]), None)

    def pending(self) -> int:
        return len(self._entries)


class Acks(Protocol):
    """What the window agent and its closer use of an ack tracker."""

    def take(self, event: Any) -> None: ...

    def done(self, event: Any) -> None: ...

    def drop(self, partitions: set[int]) -> None: ...

    def pending(self) -> int: ...


class OffsetAcks:
    """``AckQueue``'s order for a consumer that commits by hand (the inventory lane): it
    keeps offsets, not records, and ``due`` says where each partition may be committed
    (one past the last record released in order). Each record's event has ``raw``, its
    ``Source``. Two calls a record instead of six callbacks (~2.5 µs a movement of the
    lane's ~30, ``bench.lane_profile``)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._held: dict[int, deque[int]] = {}  # offsets taken and not released, in order
        self._early: dict[int, set[int]] = {}  # done, behind a record still held
        self._next: dict[int, int] = {}
        self._dirty: set[int] = set()

    def take(self, event: Any) -> None:
        raw = event.raw
        held = self._held.get(raw.partition)
        if held is None:
            held = self._held[raw.partition] = deque()
            self._early[raw.partition] = set()
        held.append(raw.offset)

    def done(self, event: Any) -> None:
        raw = event.raw
        held = self._held.get(raw.partition)
        if not held or raw.offset < held[0]:  # released already: nothing to do
            return
        if held[0] != raw.offset:
            self._early[raw.partition].add(raw.offset)
            return
        early = self._early[raw.partition]
        last = held.popleft()
        while held and held[0] in early:
            early.discard(last := held.popleft())
        self.release(raw.partition, last)

    def release(self, partition: int, offset: int) -> None:
        """``offset`` and all before it may be committed (never moves back: a record read
        again and released late)."""
        if offset + 1 > self._next.get(partition, -1):
            self._next[partition] = offset + 1
            self._dirty.add(partition)

    def due(self) -> list[tuple[str, int, int]]:
        """What changed since the last call: (topic, partition, next offset) to commit."""
        out = [(self.topic, p, self._next[p]) for p in sorted(self._dirty)]
        self._dirty.clear()
        return out

    def drop(self, partitions: set[int]) -> None:
        for p in partitions:
            self._held.pop(p, None)
            self._early.pop(p, None)

    def pending(self) -> int:
        return sum(len(h) for h in self._held.values())
