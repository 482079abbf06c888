"""Payments, returns and orders in the ``batch`` sync mode (issue 11 §1): written when their window
closes, a sale before what depends on it, payments' records through NetSuite's async batch
jobs. The in-process simulator (real HTTP) is read back to the cent; the drain runs with a
stand-in pipeline whose ``prepare`` hands over decoded events (there is no schema registry
in a unit test), everything after it is the real code."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import httpx

from tests.factories import make_order, make_payment, make_return, make_sale, sandbox_refdata
from tillbridge.connectors.netsuite import NetSuiteClient
from tillbridge.connectors.netsuite.batch import BatchWriter, PollPolicy
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.devstack.netsuite_sim.server import SimServer
from tillbridge.streams.flows import drain
from tillbridge.streams.flows.base import Flow, Lookups, SinkContext
from tillbridge.streams.flows.order import OrderFlow
from tillbridge.streams.flows.payment import PaymentFlow
from tillbridge.streams.flows.returns import ReturnFlow
from tillbridge.streams.flows.sale import SaleFlow, SaleRefs
from tillbridge.streams.flows.sale_writer import SalePoster
from tillbridge.streams.flows.sink import messages
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich import Enrichment
from tillbridge.streams.stages.messages import Outbound, Source

MAPS = Mappings.load()
LOOKUPS = Lookups(MAPS, sandbox_refdata())


class _Pipe:
    """``drain_batch``'s view of the pipeline: ``prepare`` gives the decoded event of each
    routed record (by offset), the rest is the real sink context and messages."""

    def __init__(self, client: ReliableClient, events: dict[int, tuple[Flow, Any, Any]],
                 maps: Mappings = MAPS) -> None:
        self.reliable, self.events = client, events
        self.lookups = Lookups(maps, LOOKUPS.refdata)

    def prepare(self, src: Source) -> tuple[Flow, Source, Any, Any]:
        flow, event, refs = self.events[src.offset]
        return flow, src, event, refs

    def context(self, state: Any, at: Callable[[int], None] = lambda _i: None) -> SinkContext:
        return SinkContext(self.reliable, state, self.lookups, "create", at)

    def messages(self, flow: Flow, event: Any, origin: Source, src: Source,
                 outcome: Any) -> list[Outbound]:
        return messages(flow, event, origin, src, outcome, parked_lookup=lambda _i: None,
                        park_timeout_s=60)


def src(offset: int) -> Source:
    return Source("pos.x.v1", 0, offset, b"k", b"v", [])


def outcome(outs: list[Outbound]) -> str:
    """The event's outcome: its results record's (else the first message's topic)."""
    for out in outs:
        if out.topic == "tillbridge.results.v1":
            return str(json.loads(out.value or b"{}")["outcome"])
    return outs[0].topic


def run(sim: SimServer, events: dict[int, tuple[Flow, Any, Any]], maps: Mappings = MAPS,
        before: Callable[[ReliableClient], Any] | None = None
        ) -> tuple[list[list[Outbound]], list[str]]:
    jobs: list[str] = []

    async def main() -> list[list[Outbound]]:
        async with NetSuiteClient(sim.base_url, sim.credentials) as raw:
            client = ReliableClient(raw, RetryPolicy(max_attempts=2))
            if before is not None:
                await before(client)
            writer = BatchWriter(client, poll=PollPolicy(first_s=0.05, factor=1.5, max_s=0.5),
                                 on_job=jobs.append)
            return await drain.drain_batch(_Pipe(client, events, maps), writer,  # type: ignore[arg-type]
                                           [src(o) for o in events], {})
    return asyncio.run(main()), jobs


def test_a_batched_return_listed_before_its_batched_sale_posts_after_it() -> None:
    """One window's records, the return first: the sale is written first (async batch
    job), so the return finds it and its cashRefund is transformed from it at 20.63."""
    sale, ret = make_sale(), make_return()
    enr = SaleFlow().resolve(sale, LOOKUPS)
    refs = ReturnFlow().resolve(ret, LOOKUPS)
    assert isinstance(enr, Enrichment)
    with SimServer() as sim:
        outs, jobs = run(sim, {1: (ReturnFlow(), ret, refs),
                               2: (SaleFlow(), sale, SaleRefs(enr))})
        rows = httpx.get(f"{sim.base_url}/__sim/stats").json()
        refund = _read(sim, "SELECT id, foreigntotal FROM transaction "
                            "WHERE recordtype = 'cashrefund'")
        held = _get(sim, "cashRefund", refund[0]["id"]) if refund else {}
        cash = _read(sim, "SELECT id, foreigntotal FROM transaction "
                          "WHERE recordtype = 'cashsale'")
    assert [outcome(o) for o in outs] == ["posted", "posted"], outs
    assert "submitted" in jobs and rows["records"]["cashSale"]["created"] == 1
    [r], [c] = refund, cash
    assert D(r["foreigntotal"]) in (ret["refund_total"], -ret["refund_total"])
    assert str(held["createdFrom"]["id"]) == str(c["id"]), "transformed from the sale"
    assert D(c["foreigntotal"]) == sale["total"]


def test_batched_payments_of_an_order_are_deposits_written_by_one_batch_job() -> None:
    """Sales booked as salesOrders at S001: two approved payments of one sale become two
    customerDeposits in one async batch job (read back to the cent); a payment whose sale
    is not in NetSuite parks; a declined one is skipped."""
    doc = {**MAPS.document, "sale_record_types": {"stores": {"S001": "salesOrder"}}}
    maps = Mappings.from_dict(doc)
    first = make_payment(amount=D("30.00"))
    second = make_payment(payment_id="P-S001-R01-000042-2", amount=D("20.00"))
    orphan = make_payment(payment_id="P-S001-R01-000999-1",
                          pos_transaction_id="S001-R01-000999")
    declined = make_payment(payment_id="P-S001-R01-000042-3", status="DECLINED",
                            failure_code="05")
    flow = PaymentFlow()
    events = {}
    for n, pay in enumerate((first, second, orphan, declined), 1):
        refs = flow.resolve(pay, Lookups(maps, LOOKUPS.refdata))
        assert not hasattr(refs, "reason"), refs
        events[n] = (flow, pay, refs)
    sale = make_sale()
    enr = SaleFlow().resolve(sale, LOOKUPS)
    assert isinstance(enr, Enrichment)

    async def post_sale(client: ReliableClient) -> None:
        poster = SalePoster(client, discount_item=maps.discount_item,
                            sale_records=doc["sale_record_types"])
        await poster.post(sale, enr)

    with SimServer() as sim:
        outs, jobs = run(sim, events, maps, post_sale)
        deposits = _read(sim, "SELECT externalid, foreigntotal FROM transaction "
                              "WHERE recordtype = 'customerdeposit' ORDER BY externalid")
        stats = httpx.get(f"{sim.base_url}/__sim/stats").json()
    assert [outcome(o) for o in outs] == ["posted", "posted", "parked",
                                          "skipped"]
    assert jobs.count("submitted") == 1, jobs
    assert [(r["externalid"].rsplit("-", 1)[-1], abs(D(r["foreigntotal"])))
            for r in deposits] == [("1", D("30.00")), ("2", D("20.00"))]
    assert stats["records"]["customerDeposit"]["created"] == 2


def test_a_batched_orders_events_are_written_in_their_sequence() -> None:
    """One window holds a web order's pickup (sequence 2) before its placement (sequence
    1), and another order: the placement is written first, so the pickup is not parked but
    fulfils and bills the salesOrder at the till; read back to the cent."""
    from datetime import UTC, datetime

    placed = make_order()
    pickup = make_order(sequence=2, status="PICKED_UP", event_id="ev-pickup",
                        store_id="S001", register_id="R02", pos_transaction_id="S001-R02-000778",
                        occurred_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    for line in pickup["lines"]:
        line["quantity_fulfilled"] = line["quantity_ordered"]
    other = make_order(order_id="WEB-1002", event_id="ev-other")
    flow = OrderFlow()
    events = {}
    for n, ev in enumerate((pickup, other, placed), 1):
        refs = flow.resolve(ev, LOOKUPS)  # type: ignore[arg-type]
        assert not hasattr(refs, "reason"), refs
        events[n] = (flow, ev, refs)
    with SimServer() as sim:
        outs, _jobs = run(sim, events)
        orders = _read(sim, "SELECT externalid, foreigntotal FROM transaction "
                            "WHERE recordtype = 'salesorder' ORDER BY externalid")
        bills = _read(sim, "SELECT foreigntotal FROM transaction WHERE recordtype = 'cashsale'")
        shipped = _read(sim, "SELECT id FROM transaction WHERE recordtype = 'itemfulfillment'")
    assert [outcome(o) for o in outs] == ["posted", "posted", "posted"], outs
    assert [(r["externalid"], D(r["foreigntotal"])) for r in orders] == [
        ("pos-ord-WEB-1001", placed["total"]), ("pos-ord-WEB-1002", other["total"])]
    assert [D(b["foreigntotal"]) for b in bills] == [placed["total"]] and len(shipped) == 1


def _read(sim: SimServer, query: str) -> list[dict[str, Any]]:
    async def main() -> list[dict[str, Any]]:
        async with NetSuiteClient(sim.base_url, sim.credentials) as raw:
            return await raw.suiteql(query)
    return asyncio.run(main())


def _get(sim: SimServer, record_type: str, internal_id: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with NetSuiteClient(sim.base_url, sim.credentials) as raw:
            return await raw.get(record_type, internal_id)
    return asyncio.run(main())
