"""A summary answers for its receipts (the ``summary`` sync mode of sales): a return of a
summarised receipt is refunded from the summary, a payment of one is covered by it, their
loyalty is skipped by a named reason, and a changed re-send of a receipt in a window is a
``conflicting_resend``, never a quiet duplicate. Posted to the in-process simulator (real
HTTP) and read back; window engine and book driven with explicit event times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

from tests.factories import make_payment, make_return, run_client, sandbox_refdata
from tests.test_runtime_fakes import RecordingEmitter
from tests.test_sync_modes import receipts
from tillbridge.devstack.netsuite_sim.server import SimServer
from tillbridge.streams.flows.base import Lookups
from tillbridge.streams.flows.payment import post_payment
from tillbridge.streams.flows.returns import ReturnFlow, post_return
from tillbridge.streams.flows.sale import SaleFlow, SaleRefs
from tillbridge.streams.flows.sink import messages as sink_messages
from tillbridge.streams.flows.window_plans import SummaryPlan, post_summary, sale_plan
from tillbridge.streams.ledger.lookup import dependency_exists
from tillbridge.streams.ledger.loyalty import LOYALTY_SUMMARISED
from tillbridge.streams.ledger.summary import build_summary_cash_sale, summary_txn_id
from tillbridge.streams.ledger.tax import tax_setup
from tillbridge.streams.ledger.types import Missing, Posting, Refused, Skipped, Written
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.sync_modes import H_MODE
from tillbridge.streams.runtime.acks import AckQueue
from tillbridge.streams.runtime.window_close import Member, WindowCloser, held_conflict
from tillbridge.streams.runtime.windows import WindowAgent
from tillbridge.streams.stages.deadletter import H_REASON, header
from tillbridge.streams.stages.enrich_payment import PaymentRefs, resolve_payment
from tillbridge.streams.stages.enrich_return import ReturnRefs
from tillbridge.streams.stages.messages import Source
from tillbridge.streams.windows.book import WindowBook, WindowRecord
from tillbridge.streams.windows.engine import WindowEngine, WindowSpec

MAPS = Mappings.load()
START = datetime(2026, 11, 26, 15, tzinfo=UTC)


def summary_body() -> dict[str, Any]:
    txn = summary_txn_id("R01", "2026-11-26", START, "3600s")
    return build_summary_cash_sale(receipts(), txn, MAPS.guest_customer, MAPS.discount_item,
                                   tax_setup(MAPS.document.get("tax"), "1"))


def test_a_return_of_a_summarised_receipt_is_refunded_from_the_summary() -> None:
    """Receipt S001-R01-000042 went into the summary: its return (one tee, 18.99 + 1.64
    tax) finds the summary by its receipts list, is transformed from it, and NetSuite's
    cashRefund reads back at the return's 20.63 to the cent; the result names the summary
    and says why no loyalty points are reversed."""
    body = summary_body()
    ret = make_return(loyalty_points_reversed=19)
    refs = ReturnFlow().resolve(ret, Lookups(MAPS, sandbox_refdata()))
    assert isinstance(refs, ReturnRefs), refs
    with SimServer() as sim:
        summary = run_client(sim, lambda c: post_summary(c, body))
        assert isinstance(summary, Written) and summary.created
        posted = run_client(sim, lambda c: post_return(c, ret, refs))
        again = run_client(sim, lambda c: post_return(c, ret, refs))
        assert isinstance(posted, Posting), posted
        [refund] = posted.records
        held = run_client(sim, lambda c: c.get(refund.record_type, refund.netsuite_id))
        rows = run_client(sim, lambda c: c.suiteql(
            "SELECT externalid FROM transaction WHERE recordtype = ?", params=["cashrefund"]))
    assert (refund.record_type, refund.created) == ("cashRefund", True)
    assert refund.links == {"createdFrom": summary.netsuite_id,
                            "summary": body["externalId"]}
    assert D(str(held["total"])) == ret["refund_total"] == D("20.63")
    assert str(held["createdFrom"]["id"]) == summary.netsuite_id
    assert posted.result == {"summary_external_id": body["externalId"],
                             "loyalty_skipped": {"reason": LOYALTY_SUMMARISED, "points": 19}}
    assert isinstance(again, Posting) and not again.records[0].created
    assert [r["externalid"] for r in rows] == [refund.external_id], "refunded once"


def test_a_return_parked_before_its_summary_is_released_once_the_summary_is_posted() -> None:
    """The summary window of a receipt closes hours later: its return parks first, and the
    parking sweep's dependency check (``Pipeline.dependency_exists``) says no until the
    summary is in NetSuite, then yes; the released return posts from the summary."""
    ret = make_return()
    refs = ReturnFlow().resolve(ret, Lookups(MAPS, sandbox_refdata()))
    assert isinstance(refs, ReturnRefs), refs
    with SimServer() as sim:
        early = run_client(sim, lambda c: post_return(c, ret, refs))
        assert isinstance(early, Missing), early
        waiting = run_client(sim, lambda c: dependency_exists(c, early.dependency,
                                                              early.record_types))
        run_client(sim, lambda c: post_summary(c, summary_body()))
        landed = run_client(sim, lambda c: dependency_exists(c, early.dependency,
                                                             early.record_types))
        late = run_client(sim, lambda c: post_return(c, ret, refs))
    assert early.record_types[-1] == "summary:S001|R01|2026-11-26|S001-R01-000042"
    assert (waiting, landed) == (False, True)
    assert isinstance(late, Posting) and late.records[0].record_type == "cashRefund"
    assert late.records[0].links["summary"] == summary_body()["externalId"]


def test_a_payment_of_a_summarised_receipt_is_covered_by_the_summary() -> None:
    """Without the summary it waits (``Missing``); with it, it is covered like a
    cashSale's payment: no record."""
    pay = make_payment()
    refs = resolve_payment(pay, MAPS, sandbox_refdata())
    assert isinstance(refs, PaymentRefs), refs
    with SimServer() as sim:
        before = run_client(sim, lambda c: post_payment(c, pay, refs))
        summary = run_client(sim, lambda c: post_summary(c, summary_body()))
        after = run_client(sim, lambda c: post_payment(c, pay, refs))
    assert type(before).__name__ == "Missing"
    assert isinstance(summary, Written)
    assert isinstance(after, Skipped), after
    assert f"covered by summary cashSale {summary.netsuite_id}" in after.why


# -- a changed re-send of a receipt in a window --------------------------------------

def plan() -> SummaryPlan:
    made = sale_plan(SaleFlow(), "summary/3600s", 3600, 0, 60, 0, lambda _s: "UTC")
    assert isinstance(made, SummaryPlan)
    return made


SOURCE = Source("tillbridge.routed.window.v1", 0, 1, b"k", b"v", [])


def member(sale: dict[str, Any]) -> Member:
    return Member(SaleFlow(), SOURCE, SOURCE, sale, None, None)


def changed(sale: dict[str, Any]) -> dict[str, Any]:
    """The same receipt re-sent with one more cent of tax on its first line."""
    lines = [{**sale["lines"][0], "tax_amount": sale["lines"][0]["tax_amount"] + D("0.01")},
             *sale["lines"][1:]]
    return {**sale, "lines": lines, "tax_total": sale["tax_total"] + D("0.01"),
            "total": sale["total"] + D("0.01")}


def test_a_changed_resend_into_an_open_window_is_a_conflicting_resend() -> None:
    p = plan()
    sale = receipts()[1][0]
    engine: WindowEngine[Member] = WindowEngine(p.name, p.spec)
    key, mid = p.key(sale), p.member_id(sale)
    engine.add(key, mid, START + timedelta(minutes=5), member(sale))
    same = engine.add(key, mid, START + timedelta(minutes=5), member(sale))
    assert same.verdict == "duplicate"
    assert held_conflict(p, engine, WindowBook(), same, mid, sale) is None, "same content"
    resent = changed(sale)
    again = engine.add(key, mid, START + timedelta(minutes=5), member(resent))
    refused = held_conflict(p, engine, WindowBook(), again, mid, resent)
    assert isinstance(refused, Refused), refused
    assert refused.rejection.reason == "conflicting_resend"
    inputs = refused.rejection.inputs
    assert inputs["window"] == again.wid
    assert inputs["differences"]["total"] == {"posted": "17.38", "resent": "17.39"}
    assert inputs["posted_fingerprint"] != inputs["resent_fingerprint"]


def test_a_changed_resend_of_a_receipt_in_a_posted_summary_names_the_summary() -> None:
    """The window book keeps each member's fingerprint and totals: after the summary is
    posted (and the members' events are gone) a changed re-send is still told, and the
    dead letter names the summary record; the unchanged re-send is not refused."""
    p = plan()
    sale = receipts()[1][0]
    mid = p.member_id(sale)
    wid = "sale.summary/3600s|S001:R01:2026-11-26|20261126T150000Z"
    book = WindowBook()
    book.put(WindowRecord(wid, p.name, p.key(sale), START.isoformat(),
                          (START + timedelta(hours=1)).isoformat(), "pos-sum-S001-X",
                          "posted", {mid: [START.isoformat(), False, *p.member_book(sale)]},
                          netsuite_id="901"))
    engine: WindowEngine[Member] = WindowEngine(p.name, p.spec, known={mid: wid})
    added = engine.add(p.key(sale), mid, START, member(sale))
    assert added.verdict == "counted"
    assert held_conflict(p, engine, book, added, mid, sale) is None
    resent = changed(sale)
    refused = held_conflict(p, engine, book, added, mid, resent)
    assert isinstance(refused, Refused), refused
    inputs = refused.rejection.inputs
    assert refused.rejection.reason == "conflicting_resend"
    assert inputs["posted_record"] == {"record_type": "cashSale", "netsuite_id": "901",
                                       "external_id": "pos-sum-S001-X"}
    assert inputs["differences"]["total"] == {"posted": "17.38", "resent": "17.39"}
    assert "fingerprint and totals" in inputs["differences"]["lines"]


def test_a_closed_summary_keeps_what_tells_a_changed_resend_and_posts_to_the_cent() -> None:
    """The window closer itself (book, NetSuite post, members' results) on the simulator:
    the summary reads back at the sum of its five receipts (108.60); the book it wrote
    tells the unchanged re-send of a receipt (counted) from a changed one
    (``conflicting_resend`` naming the summary's internal id). A summarised receipt's
    result names the summary and says why its points were not written."""
    p = plan()
    rs = receipts()
    rs[0][0]["loyalty_points_earned"] = 41  # an identified shopper's receipt
    engine: WindowEngine[Member] = WindowEngine(p.name, p.spec)
    for n, (sale, enr) in enumerate(rs):
        engine.add(p.key(sale), p.member_id(sale), START + timedelta(minutes=n),
                   Member(SaleFlow(), SOURCE, SOURCE, sale, SaleRefs(enr), None))
    engine.tick(START.timestamp() + 7200)  # a quiet register: closed on the wall clock
    [window] = engine.take_ready()
    book, emitter = WindowBook(), RecordingEmitter()

    async def close(client: Any) -> dict[str, Any]:
        pipe = SimpleNamespace(lookups=Lookups(MAPS, sandbox_refdata()), reliable=client)
        closer = WindowCloser(pipe, emitter, book, AckQueue(lambda _e: None, lambda _e: None))
        await closer.close(p, window)
        [record] = book.records.values()
        return await client.get("cashSale", str(record.netsuite_id))

    with SimServer() as sim:
        held = run_client(sim, close)
    [record] = book.records.values()
    assert record.state == "posted" and record.external_id == held["externalId"]
    assert D(str(held["total"])) == sum((s["total"] for s, _ in rs), D(0)) == D("108.60")
    results = {d["pos_transaction_id"]: d for d in (
        json.loads(o.value or b"") for o in emitter.sent if o.topic == "tillbridge.results.v1")}
    assert len(results) == 5
    assert {r["external_id"] for d in results.values() for r in d["records"]} == \
        {record.external_id}, "each receipt's result names the summary"
    assert results["S001-R01-000042"]["loyalty_skipped"] == {"reason": LOYALTY_SUMMARISED,
                                                             "points": 41}
    assert "loyalty_skipped" not in results["S001-R01-000043"]
    sale = rs[1][0]
    mid = p.member_id(sale)
    known = WindowEngine[Member](p.name, p.spec, known=book.known(p.name))
    added = known.add(p.key(sale), mid, START, member(sale))
    assert added.verdict == "counted"
    assert held_conflict(p, known, book, added, mid, sale) is None
    refused = held_conflict(p, known, book, added, mid, changed(sale))
    assert isinstance(refused, Refused) and refused.rejection.reason == "conflicting_resend"
    assert refused.rejection.inputs["posted_record"]["netsuite_id"] == record.netsuite_id


class _Pipe:
    """What ``WindowAgent.add`` uses of the pipeline, without a schema registry: ``prepare``
    hands over the decoded sale (the real one decodes Avro); ``messages`` is the real
    ``flows/sink.messages``."""

    def __init__(self) -> None:
        self.flows: dict[str, Any] = {"pos.sale.v1": SaleFlow()}
        self.mappings = MAPS
        self.next: dict[str, Any] = {}

    def prepare(self, src: Source) -> tuple[Any, Source, Any, Any]:
        sale = self.next
        return self.flows["pos.sale.v1"], src, sale, SaleRefs(SaleFlow().resolve(sale, Lookups(
            MAPS, sandbox_refdata())))

    def messages(self, flow: Any, event: Any, origin: Source, src: Source,
                 outcome: Any) -> list[Any]:
        return sink_messages(flow, event, origin, src, outcome,
                             parked_lookup=lambda _i: None, park_timeout_s=60)


def test_the_window_agent_dead_letters_a_changed_resend_and_holds_an_exact_one() -> None:
    """``WindowAgent.add`` itself (a stand-in pipeline: no registry here): the receipt
    waits in its window, its exact re-send is answered at once, a changed one is the
    ``conflicting_resend`` dead letter."""
    pipe = _Pipe()
    agent = WindowAgent(pipe, RecordingEmitter(), None,  # type: ignore[arg-type]
                        WindowSpec(3600, 0, 60, 0))
    src = Source("tillbridge.routed.window.v1", 0, 7, b"S001:R01", b"v",
                 [(H_MODE, b"summary/3600s")])
    sale = receipts()[1][0]
    pipe.next = sale
    assert agent.add(src, None, START.timestamp()) is None, "into its open window"
    assert agent.add(src, None, START.timestamp()) is not None  # exact: a duplicate result
    pipe.next = changed(sale)
    [out] = agent.add(src, None, START.timestamp()) or []
    assert out.topic.startswith("tillbridge.dlq.")
    assert header(out.headers, H_REASON) == "conflicting_resend"


def test_the_window_agent_drops_only_the_windows_of_revoked_partitions() -> None:
    """``WindowAgent.revoked`` (a stand-in pipeline, as above): a rebalance takes routed
    partition 0 away; the window holding its record is dropped unposted (the new owner
    reads the record again), the window of partition 1 stays open here."""
    pipe = _Pipe()
    agent = WindowAgent(pipe, RecordingEmitter(), None,  # type: ignore[arg-type]
                        WindowSpec(3600, 0, 60, 0))
    sales = [sale for sale, _ in receipts()][:2]
    for partition, (sale, register) in enumerate(zip(sales, ("R01", "R02"), strict=True)):
        pipe.next = {**sale, "register_id": register}
        src = Source("tillbridge.routed.window.v1", partition, 3, register.encode(), b"v",
                     [(H_MODE, b"summary/3600s")])
        assert agent.add(src, None, START.timestamp()) is None
    [engine] = agent.engines.values()
    assert sorted(w.key.split(":")[1] for w in engine.open_windows) == ["R01", "R02"]
    agent.revoked({0})
    assert [w.key.split(":")[1] for w in engine.open_windows] == ["R02"]
    assert engine.take_ready() == [], "dropped, not closed: nothing is posted for it here"


def test_the_window_agent_takes_up_a_reassigned_partitions_windows_from_the_book() -> None:
    """``WindowAgent.on_assigned`` then ``handle`` (stand-in pipeline as above; the book is
    fed by hand, since its Kafka follower cannot run here): partition 0 goes away and its
    open window is dropped; another worker posts that window; when the partition comes
    back, the next batch learns it from the book first, so the record read again is
    counted in the posted window, not opened in a new one here."""
    import asyncio

    from tillbridge.streams.windows.book import WindowRecord

    pipe = _Pipe()
    agent = WindowAgent(pipe, RecordingEmitter(), None,  # type: ignore[arg-type]
                        WindowSpec(3600, 0, 60, 0))
    pipe.next = receipts()[0][0]
    src = Source("tillbridge.routed.window.v1", 0, 3, b"S001:R01", b"v",
                 [(H_MODE, b"summary/3600s")])
    assert agent.add(src, None, START.timestamp()) is None
    [engine] = agent.engines.values()
    [win] = engine.open_windows
    agent.revoked({0})
    assert engine.open_windows == [] and engine.take_ready() == []
    [name] = agent.engines
    rec = WindowRecord(win.wid, name, win.key, win.start.isoformat(), win.end.isoformat(),
                       "pos-sum-x", "posted", {m: [START.isoformat(), False]
                                               for m in win.members}, "d", "77")
    agent.book.apply(rec.wid.encode(), rec.to_json())  # what the other worker wrote
    agent.on_assigned()
    asyncio.run(agent.handle([]))
    assert agent.add(src, None, START.timestamp()) is not None, "counted, not reopened"
    assert engine.open_windows == []
