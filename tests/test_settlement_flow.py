"""A register close against the simulator over real HTTP: it waits (parks) while its
journal lists a receipt NetSuite lacks, naming it; then banks the register's cash sales by
one deposit and books the count's over/short by a balanced journal, read back to the cent;
or one summary journal (``mode: journal``). Also: the simulator's SuiteQL filters on the
``custbody_pos_*`` columns, and a record changed by hand (PATCH) changes its total."""

from __future__ import annotations

import copy
import json
from decimal import Decimal as D
from typing import Any

from tests.factories import make_sale, make_settlement, post_cash_sale, run_client, sandbox_refdata
from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.settlement import post_register_day, register_receipts
from tillbridge.streams.ledger.types import Missing, Posting, Skipped
from tillbridge.streams.reconcile.netsuite_side import day_query
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich_settlement import SettlementRefs, resolve_settlement
from tillbridge.streams.stages.records import Rejection

MAPS = Mappings.load(None)
REF = sandbox_refdata()
DAY = "2026-11-26"


def close(*txns: str, **overrides: Any) -> dict[str, Any]:
    # make_sale: 41.26 with 3.28 tax; the simulated account books no tax (lines carry no
    # tax code), so NetSuite holds 37.98 net
    return make_settlement(transactions=[{"pos_transaction_id": t, "kind": "sale",
                                          "amount": D("41.26"), "tax_amount": D("3.28")}
                                         for t in txns], **overrides)


def refs(s: dict[str, Any], maps: Mappings = MAPS) -> SettlementRefs:
    out = resolve_settlement(s, maps)  # type: ignore[arg-type]
    assert isinstance(out, SettlementRefs), out
    return out


async def _two_sales(rc: ReliableClient) -> list[str]:
    return [await post_cash_sale(rc, make_sale(pos_transaction_id=t), MAPS, REF)
            for t in ("T1", "T2")]


def test_close_waits_for_a_missing_receipt_then_deposits_and_books_over_short(
        sim: SimServer) -> None:
    async def use(rc: ReliableClient) -> tuple[Any, ...]:
        ids = await _two_sales(rc)
        other = make_sale(pos_transaction_id="T9", register_id="R02")
        await post_cash_sale(rc, other, MAPS, REF)  # another register: not banked here
        waiting = await post_register_day(rc, close("T1", "T2", "T3"), refs(close()))
        s = close("T1", "T2")
        posted = await post_register_day(rc, s, refs(s))
        again = await post_register_day(rc, s, refs(s))
        deposit = await rc.get("deposit", eid("pos-dep-S001-Z-0042"), expand=True)
        journal = await rc.get("journalEntry", eid("pos-je-S001-Z-0042"), expand=True)
        recorded = [D(str((await rc.get("cashSale", i))["total"])) for i in ids]
        return ids, waiting, posted, again, deposit, journal, sum(recorded, D(0))

    ids, waiting, posted, again, deposit, journal, recorded = run_client(sim, use)
    assert isinstance(waiting, Missing)
    assert waiting.dependency == "pos-sale-S001-T3" and "sale T3" in waiting.detail
    assert isinstance(posted, Posting)
    assert [w.record_type for w in posted.records] == ["deposit", "journalEntry"]
    assert posted.result["settlement"]["posted_total"] == str(recorded)
    assert posted.result["settlement"]["expected_total"] == "70.00"
    assert isinstance(again, Posting) and not again.created, "a replay posts once"
    # the register reconciled against the close's journal, for the reconciliation topic
    [recon] = [json.loads(m.value or b"") for m in posted.audit]
    assert recon["type"] == "register" and recon["origin"] == "settlement"
    assert recon["balanced"] is True and recon["netsuite_by_type"]["cashsale"]["count"] == 2
    assert D(str(deposit["total"])) == recorded  # the cash sales as NetSuite recorded them
    assert sorted(str(p["id"]) for p in deposit["payment"]["items"]) == sorted(ids)
    lines = journal["line"]["items"]
    debits = sum((D(str(ln.get("debit") or 0)) for ln in lines), D(0))
    credits = sum((D(str(ln.get("credit") or 0)) for ln in lines), D(0))
    assert debits == credits == D("1.50") + D("0.25")
    short = [ln for ln in lines if "CASH short 1.50" in ln["memo"]]
    assert {str(ln["account"]["id"]) for ln in short} == {"110", "620"}


def test_summary_journal_mode_and_interim_reports(sim: SimServer) -> None:
    maps = Mappings.from_dict({**MAPS.document, "settlement": {
        **MAPS.document["settlement"], "mode": "journal"}})

    async def use(rc: ReliableClient) -> tuple[Any, ...]:
        await _two_sales(rc)
        s = close("T1", "T2")
        posted = await post_register_day(rc, s, refs(s, maps))
        interim = await post_register_day(rc, close(report_type="X"), refs(s, maps))
        journal = await rc.get("journalEntry", eid("pos-je-S001-Z-0042"), expand=True)
        return posted, interim, journal

    posted, interim, journal = run_client(sim, use)
    recorded = D(posted.result["settlement"]["posted_total"]) if isinstance(posted, Posting) \
        else D(0)
    assert isinstance(posted, Posting) and posted.result["mode"] == "journal"
    assert isinstance(interim, Skipped)
    by_account = {str(ln["account"]["id"]): ln for ln in journal["line"]["items"]}
    assert D(str(by_account["110"]["debit"])) == D("68.75")  # counted: 38.50 + 30.25
    assert D(str(by_account["120"]["credit"])) == recorded  # what NetSuite recorded
    assert D(str(by_account["620"]["debit"])) == recorded - D("68.75")


def test_unmapped_settlement_accounts_are_a_rejection() -> None:
    doc = copy.deepcopy(MAPS.document)
    del doc["settlement"]
    out = resolve_settlement(close(), Mappings.from_dict(doc))  # type: ignore[arg-type]
    assert isinstance(out, Rejection) and out.reason == "settlement_unmapped"
    out = resolve_settlement(close(store_id="S999"), MAPS)  # type: ignore[arg-type]
    assert isinstance(out, Rejection) and out.reason == "unknown_store"


def test_sim_suiteql_filters_on_pos_fields_and_a_patch_changes_the_total(
        sim: SimServer) -> None:
    async def use(rc: ReliableClient) -> tuple[Any, ...]:
        ids = await _two_sales(rc)
        rows = await rc.suiteql(day_query(DAY), params=["S001"])
        none = await rc.suiteql(day_query(DAY), params=["S002"])
        await rc.patch("cashSale", ids[0], {"item": {"items": [
            {"item": {"id": "1001"}, "quantity": 1, "rate": D("10.00"),
             "location": {"id": "1"}}]}})
        receipts = await register_receipts(rc, close())
        return ids, rows, none, receipts

    ids, rows, none, receipts = run_client(sim, use)
    assert sorted(r["id"] for r in rows) == sorted(ids) and none == []
    assert {r["custbody_pos_transaction_id"] for r in rows} == {"T1", "T2"}
    amounts = {r.txn_id: r.amount for r in receipts}
    assert amounts["T1"] != amounts["T2"], "the hand-changed sale's total changed"
