"""Baseline: a bare confluent-kafka consume -> fastavro decode -> encode -> produce loop.

Runs as its own process (like the worker) and prints one JSON line: rate, CPU and RSS.
This is the practical limit for the same work on the same broker from Python.
"""

from __future__ import annotations

import io
import json
import resource
import struct
import sys
import time

import fastavro
from confluent_kafka import Consumer, Producer

from tillbridge.schemas import load_schema


def run(bootstrap: str, source: str, dest: str, n: int,
        schema_file: str = "sale.avsc", wait_s: float = 0.5) -> dict[str, float]:
    """``wait_s``: how long one consume call waits for its batch of up to 500 (0.5 s for
    throughput; a latency baseline wants a short one, or each record waits for the batch)."""
    schema = fastavro.parse_schema(load_schema(schema_file))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"baseline-{time.time()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": True,
                         "fetch.wait.max.ms": 50, "session.timeout.ms": 6000})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    consumer.subscribe([source])
    done = 0
    first = cpu0 = 0.0
    while done < n:
        for msg in consumer.consume(500, wait_s):
            if msg.error():
                continue
            if not done:
                first, cpu0 = time.perf_counter(), time.process_time()
            value = msg.value()
            if value is None:
                continue
            schema_id = struct.unpack(">I", value[1:5])[0]
            record = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, schema)
            out = io.BytesIO()
            out.write(b"\x00" + struct.pack(">I", schema_id))
            fastavro.schemaless_writer(out, schema, record)
            producer.produce(dest, key=msg.key(), value=out.getvalue())
            producer.poll(0)
            done += 1
    producer.flush(30)
    elapsed = time.perf_counter() - first
    cpu = time.process_time() - cpu0
    consumer.close()
    return {"events": done, "rate": done / elapsed, "cpu_us": cpu / done * 1e6,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


if __name__ == "__main__":
    bootstrap, source, dest, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    schema = sys.argv[5] if len(sys.argv) > 5 else "sale.avsc"
    wait = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
    print(json.dumps(run(bootstrap, source, dest, n, schema, wait)))
