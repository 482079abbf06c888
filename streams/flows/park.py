"""Parking: events whose NetSuite dependency is not there yet (a refund before its sale).

Such an event must neither be posted standalone (the refund would lose its link to the
sale) nor dead-lettered at once (the sale is usually seconds away, or waiting in a DLQ for
a fix). It waits in a durable table keyed by its own source coordinates, indexed by the
externalId it waits for, and leaves it in one of two ways:

- **released**: the dependency was written (by this worker's sink: checked right after
  every write; or found in NetSuite by the periodic re-check, which also covers
  dependencies written elsewhere), and the event goes through the sink again;
- **expired**: still missing after ``TILLBRIDGE_PARK_TIMEOUT_S``; dead-lettered with reason
  ``orphan_dependency``, original bytes and all, so it can be replayed once fixed.

Durability: the table's changelog is the compacted topic ``tillbridge.parked.v1`` (key =
entry id, value = the entry, tombstone = left the table). Entries are produced by the
sink's emitter, so an input offset is committed only after its entry is on the broker; a
restarted worker rebuilds the table by reading the topic (``control.TopicFollower``). Not
a Faust Table: a table row can only be written from inside an agent's current event, but
expiry and re-checks run on a timer; and Faust's changelog recovery is tied to the group
assignment, which Tansu mishandles after a restart (see the README). Every worker holds
every entry; only the owner of the routed partition an entry came from acts on it.

``ParkingLot`` is pure (no Kafka, no clock of its own) and unit-tested on its own.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages.messages import Outbound, Source

#: Header on a parked event's DLQ record / result: the externalId it waited for.
H_WAITED_FOR = "tillbridge.parked.dependency"


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


@dataclass(frozen=True, slots=True)
class ParkEntry:
    """One parked event: enough to run it through the sink again, and to say why."""

    id: str  # "<origin topic>/<partition>/<offset>": stable across replays of the event
    dependency: str  # externalId waited for
    record_types: tuple[str, ...]  # where that externalId may live
    parked_at: float
    deadline: float
    partition: int  # routed partition it came from: its owner acts on it
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    detail: str = ""
    checks: int = 0

    def to_json(self) -> bytes:
        return json.dumps({
            "id": self.id, "dependency": self.dependency,
            "record_types": list(self.record_types), "parked_at": self.parked_at,
            "deadline": self.deadline, "partition": self.partition,
            "key": _b64(self.key), "value": _b64(self.value),
            "headers": [[k, _b64(v)] for k, v in self.headers], "detail": self.detail,
            "checks": self.checks}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ParkEntry:
        doc: dict[str, Any] = json.loads(raw)
        return cls(doc["id"], doc["dependency"], tuple(doc["record_types"]),
                   float(doc["parked_at"]), float(doc["deadline"]), int(doc["partition"]),
                   _unb64(doc["key"]), _unb64(doc["value"]),
                   tuple((k, _unb64(v)) for k, v in doc["headers"]), doc.get("detail", ""),
                   int(doc.get("checks", 0)))


class ParkingLot:
    """The in-memory view of the parking table. Thread-safe: the follower thread applies
    changelog records while the event loop reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, ParkEntry] = {}
        self._by_dependency: dict[str, set[str]] = {}
        self._busy: set[str] = set()  # being released or expired right now

    def __len__(self) -> int:
        return len(self._entries)

    def apply(self, entry_id: str, entry: ParkEntry | None) -> None:
        """One changelog record: an entry (parked or re-parked) or a tombstone (None)."""
        with self._lock:
            old = self._entries.pop(entry_id, None)
            if old is not None:
                ids = self._by_dependency.get(old.dependency.lower(), set())
                ids.discard(entry_id)
                if not ids:
                    self._by_dependency.pop(old.dependency.lower(), None)
            if entry is not None:
                self._entries[entry_id] = entry
                # externalIds match case-insensitively in NetSuite.
                self._by_dependency.setdefault(entry.dependency.lower(), set()).add(entry_id)
            self._busy.discard(entry_id)

    def apply_record(self, key: bytes | None, value: bytes | None) -> None:
        """A record of ``tillbridge.parked.v1`` as read back from Kafka."""
        if key is None:
            return
        self.apply(key.decode(), ParkEntry.from_json(value) if value else None)

    def _claim(self, ids: list[str]) -> list[ParkEntry]:
        out = []
        for entry_id in ids:
            if entry_id in self._busy or entry_id not in self._entries:
                continue
            self._busy.add(entry_id)
            out.append(self._entries[entry_id])
        return out

    def claim_waiting_on(self, external_id: str, owned: set[int]) -> list[ParkEntry]:
        """Entries waiting for ``external_id`` on partitions this worker owns, marked busy
        (a second claim skips them until the entry is removed or ``unclaim``-ed)."""
        with self._lock:
            ids = [i for i in sorted(self._by_dependency.get(external_id.lower(), ()))
                   if self._entries[i].partition in owned]
            return self._claim(ids)

    def claim_due(self, owned: set[int]) -> list[ParkEntry]:
        """Every owned entry, for the periodic sweep (re-check or expire), marked busy."""
        with self._lock:
            ids = sorted(i for i, e in self._entries.items() if e.partition in owned)
            return self._claim(ids)

    def unclaim(self, entry_id: str) -> None:
        with self._lock:
            self._busy.discard(entry_id)

    def get(self, entry_id: str) -> ParkEntry | None:
        with self._lock:
            return self._entries.get(entry_id)


def tombstone(entry_id: str) -> tuple[str, bytes, None]:
    """(topic, key, value) that removes an entry from the table."""
    return topics.PARKED, entry_id.encode(), None


def parked_source(entry: ParkEntry) -> Source:
    """A parked event as the routed record it was (its routed offset is not kept: -1)."""
    return Source(topics.ROUTED_REALTIME, entry.partition, -1, entry.key, entry.value,
                  list(entry.headers))


def released(entry: ParkEntry, outs: list[Outbound]) -> list[Outbound]:
    """A released event's outcome, then the tombstone that takes it off the parking table,
    unless it parked again (same id: it waits on something else now)."""
    if any(o.topic == topics.PARKED and o.key == entry.id.encode() for o in outs):
        return outs
    metrics.PARK_OUTCOMES.labels("released").inc()
    return [*outs, Outbound(*tombstone(entry.id))]
