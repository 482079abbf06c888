"""The worker's garbage-collector settings (``runtime/gc_tuning.py``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tillbridge.streams.runtime import gc_tuning


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_freezes_the_heap_and_raises_the_young_threshold(restored: None) -> None:
    kept = [{"n": i} for i in range(1000)]  # long-lived containers, as at start-up
    gc.unfreeze()
    gc_tuning.tune(50_000)
    assert gc.get_threshold()[0] == 50_000
    assert gc.get_freeze_count() >= len(kept)
    # frozen objects are out of the collector's sight: a full collection skips them
    assert not any(gc.is_tracked(k) and k in gc.get_objects(0) for k in kept[:3])


def test_zero_keeps_pythons_threshold(restored: None) -> None:
    before = gc.get_threshold()
    gc_tuning.tune(0)
    assert gc.get_threshold() == before
