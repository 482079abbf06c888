"""Reconciliation's comparison (pure): each injected difference is named by its POS
transaction id, with its state in tillbridge; a clean register balances."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tillbridge.devstack.netsuite_sim import suiteql
from tillbridge.streams.reconcile import pos_side
from tillbridge.streams.reconcile.compare import DayInputs, reconcile, totals
from tillbridge.streams.reconcile.model import NsTxn, PosTxn, Problem, State
from tillbridge.streams.reconcile.netsuite_side import day_query, to_txn

DAY = "2026-03-02"
D = Decimal


def sale(txn: str, amount: str, store: str = "S1", reg: str = "R1",
         kind: str = "sale") -> PosTxn:
    return PosTxn(txn, store, reg, DAY, kind, D(amount), (("VISA", D(amount)),))


def ns(txn: str, amount: str, store: str = "S1", reg: str = "R1", kind: str = "sale",
       nsid: str = "") -> NsTxn:
    prefix, rtype = ("sale", "cashsale") if kind == "sale" else ("rtn", "cashrefund")
    return NsTxn(nsid or f"ns-{txn}", f"pos-{prefix}-{store}-{txn}", rtype, txn, store, reg,
                 kind, D(amount))


def dirty_day() -> DayInputs:
    """S1/R1 with the four injected differences, a dead letter and a parked return;
    S2/R1 clean."""
    journal = [sale("T1", "10.00"), sale("T2", "20.00"), sale("T3", "30.00"),
               sale("T4", "40.00"), sale("T6", "5.00"), sale("X1", "7.00", kind="return"),
               sale("X2", "8.00", kind="return")]
    events = [sale("T1", "10.00"),  # T2 dropped before publishing
              sale("T3", "30.00"), sale("T3B", "30.00"),  # T3B: T3 double-scanned
              sale("T4", "40.00"),  # changed by hand in NetSuite
              sale("T6", "5.00"),  # dead-lettered
              sale("X1", "9.50", kind="return"),  # refund with a wrong amount
              sale("X2", "8.00", kind="return"),  # parked
              sale("C1", "11.00", store="S2"), sale("C2", "12.00", store="S2")]
    netsuite = [ns("T1", "10.00"), ns("T3", "30.00"), ns("T3B", "30.00"), ns("T4", "44.00"),
                ns("X1", "9.50", kind="return"),
                ns("C1", "11.00", store="S2"), ns("C2", "12.00", store="S2")]
    results = [{"event_type": "sale", "pos_transaction_id": t, "outcome": "posted"}
               for t in ("T1", "T3", "T4", "C1", "C2")]
    results += [{"event_type": "sale", "pos_transaction_id": "T3B", "outcome": "posted",
                 "double_scan_of": "T3"},
                {"event_type": "return", "pos_transaction_id": "X1", "outcome": "posted"},
                {"event_type": "return", "pos_transaction_id": "X2", "outcome": "parked",
                 "waiting_for": "pos-sale-S1-T9"}]
    letters = [pos_side.DeadLetterTrace("T6", "unknown_sku", "enrich",
                                        "tillbridge.dlq.enrich.v1:0:3")]
    return DayInputs(DAY, events, netsuite, pos_side.states(results, letters),
                     {("S1", "R1"): journal},
                     {("S1", "R1"): {"VISA": D("112.00")}})


def by_txn(day: DayInputs) -> dict[str, tuple[Problem, State, str]]:
    return {d.txn_id: (d.problem, d.state, d.detail)
            for rep in reconcile(day) for d in rep.drifts}


def test_each_injected_difference_is_named_by_transaction_id() -> None:
    found = by_txn(dirty_day())
    assert set(found) == {"T2", "T3B", "T4", "X1", "T6", "X2"}
    assert found["T2"][:2] == (Problem.MISSING, State.NOT_RECEIVED)
    assert found["T3B"][:2] == (Problem.EXTRA, State.DOUBLE_SCAN)
    assert "T3" in found["T3B"][2]
    assert found["T4"][0] is Problem.DIFFERENT
    assert "changed in NetSuite" in found["T4"][2]
    assert found["X1"][0] is Problem.DIFFERENT
    assert "9.50" in found["X1"][2] and "7.00" in found["X1"][2]
    assert found["T6"][:2] == (Problem.MISSING, State.DEAD_LETTERED)
    assert "unknown_sku" in found["T6"][2]
    assert found["X2"][:2] == (Problem.MISSING, State.PARKED)
    assert "pos-sale-S1-T9" in found["X2"][2]


def test_amounts_counts_and_the_clean_store() -> None:
    reports = {(r.store_id, r.register_id): r for r in reconcile(dirty_day())}
    dirty, clean = reports[("S1", "R1")], reports[("S2", "R1")]
    assert clean.balanced and clean.drift_amount == 0
    assert clean.pos_by_type["sale"].total == clean.netsuite_by_type["cashsale"].total \
        == D("23.00")
    drifts = {d.txn_id: d for d in dirty.drifts}
    assert drifts["T2"].amount == D("20.00") and drifts["T3B"].amount == D("30.00")
    assert drifts["T4"].amount == D("4.00") and drifts["X1"].amount == D("2.50")
    assert dirty.drift_amount == D("20.00") + D("30.00") + D("4.00") + D("2.50") + \
        D("5.00") + D("8.00")
    # what the input topics carry (T3B's double scan included), refunds negative
    assert dirty.pos_by_tender["VISA"].total == D("115.00") - D("17.50")
    assert dirty.zreport_by_tender == {"VISA": D("112.00")}
    assert totals(reports.values()) == {"S1": (6, dirty.drift_amount), "S2": (0, D(0))}
    doc = dirty.to_json()
    assert doc["balanced"] is False and doc["drift_count"] == 6
    assert {d["pos_transaction_id"] for d in doc["drifts"]} == set(drifts)


def test_without_a_journal_the_events_are_the_truth_less_double_scans() -> None:
    day = dirty_day()
    day = DayInputs(DAY, day.events, day.netsuite, day.states)
    found = by_txn(day)
    assert "T2" not in found  # nothing names a receipt no input carried
    assert found["T3B"][0] is Problem.EXTRA
    assert "X1" not in found  # posted as the POS event said: only the journal tells
    assert found["T4"][0] is Problem.DIFFERENT


def test_a_replayed_dead_letter_counts_as_posted() -> None:
    letters = [pos_side.DeadLetterTrace("T1", "unknown_sku", "enrich", "x:0:1")]
    results = [{"event_type": "sale", "pos_transaction_id": "T1", "outcome": "posted"}]
    assert pos_side.states(results, letters)["T1"].state is State.POSTED
    assert pos_side.states([], letters)["T1"].state is State.DEAD_LETTERED


def test_netsuite_rows_become_typed_records() -> None:
    row = {"id": "17", "externalid": "pos-rtn-S1-X1", "recordtype": "cashrefund",
           "foreigntotal": "-9.5", "custbody_pos_store_id": "S1",
           "custbody_pos_register_id": "R1", "custbody_pos_transaction_id": "X1"}
    txn = to_txn(row, "S1")
    assert (txn.kind, txn.txn_id, txn.amount, txn.register_id) == \
        ("return", "X1", D("9.5"), "R1")
    dep = to_txn({"id": "18", "externalid": "pos-dep-S1-Z1", "recordtype": "deposit",
                  "foreigntotal": "100.00"}, "S1")
    assert dep.kind is None and dep.txn_id is None


def test_the_day_query_is_one_the_simulator_accepts_and_dates_are_checked() -> None:
    suiteql.run(day_query(DAY), ["S1"])
    with pytest.raises(ValueError):
        day_query("2026-03-02' OR 1=1 --")


def test_topic_documents_flag_registers_and_the_worker_exports_them() -> None:
    """What `reconcile` publishes, read back as a worker does (recon_watch.apply), in the
    gauges Prometheus scrapes."""
    import json

    from tillbridge.streams.ops.reconcile.publish import documents
    from tillbridge.streams.runtime import metrics, recon_watch

    reports = reconcile(dirty_day())
    docs = documents(reports, DAY, None, D("10.00"), {"netsuite_requests": 2})
    keys = [k.decode() for k, _ in docs]
    assert keys == ["S1/R1/2026-03-02", "S2/R1/2026-03-02", "2026-03-02/*"]
    registers, summary = [d for _, d in docs[:-1]], docs[-1][1]
    assert [r["flagged"] for r in registers] == [True, False]
    assert summary["type"] == "summary" and summary["balanced"] is False
    assert summary["stores"]["S1"] == {"drift_count": 6, "drift_amount": "69.50",
                                       "flagged_registers": ["R1"]}
    for _, doc in docs:
        recon_watch.apply(None, json.dumps(doc).encode(), 0)
    recon_watch.apply(None, b"not json", 0)  # logged, ignored
    value = metrics.REGISTRY.get_sample_value
    assert value("tillbridge_reconciliation_drift_amount", {"store": "S1"}) == 69.5
    assert value("tillbridge_reconciliation_drift_count", {"store": "S2"}) == 0
    assert value("tillbridge_reconciliation_register_flagged",
                 {"store": "S1", "register": "R1"}) == 1
    # a threshold above the drift: not flagged
    calm = documents(reports, DAY, "S1", D("100.00"), {})
    assert [d["flagged"] for _, d in calm[:-1]] == [False, False]
