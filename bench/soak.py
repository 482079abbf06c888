"""`make soak`: the stack at a steady rate for a set time, watched like production.

Starts what is not configured (embedded broker, registry, NetSuite simulator as its own
process) and one worker, publishes clean sales at ``--rate`` for ``--minutes``, and every
``--every`` seconds prints worker and broker RSS, what has reached NetSuite and the
event-to-record latency of that interval. At the end: the invariant (every published sale
has exactly one final outcome, counted per input record, and NetSuite holds one cashSale per
posted sale) and the worker's RSS trend after warm-up. A worker whose RSS keeps rising at
steady load is a defect to find (``--fail-on-growth`` makes that an exit code).

Not part of `make test`: it is meant to run for 30 minutes or more.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from confluent_kafka import Message, Producer

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.devstack.pos.generator import generate
from tillbridge.devstack.stack import WorkerProcess, local_stack
from tillbridge.streams.runtime.settings import Settings

#: RSS growth after warm-up that counts as "keeps rising" (MB per hour).
GROWTH_MB_PER_HOUR = 20.0


def rss_mb(pid: int) -> float:
    """Resident set size of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a process has used, from /proc (Linux; nan when gone)."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pids: dict[str, int | None], before: dict[str, float],
              since: float) -> tuple[str, dict[str, float], float]:
    """Each process's share of one core since ``since`` (monotonic), and the new marks."""
    now, used = time.monotonic(), {name: cpu_seconds(pid) for name, pid in pids.items()}
    text = " ".join(f"{name}={100 * (used[name] - before[name]) / max(now - since, 1e-6):.0f}%"
                    for name in pids)
    return text, used, now


def broker_pid(bootstrap: str) -> int | None:
    """The embedded Tansu process serving ``bootstrap`` (None: an external broker)."""
    return serving_pid("tansu", bootstrap)


def serving_pid(word: str, address: str) -> int | None:
    """A local process whose command line names ``word`` and ``address``'s port."""
    port = address.rstrip("/").rsplit(":", 1)[-1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if word in cmd and port in cmd:
            return int(entry.name)
    return None


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 3:
        return 0.0
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys,
                                                                           strict=True)) \
        / var * 3600


@dataclass
class Publisher:
    """Publishes generated clean sales at a fixed rate in a thread, counting deliveries."""

    settings: Settings
    rate: float
    seconds: float
    delivered: int = 0
    failed: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    #: key -> the broker's CreateTime (ms) of the sale, for event-to-record latency
    sent_at: dict[bytes, int] = field(default_factory=dict)

    def wait(self, seconds: float) -> None:
        """One report interval, also once all is published (``done.wait`` returns at once)."""
        if self.done.is_set():
            time.sleep(seconds)
        else:
            self.done.wait(seconds)

    def run(self) -> None:
        encode = AvroCodec(self.settings.schema_registry_url or "").encoder(topics.SALE)
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap_servers,
                             "enable.idempotence": True, "linger.ms": 5})

        def on_delivery(err: object, msg: Message) -> None:
            if err is None:
                self.delivered += 1
                self.sent_at[msg.key() or b""] = msg.timestamp()[1]
            else:
                self.failed += 1

        total = int(self.rate * self.seconds)
        start = time.monotonic()
        for n, event in enumerate(generate(total, seed=11, dirty=0.0)):
            # poll() returns as soon as it served a delivery report: sleep the rest
            producer.poll(0)
            wait = start + n / self.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            producer.produce(topics.SALE.name, key=event.key,
                             value=encode(event.value),  # type: ignore[arg-type]
                             on_delivery=on_delivery)
            producer.poll(0)
        producer.flush(60)
        self.done.set()


def latencies(records: list, since: int, sent_at: dict[bytes, int]) -> list[float]:
    """Seconds from a sale's publication (its CreateTime) to its result (the result's
    CreateTime), for the results records from index ``since`` on. Not the POS event time:
    the generator dates its sales in the past."""
    return [(r.timestamp - sent_at[r.key]) / 1000 for r in records[since:]
            if r.key in sent_at]


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def memory(worker: WorkerProcess, reset: bool = False) -> dict:
    """The worker's /debug/memory page (``reset`` takes the baseline)."""
    url = f"http://127.0.0.1:{worker.settings.web_port}/debug/memory"
    return httpx.get(url + ("?reset=1" if reset else ""), timeout=30).json()


def rocksdb_mb(worker: WorkerProcess) -> float:
    """What the worker's RocksDB tables hold in memory (memtables, block caches, table
    readers: their own accounts, from /debug/memory), NaN when the page does not answer."""
    try:
        tables = memory(worker).get("rocksdb", {})
    except (httpx.HTTPError, ValueError):
        return float("nan")
    return sum(v for t in tables.values() for k, v in t.items() if k.endswith("_mb"))


def print_heap(doc: dict) -> None:
    """The Python heap against RSS, and the allocation sites that grew since warm-up."""
    print(f"worker python heap {doc.get('python_heap_mb')} MB of RSS {doc.get('rss_mb'):.0f} MB; "
          "grew most since warm-up:")
    for row in doc.get("growth", [])[:10]:
        print(f"  {row['size_diff_kb']:+9.1f} KiB {row['count_diff']:+8d} blocks  {row['where']}")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    """The soak's command line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=50.0, help="sales per second")
    ap.add_argument("--every", type=float, default=60.0, help="report interval, seconds")
    ap.add_argument("--warmup", type=float, default=120.0, help="seconds left out of the trend")
    ap.add_argument("--fail-on-growth", action="store_true")
    ap.add_argument("--arena-max", type=int, default=0, metavar="N",
                    help="MALLOC_ARENA_MAX for the worker (glibc's malloc arenas; 0: unset)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                    help="trace the worker's Python heap; print what grew after warm-up")
    return ap.parse_args(argv)


def verdict(args: argparse.Namespace, tail: TopicTail, pub: Publisher, base: str,
            worker: WorkerProcess, trend: list[tuple[float, float]]) -> int:
    """The invariant and the RSS trend, printed; the soak's exit code."""
    tail.wait_for(lambda t: t.count() >= pub.delivered, 120)
    by_source = {json.loads(r.value or b"{}").get("source")
                 for r in tail.records[topics.RESULTS]}
    dead = sum(len(tail.records[name]) for name in topics.DLQ_TOPICS)
    held = httpx.get(f"{base}/__sim/stats", timeout=10).json()["records"]
    cash_sales = sum(held.get(t, {}).get("created", 0) for t in ("cashSale", "invoice"))
    growth = slope_per_hour(trend[len(trend) // 2:])  # a plateau slopes up overall
    if args.tracemalloc:
        print_heap(memory(worker))
    balanced = len(by_source) + dead == pub.delivered and pub.failed == 0
    print(f"invariant: published {pub.delivered} = outcomes {len(by_source)} "
          f"(by input record) + dead-lettered {dead}: "
          f"{'balanced' if balanced else 'NOT BALANCED'}; "
          f"NetSuite sale records (cashSale, invoice) created {cash_sales}")
    print(f"worker RSS trend after warm-up: {slope_per_hour(trend):+.1f} MB/hour; "
          f"over its second half: {growth:+.1f} MB/hour "
          f"({'rising' if growth > GROWTH_MB_PER_HOUR else 'flat'})")
    if not balanced:
        return 1
    return 1 if args.fail_on_growth and growth > GROWTH_MB_PER_HOUR else 0


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    seconds = args.minutes * 60
    with local_stack(Settings.from_env(), sim_process=True) as stack:
        s = stack.settings
        frames = str(args.tracemalloc) if args.tracemalloc else ""
        arenas = {"MALLOC_ARENA_MAX": str(args.arena_max)} if args.arena_max else {}
        with WorkerProcess(s, None, None, TILLBRIDGE_TRACEMALLOC_FRAMES=frames or "0",
                           **arenas) as worker, TopicTail(
                s.kafka_bootstrap_servers or "", [topics.RESULTS, *topics.DLQ_TOPICS]) as tail:
            assert worker.proc is not None
            bpid = broker_pid(s.kafka_bootstrap_servers or "")
            pids = {"worker": worker.proc.pid, "broker": bpid,
                    "sim": serving_pid("netsuite-sim", s.netsuite_base_url or "")}
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            pub = Publisher(s, args.rate, seconds)
            threading.Thread(target=pub.run, name="soak-publisher", daemon=True).start()
            started, seen = time.monotonic(), 0
            last = started
            trend: list[tuple[float, float]] = []
            rest: list[tuple[float, float]] = []  # RSS less what RocksDB accounts for
            print(f"soak: {args.rate:g} sales/s for {args.minutes:g} min; worker pid "
                  f"{worker.proc.pid}, broker pid {bpid}")
            while True:
                pub.wait(args.every)
                tail.poll(1.0)
                elapsed = time.monotonic() - started
                results = tail.records[topics.RESULTS]
                lat = latencies(results, seen, pub.sent_at)
                seen = len(results)
                w_rss = rss_mb(worker.proc.pid)
                rocks = rocksdb_mb(worker)
                b_rss = rss_mb(bpid) if bpid else float("nan")
                busy, cpu, last = cpu_share(pids, cpu, last)
                if elapsed >= args.warmup:
                    if not trend and args.tracemalloc:
                        memory(worker, reset=True)
                    trend.append((elapsed, w_rss))
                    rest.append((elapsed, w_rss - rocks))
                print(f"t={elapsed:7.0f}s published={pub.delivered} outcomes={tail.count()} "
                      f"worker_rss={w_rss:.0f}MB (rocksdb {rocks:.0f}MB) broker_rss={b_rss:.0f}MB "
                      f"latency p50={quantile(lat, 0.5):.3f}s p99={quantile(lat, 0.99):.3f}s "
                      f"cpu {busy}",
                      flush=True)
                if pub.done.is_set() and tail.count() >= pub.delivered:
                    break
                if pub.done.is_set() and elapsed > seconds + 300:
                    break
            base = s.netsuite_base_url or ""
            if len(rest) > 1:
                print(f"worker RSS less RocksDB's own memory, after warm-up: "
                      f"{slope_per_hour(rest):+.1f} MB/hour; over its second half: "
                      f"{slope_per_hour(rest[len(rest) // 2:]):+.1f} MB/hour")
            return verdict(args, tail, pub, base, worker, trend)

if __name__ == "__main__":
    os.environ.setdefault("TILLBRIDGE_LOG_LEVEL", "warn")
    sys.exit(main())
