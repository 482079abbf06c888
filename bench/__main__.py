"""`make bench`: pipeline throughput vs a bare confluent-kafka loop, end-to-end latency, and
the NetSuite sink (real-time posting and backlog drain at NetSuite's pace, ``bench/sink.py``).

Both sides read the same pre-published sales from the same embedded broker, and both rates
come from the output messages' Kafka timestamps (N / (last - first)), so the comparison does
not depend on how either process reports itself. Quote the ratio: these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic

from bench import availability, sink, windows
from bench.workload import encoded_sales, publish
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.devstack.stack import WorkerProcess, local_stack
from tillbridge.streams.runtime.settings import Settings


def _rate(records: list) -> float:
    stamps = sorted(r.timestamp for r in records)
    span = (stamps[-1] - stamps[0]) / 1000.0
    return (len(stamps) - 1) / span if span > 0 else float("inf")


def _read_until(bootstrap: str, topic: str, n: int, timeout: float) -> list:
    with TopicTail(bootstrap, [topic]) as tail:
        tail.wait_for(lambda t: t.count() >= n, timeout)
        return list(tail.records[topic])


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _new_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        fut.result(30)


def baseline(s: Settings, pairs: list, n: int, schema_file: str = "sale.avsc") -> dict:
    src, dst = f"bench.baseline.in.{time.time_ns()}", f"bench.baseline.out.{time.time_ns()}"
    _new_topics(s.kafka_bootstrap_servers or "", [src, dst], s.topic_partitions)
    publish(s.kafka_bootstrap_servers or "", src, pairs)
    out = subprocess.run([sys.executable, "-m", "bench.baseline", s.kafka_bootstrap_servers or "",
                          src, dst, str(n), schema_file], capture_output=True, text=True,
                         check=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    stats["rate"] = _rate(_read_until(s.kafka_bootstrap_servers or "", dst, n, 60))
    return stats


def pipeline(s: Settings, pairs: list, n: int) -> dict:
    """decode -> validate -> enrich -> route on one worker (the sink agent off)."""
    publish(s.kafka_bootstrap_servers or "", topics.SALE.name, pairs)
    ws = s.replace(agents="ingest", app_id=f"bench-{time.time_ns()}")
    with WorkerProcess(ws) as worker:
        assert worker.proc is not None
        cpu0 = _proc_cpu_s(worker.proc.pid)
        routed = _read_until(s.kafka_bootstrap_servers or "", topics.ROUTED_REALTIME, n, 300)
        cpu = _proc_cpu_s(worker.proc.pid) - cpu0
        rss = _proc_peak_rss_mb(worker.proc.pid)
    return {"events": len(routed), "rate": _rate(routed), "cpu_us": cpu / n * 1e6,
            "rss_mb": rss}


def latency(s: Settings, pairs: list, rate: float) -> dict:
    """POS event (input CreateTime) -> result on the results topic, at a fixed rate."""
    ws = s.replace(app_id=f"bench-lat-{time.time_ns()}")
    from confluent_kafka import Producer

    with WorkerProcess(ws):
        producer = Producer({"bootstrap.servers": s.kafka_bootstrap_servers, "linger.ms": 0})
        start = time.perf_counter()
        for i, (key, value) in enumerate(pairs):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            producer.produce(topics.SALE.name, key=key, value=value)
            producer.poll(0)
        producer.flush(30)
        with TopicTail(s.kafka_bootstrap_servers or "", [topics.SALE.name, topics.RESULTS]) as t:
            t.wait_for(lambda t: t.count(topics.RESULTS) >= len(pairs), 120)
            sent = {r.key: r.timestamp for r in t.records[topics.SALE.name]}
            lat = sorted(r.timestamp - sent[r.key] for r in t.records[topics.RESULTS]
                         if r.key in sent)
    q = statistics.quantiles(lat, n=100)
    return {"events": len(lat), "p50_ms": q[49], "p99_ms": q[98], "max_ms": lat[-1]}


PARTS = ("pipeline", "latency", "sink", "window", "availability")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--latency-events", type=int, default=5000)
    ap.add_argument("--latency-rate", type=float, default=500.0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--only", action="append", choices=PARTS,
                    help="run only this part (repeatable); default: every part")
    ap.add_argument("--sink-sales", type=int, default=sink.DEFAULT_SALES,
                    help="POS sales per sink part (real-time and drain)")
    ap.add_argument("--availability-sales", type=int, default=availability.DEFAULT_SALES,
                    help="POS sales of the availability part (at 100/s)")
    ap.add_argument("--window-movements", type=int, default=windows.DEFAULT_MOVEMENTS,
                    help="inventory movements of the window part")
    args = ap.parse_args()
    parts = set(args.only or PARTS) - ({"latency"} if args.skip_latency else set())
    base_settings = Settings.from_env(kafka_bootstrap_servers=None, schema_registry_url=None,
                                      netsuite_base_url=None)
    if "pipeline" in parts:
        _pipeline_part(base_settings, args.events)
    if "latency" in parts:
        _latency_part(base_settings, args.latency_events, args.latency_rate)
    if "sink" in parts:
        sink.run(args.sink_sales)
    if "window" in parts:
        windows.run(base_settings, args.window_movements)
    if "availability" in parts:
        availability.run(base_settings, args.availability_sales)


def _pipeline_part(base_settings: Settings, events: int) -> None:
    with local_stack(base_settings) as stack:
        s = stack.settings
        pairs = encoded_sales(s.schema_registry_url or "", events)
        size = sum(len(v) for _, v in pairs) / len(pairs)
        print(f"workload: {len(pairs)} clean sales, mean {size:.0f} bytes, "
              f"{s.topic_partitions} partitions, embedded Tansu broker")
        b = baseline(s, pairs, events)
        print(f"baseline (confluent-kafka decode+encode loop): {b['rate']:8.0f} events/s, "
              f"{b['cpu_us']:6.0f} CPU us/event, peak RSS {b['rss_mb']:.0f} MB")
        p = pipeline(s, pairs, events)
        print(f"pipeline (Faust decode>validate>enrich>route): {p['rate']:8.0f} events/s, "
              f"{p['cpu_us']:6.0f} CPU us/event, peak RSS {p['rss_mb']:.0f} MB")
        print(f"ratio: {p['rate'] / b['rate']:.2f}")


def _latency_part(base_settings: Settings, events: int, rate: float) -> None:
    with local_stack(base_settings, sim_process=True) as stack:
        s = stack.settings
        pairs = encoded_sales(s.schema_registry_url or "", events, seed=11)
        lat = latency(s, pairs, rate)
        print(f"latency at {rate:.0f} events/s (event -> results topic, "
              f"simulator latency 0): p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms,"
              f" max {lat['max_ms']:.0f} ms over {lat['events']} events")


if __name__ == "__main__":
    main()
