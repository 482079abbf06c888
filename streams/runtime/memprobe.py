"""Where the worker's memory goes: ``/debug/memory`` for the SRE who sees RSS climb.

RSS alone cannot tell a Python leak (a dict that only grows) from native memory (RocksDB
memtables and block cache, librdkafka queues, glibc arenas that fragment). With
``TILLBRIDGE_TRACEMALLOC_FRAMES`` > 0 the worker starts ``tracemalloc`` and the page adds
the Python heap (what tracemalloc sees) and the allocation sites that grew most since the
baseline: a growing Python heap names its line; a flat one with rising RSS points native.
tracemalloc costs CPU (about 10-30 % at one frame), so it is off by default.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from typing import Any

_baseline: tracemalloc.Snapshot | None = None


def start(frames: int) -> None:
    """Start tracing with ``frames`` stack frames per allocation (0: leave it off)."""
    if frames > 0 and not tracemalloc.is_tracing():
        tracemalloc.start(frames)


def rss_mb() -> float | None:
    """This process's resident set size (Linux /proc; None elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),))


def report(reset: bool = False, limit: int = 15) -> dict[str, Any]:
    """RSS, GC counts and, when tracing, the Python heap and the top growth since baseline.

    The first traced call (or ``reset``) takes the baseline, so an SRE takes it after
    warm-up and reads the growth an hour later.
    """
    global _baseline
    doc: dict[str, Any] = {"rss_mb": rss_mb(), "gc_objects": len(gc.get_objects()),
                           "tracing": tracemalloc.is_tracing()}
    if not tracemalloc.is_tracing():
        doc["hint"] = "set TILLBRIDGE_TRACEMALLOC_FRAMES=1 (or more) to see the Python heap"
        return doc
    current, peak = tracemalloc.get_traced_memory()
    doc.update(python_heap_mb=round(current / 2**20, 2), python_heap_peak_mb=round(peak / 2**20, 2))
    snap = _snapshot()
    if _baseline is None or reset:
        _baseline, doc["baseline"] = snap, "taken now"
        return doc
    stats = snap.compare_to(_baseline, "lineno")
    doc["growth"] = [{"where": str(s.traceback), "size_diff_kb": round(s.size_diff / 1024, 1),
                      "count_diff": s.count_diff} for s in stats[:limit]]
    return doc
