"""Tumbling event-time windows per key: the state machine, pure (no Kafka, no clock).

Semantics (README "Window engine"):

- A record with event time ``t`` belongs to the window ``[start, start + size)`` with
  ``start = floor(t / size) * size`` (UTC epoch aligned), of its key (a store/location).
- Each key has a **frontier**: windows that start before it are closed. Event time moves it
  to ``floor((watermark - grace) / size) * size``, where the watermark is the latest event
  time the key has seen: a window closes once an event ``grace`` past its end arrives. The
  wall clock moves it too (``tick``), but only for a key with an open window that has been
  quiet for ``idle`` seconds: a quiet store's window still closes, and a backfill of old
  events (arriving without pause) is closed by its own event time, not all at once by the
  clock.
- A record whose window is closed is **late**: it goes to the key's next open window (the
  earliest open one at or after the frontier, else the one starting at the frontier), its
  original event time kept on the member. Nothing is dropped.
- A member id seen before (in an open window, or in a closed one the ``known`` map says
  held it) is a duplicate: a replay after a restart or a POS double send, never counted
  twice.
- Window ids are deterministic: ``<flow>:<key>:<start ISO>``.
- **Retention** (``retain_s``, 0: keep every closed window): a key's closed windows that
  ended more than ``retain_s`` before its frontier are forgotten (``expire``), so memory is
  bounded. Each key keeps its **horizon** (frontier - retain_s): a record older than it whose
  id is not known is ``expired``, never put in a window, because it may be a member of a
  forgotten window (a replay) and must not be counted twice; the caller dead-letters it.

Closed windows leave the engine through ``take_ready()``; the caller records them in the
window book and posts them (``runtime/windows.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """Window size, grace for late events, and how long a key must be quiet before the wall
    clock closes its windows (seconds)."""

    size_s: float
    grace_s: float = 0.0
    idle_s: float = 0.0
    #: closed windows this long (event time) before their key's frontier are forgotten
    retain_s: float = 0.0
    #: a schedule instead of a length: window edges at these minutes after local midnight
    #: in the key's time zone (``WindowEngine(zone=...)``); ``size_s`` is then unused
    schedule: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.size_s <= 0 or self.grace_s < 0 or self.idle_s < 0 or self.retain_s < 0:
            raise ValueError(f"bad window spec {self}: size > 0, grace, idle, retain >= 0")


def _utc(t: datetime) -> datetime:
    if t.tzinfo is UTC:  # what the Avro decoder gives: nothing to convert (the hot path)
        return t
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def window_start(t: datetime, size_s: float) -> datetime:
    """The start of the window holding ``t`` (aligned to the UNIX epoch, UTC; whole
    microseconds, so the same instant always gives the same start)."""
    size_us = round(size_s * 1_000_000)
    elapsed = (_utc(t) - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=(elapsed // size_us) * size_us)


def scheduled_bounds(t: datetime, schedule: tuple[int, ...], tz: str) -> tuple[datetime,
                                                                                datetime]:
    """The window of a daily ``schedule`` (minutes after local midnight in ``tz``) holding
    ``t``: from the latest edge at or before it to the next edge (UTC)."""
    zone = ZoneInfo(tz)
    local = _utc(t).astimezone(zone)
    edges = []
    for days in (-1, 0, 1):
        day = (local + timedelta(days=days)).date()
        for minute in schedule:
            naive = datetime(day.year, day.month, day.day, minute // 60, minute % 60)
            edges.append(naive.replace(tzinfo=zone).astimezone(UTC))
    edges.sort()
    t = _utc(t)
    i = max(i for i, e in enumerate(edges) if e <= t)
    return edges[i], edges[i + 1]


def iso(t: datetime) -> str:
    """A window start as it appears in ids: UTC, ``Z``, milliseconds only when needed."""
    t = _utc(t)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += f".{t.microsecond // 1000:03d}"
    return text + "Z"


def window_id(flow: str, key: str, start: datetime) -> str:
    """Deterministic: the same flow, key and start always name the same window."""
    return f"{flow}:{key}:{iso(start)}"


@dataclass(frozen=True, slots=True)
class Member(Generic[T]):
    """One record in a window: its id, original event time, whether it came late (its own
    window was closed), its payload, and the handles to release once the window posted."""

    member_id: str
    event_time: datetime
    late: bool
    item: T


@dataclass(slots=True)
class Window(Generic[T]):
    wid: str
    key: str
    start: datetime
    end: datetime
    members: dict[str, Member[T]] = field(default_factory=dict)
    #: opaque handles (e.g. Kafka events) of every record that joined, duplicates included:
    #: all are released together once the window is posted
    handles: list[Any] = field(default_factory=list)


Verdict = Literal["added", "late", "duplicate", "counted", "expired"]


@dataclass(frozen=True, slots=True)
class Added:
    """Where ``add`` put a record: ``added`` / ``late`` into ``wid``; ``duplicate`` of a
    member of open window ``wid``; ``counted``: a member of closed window ``wid``;
    ``expired``: older than its key's retention horizon and not known (``wid`` empty)."""

    verdict: Verdict
    wid: str


@dataclass(slots=True)
class _Key:
    watermark: datetime | None = None
    #: the event time the key's windows are closed up to (before the grace): its
    #: watermark, held back to the input's low watermark when one is given
    edge: datetime | None = None
    frontier: datetime | None = None
    last_seen: float = 0.0  # wall clock of the last record, for the quiet-store close
    #: end of the key's latest closed window (what the window book says after a restart):
    #: the retention horizon counts back from it, so it is the same before and after one
    closed_end: datetime | None = None
    #: the end of the frontier's window: ``_advance`` to an edge before it moves nothing,
    #: and returns before any window arithmetic (a record's cost, ``bench.lane_profile``);
    #: None: not known yet
    next_start: datetime | None = None
    #: the retention horizon and the ``closed_end`` it was counted back from (kept: it
    #: is asked once a record)
    horizon: datetime | None = None
    horizon_of: datetime | None = None


class WindowEngine(Generic[T]):
    """Open windows of every key of one flow. ``known`` maps member ids of closed windows to
    their window ids (from the window book), ``frontiers`` each key's frontier after them."""

    def __init__(self, flow: str, spec: WindowSpec, *,
                 known: dict[str, str] | None = None,
                 frontiers: dict[str, datetime] | None = None,
                 zone: Callable[[str], str] = lambda _key: "UTC") -> None:
        self.flow = flow
        self.spec = spec
        self._zone = zone
        self.known: dict[str, str] = dict(known or {})
        self._keys: dict[str, _Key] = {k: _Key(frontier=f, closed_end=f)
                                       for k, f in (frontiers or {}).items()}
        self._open: dict[str, Window[T]] = {}
        self._ready: list[Window[T]] = []
        self._wids: dict[tuple[str, datetime], str] = {}
        #: the last fixed-length window found (start, end): the next record's is the same
        #: one almost always, and a hit saves the epoch arithmetic
        self._last: tuple[datetime, datetime] | None = None
        self._grace = timedelta(seconds=spec.grace_s)
        self._retain = timedelta(seconds=spec.retain_s)

    # -- queries -----------------------------------------------------------------------
    @property
    def open_windows(self) -> list[Window[T]]:
        return sorted(self._open.values(), key=lambda w: (w.key, w.start))

    def frontier(self, key: str) -> datetime | None:
        state = self._keys.get(key)
        return state.frontier if state is not None else None

    def _start(self, key: str, t: datetime) -> datetime:
        if self.spec.schedule:
            return scheduled_bounds(t, self.spec.schedule, self._zone(key))[0]
        last = self._last  # fixed windows are aligned to the epoch: the same for every key
        if last is not None and last[0] <= t < last[1]:
            return last[0]
        start = window_start(t, self.spec.size_s)
        self._last = (start, start + timedelta(seconds=self.spec.size_s))
        return start

    def _end(self, key: str, start: datetime) -> datetime:
        if self.spec.schedule:
            return scheduled_bounds(start, self.spec.schedule, self._zone(key))[1]
        return start + timedelta(seconds=self.spec.size_s)

    def _window(self, key: str, start: datetime) -> Window[T]:
        wid = self._wids.get((key, start))
        if wid is None:  # one id per open window, not one strftime per record
            wid = self._wids[(key, start)] = window_id(self.flow, key, start)
        win = self._open.get(wid)
        if win is None:
            win = self._open[wid] = Window(wid, key, start, self._end(key, start))
        return win

    # -- input -------------------------------------------------------------------------
    def add(self, key: str, member_id: str, event_time: datetime, item: T,
            handle: Any = None, now: float = 0.0, low: datetime | None = None) -> Added:
        """Put one record in its window (or the next open one when late); closes the key's
        windows its event time leaves behind (``take_ready``).

        ``low``: the input's low watermark, when a key's records come from several input
        partitions read at different paces (the inventory lane): the key's windows close
        no further than it, so a record of a partition read behind the others is not
        taken for late (``runtime/window_lane.py`` keeps it)."""
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key()
        state.last_seen = now
        seen = self.known.get(member_id)
        if seen is not None:
            if seen in self._open:
                self._open[seen].handles.append(handle)
                return Added("duplicate", seen)
            return Added("counted", seen)
        t = _utc(event_time)
        horizon = self._horizon(state)
        if horizon is not None and t < horizon:
            return Added("expired", "")
        start = self._start(key, t)
        late = state.frontier is not None and start < state.frontier
        if late:
            assert state.frontier is not None
            after = [w for w in self._open.values() if w.key == key and w.start >= state.frontier]
            win = min(after, key=lambda w: w.start) if after else self._window(key,
                                                                                state.frontier)
        else:
            win = self._window(key, start)
        win.members[member_id] = Member(member_id, t, late, item)
        win.handles.append(handle)
        self.known[member_id] = win.wid
        if state.watermark is None or t > state.watermark:
            state.watermark = t
        self._raise_edge(key, state, low)
        return Added("late" if late else "added", win.wid)

    def release(self, low: datetime | None) -> None:
        """The input's low watermark moved (``add``'s ``low``): every key's windows close
        up to its own watermark held back to ``low`` (None: not held back), without
        waiting for the key's next record."""
        for key, state in self._keys.items():
            self._raise_edge(key, state, low)

    def _raise_edge(self, key: str, state: _Key, low: datetime | None) -> None:
        """The key's edge: its watermark held back to ``low``; a rise closes what it
        leaves ``grace`` behind."""
        mark = state.watermark
        if mark is None:
            return
        edge = mark if low is None or low > mark else low
        if state.edge is None or edge > state.edge:
            state.edge = edge
            self._advance(key, state, edge - self._grace)

    def tick(self, now: float) -> None:
        """Wall clock ``now`` (UNIX seconds): every key quiet for ``idle`` closes the
        windows that ended ``grace`` before now."""
        edge = datetime.fromtimestamp(now - self.spec.grace_s, UTC)
        busy = {w.key for w in self._open.values()}  # nothing to close for the others
        for key, state in self._keys.items():
            if key in busy and now - state.last_seen >= self.spec.idle_s:
                self._advance(key, state, edge)

    def _advance(self, key: str, state: _Key, edge: datetime) -> None:
        """Move the key's frontier to the start of the window holding ``edge``."""
        if state.next_start is not None and edge < state.next_start:
            return  # still in the frontier's window
        frontier = self._start(key, edge)
        if state.frontier is not None and frontier <= state.frontier:
            state.next_start = self._end(key, state.frontier)
            return
        state.frontier = frontier
        # frontiers only move forward (``learn`` too): one moved elsewhere leaves this
        # behind it, which costs one more ``_start``, never a missed close
        state.next_start = self._end(key, frontier)
        for wid, win in list(self._open.items()):
            if win.key == key and win.start < frontier:
                self._ready.append(self._open.pop(wid))
                self._wids.pop((key, win.start), None)
                if state.closed_end is None or win.end > state.closed_end:
                    state.closed_end = win.end

    def horizon(self, key: str) -> datetime | None:
        """Records older than this were in windows retention forgot (None: keep all)."""
        state = self._keys.get(key)
        return self._horizon(state) if state is not None else None

    def _horizon(self, state: _Key) -> datetime | None:
        closed_end = state.closed_end
        if closed_end is None or not self.spec.retain_s:
            return None
        if state.horizon_of is not closed_end:
            state.horizon, state.horizon_of = closed_end - self._retain, closed_end
        return state.horizon

    def expire(self, closed: Mapping[str, tuple[str, datetime, Iterable[str]]]) -> list[str]:
        """Of ``closed`` (the window book's final windows: id -> key, end, member ids), the
        ones retention lets go, counted back from each key's latest closed end *in the
        book* (what a restart sees); their member ids leave the duplicate check."""
        if not self.spec.retain_s:
            return []
        latest: dict[str, datetime] = {}
        for key, end, _m in closed.values():
            if key not in latest or _utc(end) > latest[key]:
                latest[key] = _utc(end)
        keep = timedelta(seconds=self.spec.retain_s)
        gone = []
        for wid, (key, end, members) in closed.items():
            if _utc(end) <= latest[key] - keep:
                self.forget(members)
                gone.append(wid)
        return sorted(gone)

    def take_ready(self) -> list[Window[T]]:
        """Windows closed since the last call, oldest first."""
        ready, self._ready = self._ready, []
        return sorted(ready, key=lambda w: (w.start, w.key))

    def give_back(self, windows: Iterable[Window[T]]) -> None:
        """Closed windows whose close failed: ready again, first, for the next try."""
        self._ready[:0] = windows

    def forget(self, member_ids: Iterable[str]) -> None:
        """Drop member ids from the duplicate check (retention of old windows)."""
        for mid in member_ids:
            self.known.pop(mid, None)

    def learn(self, known: dict[str, str], frontiers: dict[str, datetime]) -> None:
        """What other workers closed (the window book, read again after a rebalance): their
        members count as seen, and the frontier of each key with no open window here moves
        up to theirs (a key with open windows is being read here: its own records decide)."""
        for mid, wid in known.items():
            self.known.setdefault(mid, wid)
        busy = {w.key for w in self._open.values()}
        for key, frontier in frontiers.items():
            state = self._keys.setdefault(key, _Key())
            if key not in busy and (state.frontier is None or frontier > state.frontier):
                state.frontier = frontier
            if state.closed_end is None or frontier > state.closed_end:
                state.closed_end = frontier

    def drop(self, wid: str) -> Window[T] | None:
        """Forget an open (or ready) window unposted: its partition moved to another worker,
        which reads its records again from the committed offset."""
        win = self._open.pop(wid, None)
        if win is not None:
            self._wids.pop((win.key, win.start), None)
        if win is None:
            found = [w for w in self._ready if w.wid == wid]
            win = found[0] if found else None
            self._ready = [w for w in self._ready if w.wid != wid]
        if win is not None:
            self.forget(mid for mid, w in list(self.known.items()) if w == wid)
        return win
