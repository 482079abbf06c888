"""/debug/memory: RSS always; with tracing, the Python heap and the line that grew."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import rocksdict

from tillbridge.streams.runtime import memprobe


def test_without_tracing_the_page_says_how_to_turn_it_on() -> None:
    assert not tracemalloc.is_tracing()
    doc = memprobe.report()
    assert doc["tracing"] is False and "TILLBRIDGE_TRACEMALLOC_FRAMES" in doc["hint"]
    assert doc["rss_mb"] is None or doc["rss_mb"] > 1
    assert doc["gc_frozen"] == gc.get_freeze_count()
    assert doc["gc_threshold"] == list(gc.get_threshold())


def test_with_tracing_the_growth_since_the_baseline_names_its_line() -> None:
    memprobe.start(1)
    try:
        assert memprobe.report(reset=True)["baseline"] == "taken now"
        kept = [bytearray(4096) for _ in range(500)]  # ~2 MiB that stays alive
        doc = memprobe.report()
        top = doc["growth"][0]
        assert top["where"].endswith(f"test_memprobe.py:{_line_of('bytearray(4096)')}")
        assert top["size_diff_kb"] >= 2000 and top["count_diff"] >= 500
        assert doc["python_heap_mb"] >= 1.9
        del kept
    finally:
        tracemalloc.stop()
        memprobe._baseline = None


def _line_of(text: str) -> int:
    """The line of this file that allocates (so the test does not hard-code a number)."""
    with open(__file__) as f:
        return next(n for n, line in enumerate(f, 1) if text in line and "kept" in line)


def test_rocksdb_memory_reads_each_partitions_own_account(tmp_path: Path) -> None:
    """Two real RocksDB databases (rocksdict, as Faust's store opens them) standing for
    two partitions of a table: their memtables are summed, in MB, per table."""
    dbs = {p: rocksdict.Rdict(str(tmp_path / f"p{p}")) for p in (0, 1)}
    try:
        for p, db in dbs.items():
            for i in range(5000 * (p + 1)):
                db[f"pos-{i:06d}".encode()] = b"x" * 100
        table = SimpleNamespace(data=SimpleNamespace(_dbs=dbs))
        doc = memprobe.report(tables={"posted": table, "memory": SimpleNamespace()})
        posted = doc["rocksdb"]["posted"]
        assert posted["partitions"] == 2 and set(doc["rocksdb"]) == {"posted"}
        one = dbs[1].property_int_value("rocksdb.cur-size-all-mem-tables") / 2**20
        assert posted["memtables_mb"] > one > 1.0, posted
    finally:
        for db in dbs.values():
            db.close()
