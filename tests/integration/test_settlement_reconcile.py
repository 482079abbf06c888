"""A business day for two stores through a real worker: sales, a return and register
closes; a clean store banks a deposit per register (read back from NetSuite to the cent)
with its drawer's over/short journal, and reconciles balanced (exit 0); the dirty store's
four injected differences are each named by transaction id (exit 1), and its register
with the dropped sale waits, naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.devstack.pos.recon_day import CLEAN, DIRTY, build_day
from tillbridge.devstack.recon_demo import run_day
from tillbridge.devstack.stack import WorkerProcess, settings_env

pytestmark = pytest.mark.integration


def test_day_settles_and_reconciliation_names_every_difference(stack) -> None:
    s = stack.settings
    day = build_day()
    with WorkerProcess(s):
        out = run_day(s, day)
    injected = day.injected
    dirty = out["reconciliation"][DIRTY]
    named = {d["pos_transaction_id"]: d for d in dirty["differences"]}
    assert dirty["exit_code"] == 1, dirty
    assert named[injected["dropped_sale"]]["problem"] == "missing"
    assert named[injected["dropped_sale"]]["state"] == "not_received"
    assert named[injected["double_scan"]]["problem"] == "extra"
    assert named[injected["double_scan"]]["state"] == "double_scan"
    assert named[injected["wrong_refund"]]["problem"] == "different"
    refund = named[injected["wrong_refund"]]
    assert Decimal(refund["netsuite_amount"]) - Decimal(refund["pos_amount"]) == \
        Decimal("1.00")
    changed = named[injected["changed_in_netsuite"]]
    assert changed["problem"] == "different"
    assert changed["netsuite_amount"] == out["changed_in_netsuite"]["after"]
    assert set(named) == set(injected.values()), named
    clean = out["reconciliation"][CLEAN]
    assert clean["exit_code"] == 0 and clean["differences"] == [], clean

    # the dirty register with the dropped sale waits, saying on what
    waiting = [v for v in out["settlements"].values() if v["outcome"] == "parked"]
    assert [w["waiting_for"] for w in waiting] == \
        [f"pos-sale-{DIRTY}-{injected['dropped_sale']}"]
    # every other close banked its register's receipts: the deposit equals the sales to the
    # cent, as the POS journal has them (gross: NetSuite books the till's tax), less what
    # gift cards and store credit paid (liabilities drawn on: no money for the bank)
    no_money = {e.value["pos_transaction_id"]: sum(  # type: ignore[index]
        (t["amount"] for t in e.value["tenders"]  # type: ignore[index]
         if t["tender_type"] in ("GIFT_CARD", "STORE_CREDIT")), Decimal(0)) for e in day.sales}
    for close in day.closes_json:
        banked = next(b for b in out["banked"] if b["settlement_id"] == close["settlement_id"])
        if close["store_id"] == CLEAN:
            sales = sum((Decimal(t["amount"]) - no_money[t["pos_transaction_id"]]
                         for t in close["transactions"] if t["kind"] == "sale"), Decimal(0))
            assert Decimal(banked["deposit_total"]) == sales, (close, banked)
    # right after posting a close, the worker published the register's reconciliation
    # against the close's journal: the double scan is extra there already
    tail = TopicTail(s.kafka_bootstrap_servers or "", [topics.RECONCILIATION])
    tail.wait_for(lambda t: any(json.loads(r.value)["origin"] == "settlement"
                                for r in t.records[topics.RECONCILIATION]), 20)
    by_worker = {(d["store_id"], d["register_id"]): d for d in
                 (json.loads(r.value) for r in tail.records[topics.RECONCILIATION])
                 if d["origin"] == "settlement"}
    tail.close()
    twin = injected["double_scan"]
    register = next(reg for (store, reg) in by_worker if store == DIRTY and any(
        d["pos_transaction_id"] == twin for d in by_worker[(store, reg)]["drifts"]))
    assert by_worker[(DIRTY, register)]["flagged"] is True
    assert all(d["balanced"] for (store, _), d in by_worker.items() if store == CLEAN)
    clean_short = [b for b in out["banked"] if b.get("over_short")]
    assert [(b["store_id"], Decimal(b["over_short"])) for b in clean_short] == \
        [(CLEAN, Decimal("1.50"))]


def test_reconcile_command_exit_codes_and_json(stack) -> None:
    """The command as an operator runs it (a subprocess): exit 2 when it cannot run."""
    s = stack.settings
    env = {**settings_env(s), "NETSUITE_BASE_URL": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-m", "tillbridge.streams.ops.cli", "reconcile",
                           "--date", "2025-04-02", "--store", "S001", "--json"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "NetSuite" in json.loads(proc.stdout)["error"]
    proc = subprocess.run([sys.executable, "-m", "tillbridge.streams.ops.cli", "reconcile",
                           "--date", "not-a-date"], env=settings_env(s), capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
