"""The window part of ``make bench``: windowed aggregation of inventory movements.

``window ratio:`` movements/s through the worker's inventory lane (decode, validate,
enrich, windows, one inventoryAdjustment per location and window, a result per movement)
against the bare confluent-kafka decode -> encode -> produce loop over the same movements
in the same run. The worker's rate is N over the span from the lane's first record to its
last result (Kafka timestamps): start-up is not counted, every window's close and post
is, the last windows' too (they close on the wall clock once the input stops:
``window_idle_s`` + up to a tick, 0.5-0.7 s, printed as the largest gap between results).
100,000 movements over 8 hours of event time (8 one-hour windows per store), so that the
rate is mostly the steady state and not that fixed close: once the lane took ~1.3 s for
40,000 movements, the close was over a quarter of their span (ratio 0.47-0.49 at 40,000,
0.57 at 100,000 and 0.56 at 160,000 in the same session).
``requests per 10k movements:`` NetSuite requests the windows made (the worker's
``tillbridge_netsuite_requests_total`` for inventoryAdjustment), scaled to 10,000.
"""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.devstack.pos.inventory import movement
from tillbridge.devstack.stack import WorkerProcess, local_stack
from tillbridge.streams.runtime.settings import Settings

DEFAULT_MOVEMENTS = 100_000
#: hours of event time the movements span: one-hour windows, so as many per store
HOURS = 8
STORES = {"S001": "1", "S002": "2"}
#: items the simulator stocks at both stores (an unknown SKU would be dead-lettered at ingest
#: and never reach a window: the part would then wait out its timeout for missing results)
SKUS = ("TEE-001", "TEE-002", "TEE-003", "TEE-004", "TEE-005", "TEE-006")
REASONS = ("SHRINK", "DAMAGE", "ADJUSTMENT", "FOUND", "RECEIPT", "TRANSFER")
START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
_REQUESTS = re.compile(r'^tillbridge_netsuite_requests_total\{([^}]*)\} ([0-9.e+]+)$', re.M)


def encoded_movements(registry_url: str, n: int, seed: int = 5) -> list[tuple[bytes, bytes]]:
    """``n`` movements at two stores over ``HOURS`` hours of event time (as many one-hour
    windows per store), in event-time order."""
    rng = random.Random(seed)
    encode = AvroCodec(registry_url).encoder(topics.INVENTORY)
    out = []
    for i in range(n):
        store = rng.choice(tuple(STORES))
        at = START + timedelta(seconds=HOURS * 3600 * i / n)
        qty = Decimal(rng.choice((-2, -1, 1, 3)))
        mv = movement(rng, f"BW-{i:06d}", store, rng.choice(SKUS), qty, rng.choice(REASONS), at)
        out.append((mv["movement_id"].encode(), encode(mv)))
    return out


def requests(metrics_text: str, record_type: str = "inventoryAdjustment") -> int:
    return int(sum(float(v) for labels, v in _REQUESTS.findall(metrics_text)
                   if f'record_type="{record_type}"' in labels))


def first_record(metrics_text: str) -> float:
    found = re.search(r"^tillbridge_lane_first_record_seconds ([0-9.e+]+)$", metrics_text, re.M)
    assert found, "the worker ran no inventory lane"
    return float(found.group(1))


def run(base: Settings, n: int = DEFAULT_MOVEMENTS) -> dict[str, float]:
    from bench.__main__ import baseline
    from bench.workload import publish

    with local_stack(base, sim_process=True) as stack:
        s = stack.settings
        pairs = encoded_movements(s.schema_registry_url or "", n)
        b = baseline(s, pairs, n, "inventory.avsc")
        publish(s.kafka_bootstrap_servers or "", topics.INVENTORY.name, pairs)
        ws = s.replace(agents="ingest,window,lane", app_id=f"bench-win-{time.time_ns()}",
                       window_s=3600, window_grace_s=60, window_idle_s=0.5, window_tick_s=0.2)
        with WorkerProcess(ws) as worker, TopicTail(
                s.kafka_bootstrap_servers or "", [topics.RESULTS]) as t:
            t.wait_for(lambda t: t.count(topics.RESULTS) >= n, 300)
            results = t.records[topics.RESULTS]
            text = worker.metrics()
            made = requests(text)
        # the lane reads the inventory topic itself (no routed hop): the span starts at its
        # first record (its gauge), so start-up is still not counted
        start = first_record(text)
        first_result = min(r.timestamp for r in results) / 1000
        span = max(r.timestamp for r in results) / 1000 - start
        stamps = sorted(r.timestamp / 1000 for r in results)
        gap = max((b - a for a, b in zip(stamps, stamps[1:], strict=False)), default=0.0)
        print(f"  first result {first_result - start:.2f} s after the lane's first record, "
              f"last {span:.2f} s; largest gap between results {gap:.2f} s (the last "
              "windows' close on the wall clock)")
        rate = len(results) / span if span > 0 else float("inf")
    out = {"rate": rate, "baseline": b["rate"], "ratio": rate / b["rate"],
           "requests": made, "per_10k": made * 10_000 / n}
    print(f"window (inventory lane, 2 stores x {HOURS} one-hour windows, {n} movements): "
          f"{rate:8.0f} movements/s; baseline loop {b['rate']:8.0f} movements/s")
    print(f"window ratio: {out['ratio']:.2f}")
    print(f"requests per 10k movements: {out['per_10k']:.1f} ({made} requests for {n})")
    return out
