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
from typing import Any


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
