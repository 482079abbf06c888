"""/debug/memory: RSS always; with tracing, the Python heap and the line that grew."""

from __future__ import annotations

import tracemalloc

from tillbridge.streams.runtime import memprobe


def test_without_tracing_the_page_says_how_to_turn_it_on() -> None:
    assert not tracemalloc.is_tracing()
    doc = memprobe.report()
    assert doc["tracing"] is False and "TILLBRIDGE_TRACEMALLOC_FRAMES" in doc["hint"]
    assert doc["rss_mb"] is None or doc["rss_mb"] > 1


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
