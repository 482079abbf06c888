"""``TILLBRIDGE_LOG_FORMAT=json`` on a real worker over Tansu, the registry and the NetSuite
simulator: every line it writes from start to stop is one JSON object, and the dead letter
of a record it cannot decode is a line naming that record (topic, partition, offset, key,
reason). /metrics shows the process series while it runs."""

from __future__ import annotations

import json

import pytest

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, metric, produce
from tillbridge.devstack.stack import Stack, WorkerProcess

pytestmark = pytest.mark.integration


def test_a_json_worker_logs_only_json_and_names_the_record_it_dead_letters(
        stack: Stack) -> None:
    s = stack.settings
    out = Outcomes(s)
    with WorkerProcess(s, TILLBRIDGE_LOG_FORMAT="json", TILLBRIDGE_LOG_LEVEL="info") as worker:
        good = encode_sales(s, [make_sale(pos_transaction_id="S001-R01-000900",
                                          event_id="e-json-1")])
        produce(s, [*good, (b"S001-R01-000901", b"\xffnot avro")])
        out.wait(2, timeout=90)
        body = worker.metrics()
    assert metric(body, "process_open_fds") > 0 and metric(body, "process_max_fds") > 0
    assert metric(body, "process_resident_memory_bytes") > 0
    assert {r.key for r in out.results} == {b"S001-R01-000900"}
    [dead] = out.dead

    lines = [line for line in worker.log_path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    docs = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    assert all({"time", "level", "logger", "message"} <= set(d) for d in docs)
    assert any(d["logger"].startswith("faust") for d in docs), "Faust's lines are JSON too"
    [letter] = [d for d in docs if d["logger"].endswith(".deadletter")]
    assert (letter["topic"], str(letter["partition"]), str(letter["offset"]),
            letter["key"]) == ("pos.sale.v1", dead.header("__connect.errors.partition"),
                               dead.header("__connect.errors.offset"), "S001-R01-000901")
    assert letter["stage"] == "decode" and letter["reason"] == dead.header("tillbridge.reason")
