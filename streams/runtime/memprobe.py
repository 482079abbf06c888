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
from collections.abc import Mapping
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


#: RocksDB's own accounts of native memory, per database (one per table partition)
ROCKSDB_PROPERTIES = {"memtables_mb": "rocksdb.cur-size-all-mem-tables",
                      "block_cache_mb": "rocksdb.block-cache-usage",
                      "table_readers_mb": "rocksdb.estimate-table-readers-mem"}


def rocksdb_memory(tables: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per Faust table on RocksDB, what its databases hold in memory (MB, summed over its
    partitions): the part of RSS that grows until the caps of
    ``faust_app.rocksdb_options`` are reached, told apart from the rest."""
    out: dict[str, dict[str, float]] = {}
    for name, table in tables.items():
        dbs = getattr(getattr(table, "data", None), "_dbs", None)  # Faust's RocksDB store
        if not dbs:
            continue
        doc = dict.fromkeys(ROCKSDB_PROPERTIES, 0.0)
        for db in list(dbs.values()):
            for field, prop in ROCKSDB_PROPERTIES.items():
                try:
                    value = db.property_int_value(prop)
                except Exception:  # noqa: BLE001 - a closed or reopened database: skip it
                    value = None
                doc[field] += (value or 0) / 2**20
        out[name] = {k: round(v, 2) for k, v in doc.items()} | {"partitions": len(dbs)}
    return out


def report(reset: bool = False, limit: int = 15,
           tables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """RSS, GC counts, RocksDB's memory per table and, when tracing, the Python heap and
    the top growth since baseline.

    The first traced call (or ``reset``) takes the baseline, so an SRE takes it after
    warm-up and reads the growth an hour later.
    """
    global _baseline
    doc: dict[str, Any] = {"rss_mb": rss_mb(), "gc_objects": len(gc.get_objects()),
                           # the start-up heap ``gc_tuning`` froze (not in gc_objects)
                           "gc_frozen": gc.get_freeze_count(),
                           "gc_threshold": list(gc.get_threshold()),
                           "tracing": tracemalloc.is_tracing(),
                           "rocksdb": rocksdb_memory(tables or {})}
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
