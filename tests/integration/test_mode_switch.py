"""Switching the sales sync mode on a running worker (the mappings file, hot reloaded), in
the middle of open windows: summary -> batch -> realtime. Read back from the simulator:
the sales routed before each switch are posted by their window when it closes (one summary
cashSale; per-sale cashSales written by async batch jobs), the ones after go the new way,
nothing is lost and nothing is posted twice; the day reconciles balanced (exit 0), POS
total = NetSuite total to the cent.

Event times are explicit (a past day, all in one minute); windows close on the wall clock
once the register is quiet."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from tests.factories import make_return, make_sale, split_tenders
from tests.integration.helpers import (
    Outcomes,
    encode_sales,
    produce,
    wait_until,
    worker_metric,
)
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.stack import WorkerProcess, settings_env
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime.settings import Settings

pytestmark = pytest.mark.integration


def sale(txn: str, qty: int, second: int) -> dict[str, Any]:
    """A one-line cash sale of ``qty`` x 10.00 (baskets differ: no double-scan flags)."""
    s = make_sale(pos_transaction_id=txn)
    net = D(qty * 10).quantize(D("0.01"))
    tax = (net * D("0.08625")).quantize(D("0.01"))
    s["completed_at"] = s["started_at"] = s["completed_at"].replace(second=second)
    s["lines"] = [{**s["lines"][0], "quantity": D(qty).quantize(D("0.001")),
                   "unit_price": D("10.00"), "discounts": [], "promotion_ids": [],
                   "tax_amount": tax}]
    s.update(subtotal=net, discount_total=D("0.00"), tax_total=tax, total=net + tax)
    s["tenders"] = [{**split_tenders()[1], "amount": net + tax}]
    return s


def switch(worker: WorkerProcess, path: Any, doc: dict[str, Any], mode: str) -> None:
    doc["version"] += 1
    doc["sync"] = {"sales": {"mode": mode, "window": "60s"}}
    path.write_text(json.dumps(doc))
    wait_until(lambda: httpx.get(worker.url + "/ready").json()["mappings_version"]
               == doc["version"], 15, f"mappings v{doc['version']} ({mode})")


def outcomes(out: Outcomes) -> dict[str, dict[str, Any]]:
    out.tail.poll(0.3)
    return {doc["pos_transaction_id"]: doc for doc in (json.loads(r.value)
                                                       for r in out.results)}


def wait_for(out: Outcomes, txns: set[str], timeout: float = 40) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}

    def done() -> bool:
        seen.update(outcomes(out))
        return txns <= set(seen)

    wait_until(done, timeout, f"outcomes of {sorted(txns - set(seen))}")
    return seen


async def _sales(s: Settings) -> list[dict[str, Any]]:
    async with NetSuiteClient(s.netsuite_base_url or "", NetSuiteCredentials.dev()) as c:
        return await c.suiteql(
            "SELECT externalid, foreigntotal, custbody_pos_transaction_id, "
            "custbody_tillbridge_receipts FROM transaction WHERE recordtype = ?",
            params=["cashsale"])


def test_a_mode_switch_mid_window_loses_nothing_and_posts_nothing_twice(stack,
                                                                        tmp_path) -> None:
    doc = dict(Mappings.load().document)
    path = tmp_path / "mappings.json"
    path.write_text(json.dumps(doc))  # the hybrid default: sales in real time
    s = stack.settings.replace(mappings_path=str(path), mappings_reload_s=0.3,
                               window_grace_s=0, window_idle_s=6, window_tick_s=0.3)
    summary = [sale("SW-A1", 1, 5), sale("SW-A2", 2, 10)]
    batch = [sale("SW-B1", 3, 15), sale("SW-B2", 4, 20)]
    realtime = [sale("SW-C1", 5, 25), sale("SW-C2", 6, 30)]
    out = Outcomes(s)
    with WorkerProcess(s) as worker:
        switch(worker, path, doc, "summary")
        produce(s, encode_sales(s, summary))
        wait_until(lambda: worker_metric(worker, "tillbridge_events_routed_total",
                                         destination=topics.ROUTED_WINDOW) >= 2, 20,
                   "the summary sales routed to their window")
        switch(worker, path, doc, "batch")  # the summary window is still open
        produce(s, encode_sales(s, batch))
        wait_until(lambda: worker_metric(worker, "tillbridge_events_routed_total",
                                         destination=topics.ROUTED_WINDOW) >= 4, 20,
                   "the batch sales routed to their window")
        switch(worker, path, doc, "realtime")
        produce(s, encode_sales(s, realtime))
        early = wait_for(out, {"SW-C1", "SW-C2"})
        assert not {"SW-A1", "SW-A2", "SW-B1", "SW-B2"} & set(early), \
            "the windows were still open when the realtime sales posted"
        got = wait_for(out, {"SW-A1", "SW-A2", "SW-B1", "SW-B2"})
        jobs = worker_metric(worker, "tillbridge_netsuite_batch_jobs_total", state="submitted")
        print(worker.log_tail(30))
    out.close()
    assert not out.dead, out.summary()
    assert {t: d["outcome"] for t, d in got.items()} == {
        t: "posted" for t in ("SW-A1", "SW-A2", "SW-B1", "SW-B2", "SW-C1", "SW-C2")}
    assert jobs >= 1, "the batch window went through an async batch job"
    rows = asyncio.run(_sales(s))
    held = {r["externalid"]: r for r in rows}
    assert len(held) == len(rows) == 5, f"posted twice or missing: {sorted(held)}"
    [summary_id] = [e for e in held if e.startswith("pos-sum-")]
    assert held[summary_id]["custbody_tillbridge_receipts"] == "SW-A1,SW-A2"
    assert {e for e in held if e.startswith("pos-sale-")} == {
        f"pos-sale-S001-{t}" for t in ("SW-B1", "SW-B2", "SW-C1", "SW-C2")}
    assert {r["external_id"] for t in ("SW-A1", "SW-A2")
            for r in got[t]["records"]} == {summary_id}, "each receipt names its summary"
    pos_total = sum((x["total"] for x in summary + batch + realtime), D(0))
    assert sum((D(r["foreigntotal"]) for r in rows), D(0)) == pos_total
    assert D(held[summary_id]["foreigntotal"]) == summary[0]["total"] + summary[1]["total"]
    proc = subprocess.run([sys.executable, "-m", "tillbridge.streams.ops.cli", "reconcile",
                           "--date", "2026-11-26", "--store", "S001", "--json"],
                          env=settings_env(s), capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print("reconciled:", proc.stdout[:600])


def test_switching_returns_from_batch_to_realtime_mid_window(stack, tmp_path) -> None:
    """Returns batched in a 60 s window, then switched to real time while that window is
    open: the return routed before the switch posts when its window closes (after the one
    routed after it), each return's cashRefund is in NetSuite once, at its refund total."""
    doc = dict(Mappings.load().document)
    doc["sync"] = {"returns": {"mode": "batch", "window": "60s"}}
    path = tmp_path / "mappings.json"
    path.write_text(json.dumps(doc))
    s = stack.settings.replace(mappings_path=str(path), mappings_reload_s=0.3,
                               window_grace_s=0, window_idle_s=4, window_tick_s=0.3)
    sales = [make_sale(pos_transaction_id=f"S001-R01-00014{i}") for i in (2, 3)]
    rets = [make_return(pos_transaction_id=f"S001-R02-00017{i}",
                        original={**make_return()["original"],
                                  "pos_transaction_id": f"S001-R01-00014{i}"})
            for i in (2, 3)]
    encode = AvroCodec(s.schema_registry_url or "").encoder(topics.RETURN)
    out = Outcomes(s)
    with WorkerProcess(s) as worker:
        produce(s, encode_sales(s, sales))
        wait_for(out, {x["pos_transaction_id"] for x in sales})
        produce(s, [(b"S001-R01-000142", encode(rets[0]))], topics.RETURN.name)
        wait_until(lambda: worker_metric(worker, "tillbridge_events_routed_total",
                                         destination=topics.ROUTED_WINDOW) >= 1, 20,
                   "the batched return routed to its window")
        doc["version"] += 1
        doc["sync"] = {"returns": "realtime"}
        path.write_text(json.dumps(doc))
        wait_until(lambda: httpx.get(worker.url + "/ready").json()["mappings_version"]
                   == doc["version"], 15, "returns switched to realtime")
        produce(s, [(b"S001-R01-000143", encode(rets[1]))], topics.RETURN.name)
        early = wait_for(out, {"S001-R02-000173"})
        assert "S001-R02-000172" not in early, "the batch window was still open"
        got = wait_for(out, {"S001-R02-000172"})
    out.close()
    assert not out.dead, out.summary()
    assert [got[r["pos_transaction_id"]]["outcome"] for r in rets] == ["posted", "posted"]
    rows = asyncio.run(_refunds(s))
    assert sorted(r["externalid"] for r in rows) == [
        f"pos-rtn-S001-{r['pos_transaction_id']}" for r in rets], "each refund once"
    assert [abs(D(r["foreigntotal"])) for r in rows] == [r["refund_total"] for r in rets]


async def _refunds(s: Settings) -> list[dict[str, Any]]:
    async with NetSuiteClient(s.netsuite_base_url or "", NetSuiteCredentials.dev()) as c:
        return await c.suiteql("SELECT externalid, foreigntotal FROM transaction "
                               "WHERE recordtype = ? ORDER BY externalid",
                               params=["cashrefund"])
