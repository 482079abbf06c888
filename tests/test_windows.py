"""The window engine, pure: event time is given explicitly, the wall clock is a number
passed to ``tick`` (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tillbridge.streams.windows.book import WindowBook, WindowRecord, digest
from tillbridge.streams.windows.engine import (
    WindowEngine,
    WindowSpec,
    iso,
    window_id,
    window_start,
)

T0 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)  # a window start for 60 s windows
SPEC = WindowSpec(size_s=60, grace_s=10, idle_s=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def engine(**kw: object) -> WindowEngine[str]:
    return WindowEngine("inventory", SPEC, **kw)  # type: ignore[arg-type]


def members(win: object) -> dict[str, bool]:
    return {m.member_id: m.late for m in win.members.values()}  # type: ignore[attr-defined]


def test_window_ids_are_deterministic_and_aligned() -> None:
    assert window_start(at(59.999), 60) == T0 and window_start(at(60), 60) == at(60)
    assert window_id("inventory", "S001", window_start(at(42), 60)) == \
        "inventory:S001:2026-11-26T15:00:00Z"
    assert iso(datetime(2026, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)) == "2026-01-01T00:00:00.250Z"
    # naive times are UTC; another zone is the same instant
    plus_one = datetime(2026, 11, 26, 16, 0, 30, tzinfo=UTC).astimezone(
        __import__("datetime").timezone(timedelta(hours=1)))
    assert window_start(plus_one, 60) == datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        WindowSpec(size_s=0)


def test_event_time_closes_a_window_after_its_grace() -> None:
    e = engine()
    e.add("S001", "m1", at(5), "a")
    e.add("S001", "m2", at(65), "b")  # next window; 65 < 60 + 10: the first is still open
    assert e.take_ready() == []
    e.add("S001", "m3", at(69.9), "c")
    assert e.take_ready() == []
    e.add("S001", "m4", at(70), "d")  # watermark reaches end + grace
    [closed] = e.take_ready()
    assert closed.wid == "inventory:S001:2026-11-26T15:00:00Z" and members(closed) == {"m1": False}
    assert [w.wid for w in e.open_windows] == ["inventory:S001:2026-11-26T15:01:00Z"]


def test_late_within_grace_joins_its_own_window() -> None:
    e = engine()
    e.add("S001", "m1", at(5), "a")
    e.add("S001", "m2", at(66), "b")
    added = e.add("S001", "m3", at(50), "late but within grace")
    assert added.verdict == "added" and added.wid.endswith("15:00:00Z")
    e.add("S001", "m4", at(71), "d")
    [closed] = e.take_ready()
    assert members(closed) == {"m1": False, "m3": False}


def test_beyond_grace_goes_to_the_next_open_window_with_its_time_kept() -> None:
    e = engine()
    e.add("S001", "m1", at(5), "a")
    e.add("S001", "m2", at(75), "b")  # closes [0, 60)
    assert len(e.take_ready()) == 1
    added = e.add("S001", "m3", at(30), "too late")
    assert added.verdict == "late" and added.wid.endswith("15:01:00Z")
    e.add("S001", "m4", at(200), "far ahead")  # closes [60, 120)
    [closed] = e.take_ready()
    assert members(closed) == {"m2": False, "m3": True}
    assert closed.members["m3"].event_time == at(30), "the original event time is kept"


def test_late_with_no_open_window_opens_the_one_at_the_frontier() -> None:
    e = engine()
    e.add("S001", "m1", at(5), "a")
    e.tick(at(100).timestamp())  # the store was never heard of again: wall clock closes
    assert len(e.take_ready()) == 1
    added = e.add("S001", "m2", at(10), "late")
    assert added.verdict == "late" and added.wid == window_id("inventory", "S001", at(60))


def test_a_quiet_store_closes_on_the_wall_clock_only_when_quiet() -> None:
    e = engine()
    e.add("S001", "m1", at(5), "a", now=at(5).timestamp())
    e.tick(at(69).timestamp())  # end + grace not reached
    assert e.take_ready() == []
    e.add("S002", "x1", at(6), "b", now=at(80).timestamp())  # S002 just heard from
    e.tick(at(90).timestamp())  # S001 quiet 85 s >= idle 30; S002 quiet 10 s
    [closed] = e.take_ready()
    assert closed.key == "S001"
    e.tick(at(110).timestamp())  # S002 quiet 30 s now
    assert [w.key for w in e.take_ready()] == ["S002"]


def test_a_backfill_is_closed_by_its_event_time_not_by_the_clock() -> None:
    """Old events arriving without pause: the clock is far ahead, but the key is not quiet."""
    e = engine()
    now = at(86_400).timestamp()
    for i in range(5):
        e.add("S001", f"m{i}", at(i * 20), str(i), now=now)
        e.tick(now)
    closed = e.take_ready()
    assert [members(w) for w in closed] == [{"m0": False, "m1": False, "m2": False}]


def test_duplicates_and_counted_members_are_never_added_twice() -> None:
    e = engine(known={"old": "inventory:S001:2026-11-26T14:59:00Z"})
    assert e.add("S001", "old", at(1), "x").verdict == "counted"
    assert e.add("S001", "m1", at(1), "a").verdict == "added"
    dup = e.add("S001", "m1", at(1), "a again")
    assert dup.verdict == "duplicate" and dup.wid.endswith("15:00:00Z")
    [win] = e.open_windows
    assert members(win) == {"m1": False}


def test_keys_are_independent() -> None:
    e = engine()
    e.add("S001", "a", at(5), "a")
    e.add("S002", "b", at(5), "b")
    e.add("S001", "c", at(80), "c")
    assert [w.key for w in e.take_ready()] == ["S001"]
    assert {w.key for w in e.open_windows} == {"S001", "S002"}


def test_restart_from_the_book_gives_the_same_windows() -> None:
    """Replaying the same input after a restart: members the book holds are counted, late
    ones of a closed window go on to the next, the open window is built again the same."""
    book = WindowBook()
    closed = WindowRecord("inventory:S001:2026-11-26T15:00:00Z", "inventory", "S001",
                          T0.isoformat(), at(60).isoformat(), "pos-adj-S001-x", "posted",
                          {"m1": [at(5).isoformat(), False]}, digest([("1001", "-1")]), "7")
    book.apply(closed.wid.encode(), closed.to_json())
    e = engine(known=book.known("inventory"), frontiers=book.frontiers("inventory"))
    assert e.add("S001", "m1", at(5), "a").verdict == "counted"
    assert e.add("S001", "m9", at(30), "never seen").verdict == "late"
    assert e.add("S001", "m2", at(65), "b").verdict == "added"
    [win] = e.open_windows
    assert members(win) == {"m9": True, "m2": False}


def test_the_book_never_takes_a_final_state_back() -> None:
    book = WindowBook()
    rec = WindowRecord("w", "inventory", "S001", T0.isoformat(), at(60).isoformat(), "e",
                       "closing")
    book.apply(b"w", rec.with_state("posted", "9").to_json())
    book.apply(b"w", rec.to_json())  # an older closing record read after the final one
    assert book.get("w") is not None and book.get("w").state == "posted"  # type: ignore[union-attr]
    assert book.unfinished("inventory") == []
    book.apply(b"w", None)
    assert book.get("w") is None
    with pytest.raises(ValueError):
        WindowRecord("w", "inventory", "S001", "", "", "e", "bogus")


def test_digest_ignores_order() -> None:
    assert digest([("1", "2"), ("3", "-1")]) == digest([("3", "-1"), ("1", "2")])
    assert digest([("1", "2")]) != digest([("1", "3")])


def test_the_clock_moves_no_key_without_an_open_window() -> None:
    """After a restart the book's keys have no open window: the clock must not make their
    next (old) events late."""
    e = engine(frontiers={"S001": at(60)})
    e.tick(at(86_400).timestamp())
    assert e.add("S001", "m1", at(70), "a").verdict == "added"
    assert e.frontier("S001") == at(60)


def _close_into(book: WindowBook, e: WindowEngine[str]) -> None:
    """What the agent does with closed windows: book them final (posted)."""
    for win in e.take_ready():
        book.put(WindowRecord(win.wid, "inventory", win.key, win.start.isoformat(),
                              win.end.isoformat(), "x", "posted",
                              {mid: [m.event_time.isoformat(), m.late]
                               for mid, m in win.members.items()}))


def test_retention_forgets_old_windows_and_never_counts_their_members_again() -> None:
    """Retention of 2 windows: memory is bounded (the book and the duplicate check keep
    only recent windows), a replayed member of a forgotten window is ``expired`` (never
    added to a new window), and a restart from the retained book draws the same line."""
    spec = WindowSpec(size_s=60, grace_s=10, idle_s=30, retain_s=120)
    book = WindowBook()
    e: WindowEngine[str] = WindowEngine("inventory", spec)
    for i in range(10):  # one movement a minute: windows 15:00 .. 15:09
        e.add("S001", f"m{i}", at(60 * i + 5), "x")
        _close_into(book, e)
    assert len(book.closed("inventory")) == 8  # 15:00 .. 15:07 closed (15:08 waits grace)
    gone = e.expire(book.closed("inventory"))
    book.forget(gone)
    # latest closed ends 15:08; windows that ended at or before 15:06 are forgotten
    assert gone == [window_id("inventory", "S001", at(60 * i)) for i in range(6)]
    assert len(book.records) == 2 and "m0" not in e.known and "m7" in e.known
    assert e.add("S001", "m0", at(5), "replayed").verdict == "expired"
    assert e.add("S001", "m6", at(365), "replayed").verdict == "counted"
    assert e.add("S001", "m-new", at(370), "late but retained").verdict == "late"
    assert all("m0" not in w.members for w in e.open_windows)
    # a restart from what the book kept: the same horizon, the same verdicts
    again: WindowEngine[str] = WindowEngine("inventory", spec, known=book.known("inventory"),
                                            frontiers=book.frontiers("inventory"))
    assert again.horizon("S001") == e.horizon("S001") == at(360)
    assert again.add("S001", "m0", at(5), "replayed").verdict == "expired"
    assert again.add("S001", "m6", at(365), "replayed").verdict == "counted"


def test_no_retention_keeps_every_window() -> None:
    e = engine()
    book = WindowBook()
    for i in range(5):
        e.add("S001", f"m{i}", at(60 * i + 5), "x")
        _close_into(book, e)
    assert e.expire(book.closed("inventory")) == [] and e.horizon("S001") is None
    assert e.add("S001", "m0", at(5), "replayed").verdict == "counted"


def test_the_last_window_kept_for_speed_never_changes_which_window_a_time_is_in() -> None:
    """The engine remembers the last fixed window it found; times jumping back and forth
    across edges (and a zone other than UTC) must still get ``window_start``'s answer."""
    import random
    from datetime import timezone as tz

    from tillbridge.streams.windows.engine import window_start

    engine: WindowEngine[int] = WindowEngine("inventory", WindowSpec(90.5, 0, 0, 0))
    rng, base = random.Random(3), datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    for _ in range(2000):
        t = base + timedelta(seconds=rng.choice((rng.uniform(0, 400), 181, 90.5, 0)))
        if rng.random() < 0.1:
            t = t.astimezone(tz(timedelta(hours=-8)))
        assert engine._start("k", t) == window_start(t, 90.5), t


def test_a_partition_moved_away_and_back_posts_its_window_once() -> None:
    """A rebalance, engine by engine: worker A drops its open window unposted (its
    partition went to B, which reads the records again from the committed offset); B
    builds the same window id and posts it; when the partition comes back, A learns B's
    window from the book: the members count as seen, and a straggler of that window goes
    on to the next one instead of reopening it."""
    a, b = engine(), engine()
    a.add("S001", "m1", at(5), "a")
    a.add("S001", "m2", at(20), "b")
    [held] = a.open_windows
    assert a.drop(held.wid) is not None and a.open_windows == []
    assert "m1" not in a.known, "dropped unposted: the new owner counts it, not A"
    for mid, t in (("m1", 5), ("m2", 20), ("m3", 75)):  # B reads them again, and more
        b.add("S001", mid, at(t), mid)
    [closed] = b.take_ready()
    assert closed.wid == held.wid and set(members(closed)) == {"m1", "m2"}
    book = WindowBook()
    rec = WindowRecord(closed.wid, "inventory", "S001", T0.isoformat(), at(60).isoformat(),
                       "pos-adj-S001-x", "posted",
                       {m: [at(5).isoformat(), False] for m in ("m1", "m2")}, "d", "7")
    book.apply(rec.wid.encode(), rec.to_json())
    a.learn(book.known("inventory"), book.frontiers("inventory"))  # the partition is back
    assert a.add("S001", "m1", at(5), "a").verdict == "counted"
    straggler = a.add("S001", "m7", at(30), "late")
    assert straggler.verdict == "late" and straggler.wid != closed.wid


def test_a_partition_read_behind_the_others_is_not_late_under_the_low_watermark() -> None:
    """A backlog read a partition at a time: partition 0's movements of 15:00-15:50 first,
    then partition 1's of the same hour. By the key's own watermark partition 1's are late
    (its window closed when 15:50 was read); held back to the inputs' low watermark (the
    inventory lane's ``Marks``), the hour stays open and takes them all on time."""
    spec = WindowSpec(size_s=3600, grace_s=60, idle_s=30)
    own: WindowEngine[str] = WindowEngine("inventory", spec)
    held: WindowEngine[str] = WindowEngine("inventory", spec)
    hour = T0 - timedelta(minutes=T0.minute)
    p0 = [(f"a{i}", hour + timedelta(minutes=i)) for i in range(0, 51, 5)]
    p1 = [(f"b{i}", hour + timedelta(minutes=i)) for i in range(0, 51, 5)]
    nxt = ("n0", hour + timedelta(minutes=65))
    low = hour  # partition 1 not read yet: its mark is where it starts
    for mid, t in [*p0, nxt]:
        own.add("S001", mid, t, "x")
        held.add("S001", mid, t, "x", low=low)
    verdicts_own = {own.add("S001", mid, t, "x").verdict for mid, t in p1}
    verdicts_held = {held.add("S001", mid, t, "x", low=min(t, nxt[1])).verdict
                     for mid, t in p1}
    assert verdicts_own == {"late"} and verdicts_held == {"added"}
    assert held.take_ready() == []
    held.release(nxt[1])  # partition 1 caught up: no further record needed to close
    [closed] = held.take_ready()
    assert len(closed.members) == len(p0) + len(p1) and not any(
        m.late for m in closed.members.values())
