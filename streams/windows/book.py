"""The window book: one durable record per closed window, on the compacted topic
``tillbridge.windows.v1`` keyed by window id. It is what makes a window's content fixed
once it closed, whatever happens to the worker or the consumer group afterwards.

Why a book and not a Faust windowed table: the open windows are a pure function of the
input records read since the last committed offset (the window agent commits an input
offset only after every window holding a record at or before it is posted), so they need
no changelog of their own: a restart, a rebalance, or Tansu's restarted worker joining as a
new group and reading from the start, all rebuild them by reading again. What is not a
function of the input is *when* a window closed (the wall clock closes a quiet store's
window), so that decision is written here before the window is posted, with the ids of its
members: read again, a member of a closed window is "counted" (never a second time), and
any other record of that window is late (it goes to the next open window). Faust's
windowed tables keep their own changelog and recover by the high watermark, which Tansu
reports wrong (``runtime/state.py``); this book is read by ``connectors/kafka/reader.py``
to the end, on Tansu and Apache Kafka alike.

Retention (``TILLBRIDGE_WINDOW_RETAIN_S``): a final window that ended that long before its
key's latest closed window is forgotten, here and on the topic (a tombstone), so memory and
the topic stay bounded; the window engine then refuses, as ``window_expired``, any record
older than that horizon that it no longer knows (it may be one of the forgotten members),
so a forgotten window is never rebuilt and re-posted with other content. The latest window
of each key is never forgotten: the frontier, and the horizon, survive restarts.

States: ``closing`` (content fixed, not yet confirmed in NetSuite), ``posted`` (NetSuite
holds it; ``netsuite_id``), ``empty`` (nothing to post: every line netted to zero),
``conflict`` (NetSuite holds a record under this window's externalId with other content:
never re-posted, its members dead-lettered as ``window_conflict``), ``refused`` (NetSuite
refused the record: its members dead-lettered with NetSuite's reason).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

STATES = frozenset({"closing", "posted", "empty", "conflict", "refused"})


@dataclass(frozen=True, slots=True)
class WindowRecord:
    wid: str
    flow: str
    key: str
    start: str  # ISO
    end: str
    external_id: str
    state: str
    #: member id -> [event time ISO, late?]
    members: dict[str, list[Any]] = field(default_factory=dict)
    content: str = ""  # digest of what is (to be) posted, see ``digest``
    netsuite_id: str | None = None
    #: the NetSuite body to post (JSON: quantities as strings), so a window closed before a
    #: crash is posted after it from the book alone
    body: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"window {self.wid}: unknown state {self.state!r}")

    @property
    def final(self) -> bool:
        return self.state != "closing"

    def with_state(self, state: str, netsuite_id: str | None = None) -> WindowRecord:
        return replace(self, state=state, netsuite_id=netsuite_id or self.netsuite_id)

    def to_json(self) -> bytes:
        # shallow: every field is JSON already (asdict's deep copy of a few thousand
        # members cost ~30 ms a window, profiled)
        doc = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> WindowRecord:
        doc = json.loads(raw)
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


def digest(lines: Iterable[tuple[str, str]]) -> str:
    """SHA-256 (first 16 hex) of a window's net (item, quantity) pairs, order-free."""
    canon = "\n".join(f"{item}={qty}" for item, qty in sorted(lines))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def members_of(members: Mapping[str, tuple[datetime, bool]]) -> dict[str, list[Any]]:
    return {mid: [t.isoformat(), late] for mid, (t, late) in sorted(members.items())}


class WindowBook:
    """The latest record of every window, loaded from the topic and kept as it is written
    (by a follower thread: every access holds the lock)."""

    def __init__(self) -> None:
        self.records: dict[str, WindowRecord] = {}
        self._lock = threading.Lock()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic (a tombstone forgets the window)."""
        if key is None:
            return
        wid = key.decode()
        record = WindowRecord.from_json(value) if value is not None else None
        with self._lock:
            if record is None:
                self.records.pop(wid, None)
            elif not (record.state == "closing" and wid in self.records
                      and self.records[wid].final):
                self.records[wid] = record  # a final state is never taken back

    def put(self, record: WindowRecord) -> None:
        with self._lock:
            self.records[record.wid] = record

    def get(self, wid: str) -> WindowRecord | None:
        with self._lock:
            return self.records.get(wid)

    def of_flow(self, flow: str) -> list[WindowRecord]:
        with self._lock:
            return [r for r in self.records.values() if r.flow == flow]

    def known(self, flow: str) -> dict[str, str]:
        """Member id -> window id, for every closed window of ``flow``."""
        return {mid: r.wid for r in self.of_flow(flow) for mid in r.members}

    def frontiers(self, flow: str) -> dict[str, datetime]:
        """Per key, the end of its latest closed window: windows before it are closed."""
        out: dict[str, datetime] = {}
        for r in self.of_flow(flow):
            end = datetime.fromisoformat(r.end)
            if r.key not in out or end > out[r.key]:
                out[r.key] = end
        return out

    def closed(self, flow: str) -> dict[str, tuple[str, datetime, list[str]]]:
        """Final windows of ``flow``: id -> key, end, member ids (what retention weighs)."""
        return {r.wid: (r.key, datetime.fromisoformat(r.end), list(r.members))
                for r in self.of_flow(flow) if r.final}

    def forget(self, wids: Iterable[str]) -> None:
        with self._lock:
            for wid in wids:
                self.records.pop(wid, None)

    def unfinished(self, flow: str) -> list[WindowRecord]:
        """Closed but not confirmed (the worker stopped between book and post)."""
        return sorted((r for r in self.of_flow(flow) if not r.final), key=lambda r: r.start)
