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

Pages: a busy store's window can hold tens of thousands of members, more than one record
may carry (10,000 movements made a 3.5 MB record: the broker's 1 MB limit refused it and
the window could never be booked, so its store stopped). Members beyond ``PAGE_BYTES`` go
on pages of their own, keyed ``<window id>#members/<n>``, produced before the window's
record, which then says how many pages it has (``member_pages``) and carries none; later
states of the window write the record alone. A reader exposes such a window only once it
holds every page (pages and record may arrive in any order), and retention tombstones the
pages with the record.

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
#: members of one window beyond this many bytes of JSON go on pages (well below the
#: broker's 1 MB default, with room for the record's framing and headers)
PAGE_BYTES = 256 * 1024
PAGE_SEP = "#members/"


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
    #: pages the members are on (``page_messages``); 0: in this record
    member_pages: int = 0

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
        if self.member_pages:
            doc["members"] = {}  # on its pages
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    def paged(self, page_bytes: int = PAGE_BYTES) -> tuple[WindowRecord, list[bytes]]:
        """This record as it is first booked: itself and no pages when its members fit in
        ``page_bytes``; else the record with ``member_pages`` set, and its pages' values
        (``page_key(wid, n)``), to be produced before it. One encoding of the members
        sizes them; a page still over the limit is halved (entries of uneven size)."""
        ids = list(self.members)
        whole = len(json.dumps(self.members, separators=(",", ":")))
        if whole <= page_bytes:
            return replace(self, member_pages=0), []
        per = max(1, len(ids) * page_bytes // whole)
        values: list[bytes] = []
        chunks = [ids[i:i + per] for i in range(0, len(ids), per)]
        while chunks:
            chunk = chunks.pop(0)
            value = json.dumps({"wid": self.wid, "page": len(values),
                                "members": {mid: self.members[mid] for mid in chunk}},
                               separators=(",", ":")).encode()
            if len(value) > page_bytes and len(chunk) > 1:
                half = len(chunk) // 2
                chunks[:0] = [chunk[:half], chunk[half:]]
                continue
            values.append(value)
        return replace(self, member_pages=len(values)), values

    @classmethod
    def from_json(cls, raw: bytes) -> WindowRecord:
        doc = json.loads(raw)
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})


def page_key(wid: str, n: int) -> bytes:
    return f"{wid}{PAGE_SEP}{n}".encode()


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
        #: paged windows not yet whole: their latest record, and the pages read so far
        self._waiting: dict[str, WindowRecord] = {}
        self._pages: dict[str, dict[int, dict[str, list[Any]]]] = {}
        self._lock = threading.Lock()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic (a tombstone forgets the window)."""
        if key is None:
            return
        wid, sep, page = key.decode().partition(PAGE_SEP)
        with self._lock:
            if sep:
                self._apply_page(wid, int(page) if page.isdigit() else -1, value)
                return
            record = WindowRecord.from_json(value) if value is not None else None
            if record is None:
                self.records.pop(wid, None)
                self._waiting.pop(wid, None)
            elif record.member_pages:
                self._apply_paged(record)
            else:
                self._keep(record)

    def _keep(self, record: WindowRecord) -> None:
        held = self.records.get(record.wid)
        if not (record.state == "closing" and held is not None and held.final):
            self.records[record.wid] = record  # a final state is never taken back

    def _apply_paged(self, record: WindowRecord) -> None:
        """A paged window's record: whole at once when its members are known (a later
        state of a window read before), else once its last page is read."""
        held = self.records.get(record.wid)
        if held is not None and held.members:
            self._keep(replace(record, members=held.members))
            return
        waiting = self._waiting.get(record.wid)
        if not (record.state == "closing" and waiting is not None and waiting.final):
            self._waiting[record.wid] = record
        self._assemble(record.wid)

    def _apply_page(self, wid: str, n: int, value: bytes | None) -> None:
        if n < 0:
            return
        if value is None:  # retention's tombstone
            self._pages.get(wid, {}).pop(n, None)
            return
        if wid in self.records:  # whole already (a page read again)
            return
        self._pages.setdefault(wid, {})[n] = json.loads(value)["members"]
        self._assemble(wid)

    def _assemble(self, wid: str) -> None:
        record, pages = self._waiting.get(wid), self._pages.get(wid, {})
        if record is None or any(n not in pages for n in range(record.member_pages)):
            return
        members: dict[str, list[Any]] = {}
        for n in range(record.member_pages):
            members.update(pages[n])
        del self._waiting[wid], self._pages[wid]
        self._keep(replace(record, members=members))

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
                self._waiting.pop(wid, None)
                self._pages.pop(wid, None)

    def unfinished(self, flow: str) -> list[WindowRecord]:
        """Closed but not confirmed (the worker stopped between book and post)."""
        return sorted((r for r in self.of_flow(flow) if not r.final), key=lambda r: r.start)
