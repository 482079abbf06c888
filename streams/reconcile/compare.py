"""The comparison: per store, register and business day, the till's receipts against the
NetSuite transactions that carry their POS transaction ids. Pure: no I/O.

What the till took (the *truth*) is the register's electronic journal from its Z report
when the report carries one, else the receipts on the input topics less those tillbridge
flagged as a double scan (the same basket under a new id). Each receipt is matched by
(kind, POS transaction id) to its NetSuite record:

- in the truth, not in NetSuite: ``missing`` (its state says why: dead-lettered with its
  reason, parked on what, in flight, or never received at all);
- in NetSuite, not in the truth: ``extra`` (a double scan, a record keyed by hand);
- in both at different amounts: ``different`` (a refund posted at the wrong amount, a
  record changed by hand in NetSuite); the detail says which side disagrees.

A **summary** cashSale (sales' ``summary`` sync mode, ``ledger/summary.py``) stands for the
receipts it lists (``covers``): each of them is matched by it, not missing; a listed
receipt the till does not have is ``extra`` (under its own id); and the summary is
``different`` (under its own ``SUM-...`` id, both amounts) when its total is not the sum of
its receipts' totals. Tallies per record type and tender are unchanged: the summary's
total counts once on NetSuite's side, its receipts on the POS side.

Amounts are compared gross, tax included: NetSuite's ``total`` (``foreigntotal``) against the
receipt's total. The sale builders carry each line's tax so that NetSuite books the till's
tax to the cent (README, NetSuite > Tax), so any difference is real drift.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from tillbridge.streams.reconcile.model import (
    Drift,
    NsTxn,
    PosTxn,
    Problem,
    RegisterReport,
    State,
    Tally,
    TxnState,
)

Register = tuple[str, str]  # (store, register)


@dataclass(frozen=True, slots=True)
class DayInputs:
    """Everything one reconciliation of a business day compares (already filtered to it)."""

    business_date: str
    events: Sequence[PosTxn]  # receipts read from the input topics
    netsuite: Sequence[NsTxn]
    states: Mapping[str, TxnState] = field(default_factory=dict)
    journals: Mapping[Register, Sequence[PosTxn]] = field(default_factory=dict)
    zreport_tenders: Mapping[Register, Mapping[str, Decimal]] = field(default_factory=dict)


def reconcile(day: DayInputs) -> list[RegisterReport]:
    """One report per register seen on either side, sorted by store then register."""
    reports: dict[Register, RegisterReport] = {}

    def report(reg: Register) -> RegisterReport:
        if reg not in reports:
            reports[reg] = RegisterReport(reg[0], reg[1], day.business_date)
        return reports[reg]

    events = {(e.kind, e.txn_id): e for e in day.events}
    for e in day.events:
        rep = report((e.store_id, e.register_id))
        _tally(rep.pos_by_type, e.kind, e.amount)
        sign = Decimal(-1) if e.kind == "return" else Decimal(1)
        for tender, amount in e.tenders:
            _tally(rep.pos_by_tender, tender, sign * amount)
    for reg, tenders in day.zreport_tenders.items():
        report(reg).zreport_by_tender = dict(tenders)
    matched: dict[tuple[str, str], NsTxn] = {}
    for ns in day.netsuite:
        reg = (ns.store_id, ns.register_id or _register_of(ns, events))
        _tally(report(reg).netsuite_by_type, ns.record_type, ns.amount)
        if ns.kind is not None and ns.txn_id is not None:
            matched[(ns.kind, ns.txn_id)] = ns
    truth = _truth(day, events)
    covered = {("sale", txn): ns for ns in day.netsuite if ns.kind == "summary"
               for txn in ns.covers}
    for ns in day.netsuite:  # a summary is matched through its receipts, not by its id
        if ns.kind == "summary" and ns.txn_id is not None:
            matched.pop(("summary", ns.txn_id), None)
    summed: dict[str, Decimal] = defaultdict(Decimal)
    for key, pos in truth.items():
        ns_rec = matched.pop(key, None)
        if ns_rec is None and key in covered:
            summed[covered[key].netsuite_id] += pos.amount
            continue
        drift = _compare_one(pos, ns_rec, events.get(key), day.states)
        if drift is not None:
            report((pos.store_id, pos.register_id)).drifts.append(drift)
    for key, ns_sum in covered.items():
        if key not in truth:
            matched[key] = replace(ns_sum, amount=Decimal(0))  # listed, never rung: extra
    for ns in {ns.netsuite_id: ns for ns in covered.values()}.values():
        if summed[ns.netsuite_id] != ns.amount:
            reg = (ns.store_id, ns.register_id or "?")
            report(reg).drifts.append(Drift(
                ns.txn_id or ns.external_id, Problem.DIFFERENT, "sale", reg[0], reg[1],
                summed[ns.netsuite_id], ns.amount, ns.netsuite_id, State.UNKNOWN,
                f"summary of {len(ns.covers)} receipts: their totals add up to "
                f"{summed[ns.netsuite_id]}"))
    for key, ns_rec in matched.items():
        state = day.states.get(key[1], TxnState(State.UNKNOWN))
        reg = (ns_rec.store_id, ns_rec.register_id or _register_of(ns_rec, events))
        report(reg).drifts.append(Drift(
            key[1], Problem.EXTRA, key[0], reg[0], reg[1], None, ns_rec.amount,
            ns_rec.netsuite_id, state.state,
            state.detail or "in NetSuite, not in the register's receipts"))
    for rep in reports.values():
        rep.drifts.sort(key=lambda d: (d.problem, d.txn_id))
    return [reports[k] for k in sorted(reports)]


def _truth(day: DayInputs, events: Mapping[tuple[str, str], PosTxn]
           ) -> dict[tuple[str, str], PosTxn]:
    """What each register took: its Z journal, else its events less double scans."""
    truth: dict[tuple[str, str], PosTxn] = {}
    for journal in day.journals.values():
        truth.update({(t.kind, t.txn_id): t for t in journal})
    for key, e in events.items():
        if (e.store_id, e.register_id) in day.journals:
            continue
        state = day.states.get(e.txn_id)
        if state is not None and state.state is State.DOUBLE_SCAN:
            continue
        truth[key] = e
    return truth


def _compare_one(pos: PosTxn, ns: NsTxn | None, event: PosTxn | None,
                 states: Mapping[str, TxnState]) -> Drift | None:
    if ns is not None and ns.amount == pos.amount:
        return None
    if event is None:
        state = states.get(pos.txn_id, TxnState(State.NOT_RECEIVED,
                                                "in the register's journal, never published"))
    else:
        state = states.get(pos.txn_id, TxnState(State.IN_FLIGHT, "no outcome yet"))
    if ns is None:
        return Drift(pos.txn_id, Problem.MISSING, pos.kind, pos.store_id, pos.register_id,
                     pos.amount, None, None, state.state, state.detail)
    if event is not None and event.amount != pos.amount:
        why = f"the POS event says {event.amount}, the register's journal {pos.amount}"
    elif event is not None and event.amount != ns.amount:
        why = f"the POS event says {event.amount}: changed in NetSuite after posting"
    else:
        why = "changed in NetSuite after posting"
    return Drift(pos.txn_id, Problem.DIFFERENT, pos.kind, pos.store_id, pos.register_id,
                 pos.amount, ns.amount, ns.netsuite_id, state.state, why)


def _register_of(ns: NsTxn, events: Mapping[tuple[str, str], PosTxn]) -> str:
    if ns.kind is not None and ns.txn_id is not None:
        found = events.get((ns.kind, ns.txn_id))
        if found is not None:
            return found.register_id
    return "?"


def _tally(into: dict[str, Tally], key: str, amount: Decimal) -> None:
    into.setdefault(key, Tally()).add(amount)


def totals(reports: Iterable[RegisterReport]) -> dict[str, tuple[int, Decimal]]:
    """Drift count and amount per store (what the metrics export)."""
    counts: dict[str, int] = defaultdict(int)
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for rep in reports:
        counts[rep.store_id] += len(rep.drifts)
        amounts[rep.store_id] += rep.drift_amount
    return {store: (counts[store], amounts[store]) for store in counts}
