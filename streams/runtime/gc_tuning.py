"""The worker's garbage-collector settings: fewer young collections, a frozen start-up heap.

Python collects its young generation every 700 container allocations and, every 100 of
those, the whole heap. A worker's heap at start is hundreds of thousands of long-lived
objects (Faust, aiokafka, the schemas, the reference data) that no collection will ever
free, and the window agent holds every decoded event of an open window (thousands of
dicts) until its window posts: each full collection walked all of it again. Measured in
``make bench``'s window part (40,000 movements, the worker at 100% of one core): Python's
defaults gave a window ratio of 0.32, ``gc.freeze()`` after start 0.39, and a young
threshold of 50,000 on top 0.44 (``python -m bench.lane_profile``: the lane body from
~40 to ~32 µs a movement). Cycles are still collected, only less often. The price, in a
26-minute soak at 20 sales/s: worker RSS ~8 MB higher all along (154 → 181 MB against
147 → 172 MB with Python's defaults), the same shape (RocksDB's memtables to their flush),
the same CPU (21% of a core).

The same recipe as large Python services use (gc.freeze before forking workers, a raised
gen0 threshold); nothing here changes what the worker computes.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def tune(gen0_threshold: int) -> None:
    """Collect once, move what survives (the start-up heap) out of the collector's sight,
    and raise the young generation's threshold (0: keep Python's)."""
    gc.collect()
    gc.freeze()
    if gen0_threshold:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
    log.info("gc: %d start-up objects frozen, thresholds %s", gc.get_freeze_count(),
             gc.get_threshold())
