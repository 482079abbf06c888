"""Table state ahead of its changelog is wiped (once, with one log line), never kept."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.exceptions import ConsistencyError
from rocksdict import Rdict

from tillbridge.streams.runtime import state


def make_partition(tabledir: Path, partition: int, offset: int | None) -> Path:
    path = tabledir / f"posted-{partition}.db"
    db = Rdict(str(path))
    db[b"k"] = b"v"
    if offset is not None:
        db[state.OFFSET_KEY] = str(offset).encode()
    db.close()
    return path


def test_finds_only_the_tables_partitions(tmp_path: Path) -> None:
    make_partition(tmp_path, 0, 5)
    make_partition(tmp_path, 3, None)
    (tmp_path / "posted-x.db").mkdir()
    (tmp_path / "other-1.db").mkdir()
    assert sorted(state.local_partitions(tmp_path, "posted")) == [0, 3]
    assert state.local_partitions(tmp_path / "missing", "posted") == {}


def test_reads_the_persisted_offset(tmp_path: Path) -> None:
    assert state.persisted_offset(make_partition(tmp_path, 0, 41)) == 41
    assert state.persisted_offset(make_partition(tmp_path, 1, None)) is None


def test_reconcile_wipes_partitions_ahead_and_says_so_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    for p, off in ((0, 10), (1, 20), (2, 30), (3, None)):
        make_partition(tmp_path, p, off)
    answers = {0: True, 1: False, 2: None}  # 2: no answer before start counts as ahead
    asked: list[dict[int, int]] = []

    def probe(bootstrap: str, topic: str, offsets: dict[int, int]) -> dict[int, Any]:
        asked.append(offsets)
        return {p: answers[p] for p in offsets}

    monkeypatch.setattr(state, "changelog_reaches", probe)
    with caplog.at_level(logging.WARNING):
        wiped = state.reconcile(tmp_path, "posted", "app-posted-changelog", "b:9092")
    assert wiped == [1, 2]
    assert asked == [{0: 10, 1: 20, 2: 30}]
    assert sorted(state.local_partitions(tmp_path, "posted")) == [0, 3]
    lines = [r for r in caplog.records if state.REBUILT in r.getMessage()]
    assert len(lines) == 1


def test_reconcile_keeps_state_the_changelog_holds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    make_partition(tmp_path, 0, 10)
    monkeypatch.setattr(state, "changelog_reaches",
                        lambda b, t, offsets: dict.fromkeys(offsets, True))
    with caplog.at_level(logging.WARNING):
        assert state.reconcile(tmp_path, "posted", "c", "b") == []
    assert not caplog.records


def test_consistency_error_is_found_through_its_causes() -> None:
    assert state.is_consistency_error(ConsistencyError("ahead"))
    try:
        try:
            raise ConsistencyError("ahead")
        except ConsistencyError as inner:
            raise RuntimeError("crashed") from inner
    except RuntimeError as outer:
        assert state.is_consistency_error(outer)
    assert not state.is_consistency_error(RuntimeError("other"))
    assert not state.is_consistency_error(None)


class FakeTable:
    name = "posted"

    def __init__(self, offsets: dict[int, int]) -> None:
        self.offsets = offsets
        self.data = SimpleNamespace(_dbs=dict.fromkeys(offsets), path="/nonexistent")
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-posted-changelog")

    def persisted_offset(self, tp: Any) -> int | None:
        return self.offsets.get(tp.partition)


@pytest.mark.parametrize(("answers", "acts_on_tick"), [
    ([False, False], 2),        # out of range twice: data loss
    ([False, True, False], None),  # once, then a record: not lost
    ([None, None, None], None),  # no answer is an outage, never data loss
])
def test_watch_acts_only_on_the_brokers_word_twice(
        monkeypatch: pytest.MonkeyPatch, answers: list[bool | None],
        acts_on_tick: int | None) -> None:
    watch = state.ChangelogWatch(FakeTable({0: 9}), "b:9092")
    replies = iter(answers)
    monkeypatch.setattr(state, "changelog_reaches",
                        lambda b, t, offsets: dict.fromkeys(offsets, next(replies)))
    lost: list[tuple[str, int, int]] = []
    monkeypatch.setattr(watch, "lost", lambda *a: lost.append(a))
    for tick in range(1, len(answers) + 1):
        asyncio.run(watch.tick())
        if lost:
            assert tick == acts_on_tick
            assert lost == [("app-posted-changelog", 0, 9)]
            return
    assert acts_on_tick is None
