"""Sync modes per flow (the mappings' ``sync`` section), scheduled windows, and summary
sales: built from receipts, posted to the simulator and read back to the cent, and
reconciled through the receipts they cover. Pure apart from the in-process simulator (real
HTTP); event times are explicit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import make_sale, run_client, sandbox_refdata, split_tenders
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.demo import books_match
from tillbridge.devstack.netsuite_sim.server import SimServer
from tillbridge.streams.flows.base import Lookups
from tillbridge.streams.flows.sale import SaleFlow
from tillbridge.streams.flows.window_plans import post_summary, revive_sale
from tillbridge.streams.ledger.summary import (
    RECEIPTS_FIELD,
    build_summary_cash_sale,
    summary_txn_id,
)
from tillbridge.streams.ledger.tax import tax_setup
from tillbridge.streams.ledger.types import Written
from tillbridge.streams.reconcile.compare import DayInputs, reconcile
from tillbridge.streams.reconcile.model import PosTxn, Problem
from tillbridge.streams.reconcile.netsuite_side import read_day
from tillbridge.streams.refdata.mappings import MappingError, Mappings
from tillbridge.streams.refdata.sync_modes import SyncModes, parse_tag
from tillbridge.streams.stages.enrich import Enrichment
from tillbridge.streams.windows.engine import WindowEngine, WindowSpec, scheduled_bounds


def mappings(sync: object = None) -> Mappings:
    doc = Mappings.load().document
    if sync is not None:
        doc = {**doc, "sync": sync}
    return Mappings.from_dict(doc)


# -- configuration ---------------------------------------------------------------------

def test_the_default_is_the_seeds_hybrid() -> None:
    assert mappings().sync.describe() == {
        "sales": "realtime", "payments": "realtime", "returns": "realtime",
        "orders": "realtime", "customers": "realtime",
        "inventory": "batch/default", "settlement": "batch/default"}


def test_modes_windows_and_schedules_parse_and_travel_as_tags() -> None:
    sync = mappings({"sales": {"mode": "summary", "window": "4h"}}).sync
    assert sync.of("sale").tag == "summary/14400s" and sync.of("sales").windowed
    # what ingest routes to the window agent by mode: sales only (settlement's batch is
    # its own per register-day post; inventory is windowed anyway)
    assert [sync.window_tag(k) for k in ("sale", "settlement", "inventory", "payment")] == \
        ["summary/14400s", None, None, None]
    batched = mappings({"payments": "batch", "returns": {"mode": "batch", "window": "1h"}}).sync
    assert [batched.window_tag(k) for k in ("payment", "return", "order", "sale")] == \
        ["batch/default", "batch/3600s", None, None]
    assert mappings({"orders": {"mode": "batch", "window": "2h"}}).sync.window_tag("order") \
        == "batch/7200s"
    assert mappings().sync.window_tag("sale") is None
    assert parse_tag("summary/14400s") == ("summary", 14400.0, ())
    sched = SyncModes.parse({"sales": {"mode": "batch", "schedule": ["22:00", "06:00"]}})
    assert sched.of("sale").tag == "batch/at0600-2200"
    assert parse_tag("batch/at0600-2200") == ("batch", None, (360, 1320))
    assert SyncModes.parse({"sales": "batch"}).of("sale").tag == "batch/default"
    assert parse_tag("batch/default") == ("batch", None, ())


def test_an_order_in_batch_mode_goes_to_the_window_agent_by_its_store_and_event() -> None:
    """Ingest routes it to the window topic under its mode tag; its window is its
    store and register's (a web order has neither: ``-:-``), its member its event id."""
    from tests.factories import make_order
    from tests.sinkkit import EventCodec
    from tillbridge.streams.flows.order import OrderFlow
    from tillbridge.streams.flows.pipeline import Pipeline
    from tillbridge.streams.flows.window_plans import sale_plan
    from tillbridge.streams.refdata.sync_modes import H_MODE
    from tillbridge.streams.runtime.settings import Settings
    from tillbridge.streams.stages.messages import Source

    web, till = make_order(), make_order(store_id="S001", register_id="R02", event_id="e2")
    pipe = Pipeline(Settings.from_env({}), codec=EventCodec(web),  # type: ignore[arg-type]
                    mappings=mappings({"orders": {"mode": "batch", "window": "2h"}}))
    pipe.refdata = sandbox_refdata()
    out = pipe.ingest(Source(topics.OMNICHANNEL.name, 0, 1, b"k", b"v", []))
    assert out.topic == topics.ROUTED_WINDOW and dict(out.headers)[H_MODE] == b"batch/7200s"
    plan = sale_plan(OrderFlow(), "batch/7200s", 60, 5, 1, 60, lambda _s: "UTC")
    assert (plan.key(web), plan.key(till)) == ("-:-", "S001:R02")
    assert plan.member_id(till) == "ord/e2" and plan.spec.size_s == 7200


@pytest.mark.parametrize(("sync", "says"), [
    ({"orders": "summary"}, "not accepted for orders"),
    ({"customers": "batch"}, "written with the sale, order or loyalty record"),
    ({"payments": "summary"}, "not accepted for payments"),
    ({"sales": "hourly"}, "not accepted for sales"),
    ({"tills": "realtime"}, "unknown flow"),
    ({"inventory": {"mode": "batch", "window": "4h"}}, "TILLBRIDGE_WINDOW_S"),
    ({"sales": {"mode": "batch", "window": "4h", "schedule": ["06:00"]}}, "not both"),
    ({"sales": {"mode": "batch", "schedule": ["6am"]}}, "not HH:MM"),
    ({"sales": {"mode": "batch", "window": "four hours"}}, "not a length"),
    (["sales"], "must be an object"),
])
def test_a_bad_sync_section_is_refused_naming_the_entry(sync: object, says: str) -> None:
    """A refused file keeps the running mappings (``MappingsWatch``): a typo never
    switches a flow."""
    with pytest.raises(MappingError, match=says):
        mappings(sync)


# -- scheduled windows -----------------------------------------------------------------

def test_a_schedule_cuts_windows_at_local_times_in_the_store_zone() -> None:
    la = "America/Los_Angeles"  # UTC-8 in late November
    start, end = scheduled_bounds(datetime(2026, 11, 26, 21, 59, tzinfo=UTC), (360, 840, 1320),
                                  la)  # 13:59 local
    assert (start, end) == (datetime(2026, 11, 26, 14, tzinfo=UTC),
                            datetime(2026, 11, 26, 22, tzinfo=UTC))
    # 23:30 local: the overnight window 22:00 -> 06:00 the next morning
    start, end = scheduled_bounds(datetime(2026, 11, 27, 7, 30, tzinfo=UTC), (360, 840, 1320),
                                  la)
    assert (start, end) == (datetime(2026, 11, 27, 6, tzinfo=UTC),
                            datetime(2026, 11, 27, 14, tzinfo=UTC))
    # across the DST change (1 Nov 2026, 02:00 -> 01:00): edges stay on local 06:00
    start, end = scheduled_bounds(datetime(2026, 11, 1, 12, tzinfo=UTC), (360,), la)
    assert (start, end) == (datetime(2026, 11, 1, 13, tzinfo=UTC) - timedelta(days=1),
                            datetime(2026, 11, 1, 14, tzinfo=UTC))


def test_the_engine_closes_scheduled_windows_by_event_time() -> None:
    spec = WindowSpec(size_s=1, grace_s=600, schedule=(360, 840, 1320))
    e: WindowEngine[str] = WindowEngine("sale.batch/at0600-1400-2200", spec,
                                        zone=lambda key: "America/Los_Angeles")
    local = datetime(2026, 11, 26, 22, tzinfo=UTC)  # 14:00 local: the afternoon window
    e.add("S001:R01:2026-11-26", "a", local - timedelta(minutes=5), "morning")
    e.add("S001:R01:2026-11-26", "b", local + timedelta(minutes=5), "afternoon")
    assert e.take_ready() == []  # within the 10-minute grace of 14:00
    e.add("S001:R01:2026-11-26", "c", local + timedelta(minutes=61), "afternoon")
    [closed] = e.take_ready()
    assert (closed.start, closed.end, list(closed.members)) == (
        datetime(2026, 11, 26, 14, tzinfo=UTC), local, ["a"])


# -- summary sales ---------------------------------------------------------------------

def plain(txn: str, sku: str, qty: int, price: str, tax: str, tender: int) -> dict[str, Any]:
    """A one-line sale without discounts (``tender``: split_tenders()'s VISA 0 or CASH 1)."""
    sale = make_sale(pos_transaction_id=txn)
    net = (qty * D(price)).quantize(D("0.01"))
    sale["lines"] = [{**sale["lines"][0], "sku": sku, "unit_price": D(price),
                      "quantity": D(qty).quantize(D("0.001")), "discounts": [],
                      "promotion_ids": [], "tax_amount": D(tax)}]
    sale.update(subtotal=net, discount_total=D("0.00"), tax_total=D(tax), total=net + D(tax))
    sale["tenders"] = [{**split_tenders()[tender], "amount": net + D(tax)}]
    return sale


def receipts() -> list[tuple[dict[str, Any], Enrichment]]:
    """Five receipts of one register: a discounted one (kept as it is), two plain TEE-003
    that fold into one line, and two plain TEE-004 whose summed line NetSuite would round
    a cent away from the till's tax (10.00 -> 0.86 and 20.00 -> 1.72 at 8.625 %, but 30.00
    -> 2.59): kept apart."""
    lookups = Lookups(Mappings.load(), sandbox_refdata())
    out = []
    for sale in (make_sale(pos_transaction_id="S001-R01-000042", tenders=split_tenders()),
                 plain("S001-R01-000043", "TEE-003", 1, "16.00", "1.38", 1),
                 plain("S001-R01-000044", "TEE-003", 1, "16.00", "1.38", 0),
                 plain("S001-R01-000045", "TEE-004", 1, "10.00", "0.86", 1),
                 plain("S001-R01-000046", "TEE-004", 2, "10.00", "1.72", 1)):
        enr = SaleFlow().resolve(sale, lookups)
        assert isinstance(enr, Enrichment), enr
        out.append((sale, enr))
    return out


def test_a_summary_folds_lines_and_tenders_and_keeps_every_receipt() -> None:
    rs = receipts()
    txn = summary_txn_id("R01", "2026-11-26", datetime(2026, 11, 26, 15, tzinfo=UTC), "3600s")
    maps = Mappings.load()
    body = build_summary_cash_sale(rs, txn, maps.guest_customer, maps.discount_item,
                                   tax_setup(maps.document.get("tax"), "1"))
    assert body["externalId"] == f"pos-sum-S001-{txn}"
    assert body[RECEIPTS_FIELD] == ",".join(f"S001-R01-00004{i}" for i in range(2, 7))
    assert body["custbody_pos_transaction_id"] == txn
    items = [ln for ln in body["item"]["items"] if ln.get("quantity")]
    assert [(ln["item"]["id"], ln["quantity"]) for ln in items] == [
        ("1001", D("2.000")), ("1003", D("2.000")), ("1004", D("1.000")), ("1004", D("2.000"))]
    assert "VISA 47.38, CASH 61.22" in body["memo"] and "5 receipts" in body["memo"]
    # from the book (JSON, amounts as strings) it is the same body again
    import json
    assert revive_sale(json.loads(json.dumps(body, default=str))) == body


def test_a_summary_reaches_netsuite_at_the_sum_of_its_receipts_and_reconciles() -> None:
    """Posted to the simulator and read back by the reconciliation's own SuiteQL: the
    summary's total is the receipts' to the cent, its receipts are matched (balanced);
    a receipt missing from the summary and a summary changed by hand are named."""
    rs = receipts()
    pos_total = sum((s["total"] for s, _ in rs), D(0))
    txn = summary_txn_id("R01", "2026-11-26", datetime(2026, 11, 26, 15, tzinfo=UTC), "3600s")
    maps = Mappings.load()
    body = build_summary_cash_sale(rs, txn, maps.guest_customer, maps.discount_item,
                                   tax_setup(maps.document.get("tax"), "1"))
    with SimServer() as sim:
        first = run_client(sim, lambda c: post_summary(c, body))
        again = run_client(sim, lambda c: post_summary(c, body))
        other = run_client(sim, lambda c: post_summary(
            c, {**body, RECEIPTS_FIELD: "S001-R01-000042"}))
        ns, _rows = run_client(sim, lambda c: read_day(c, "2026-11-26", ["S001"]))
        books = books_match(sim.base_url, [(topics.SALE.name, s) for s, _ in rs])
    assert isinstance(first, Written) and first.created
    assert isinstance(again, Written) and not again.created, "the same window again"
    assert getattr(other, "reason", None) == "window_conflict", "never posted over"
    [summary] = ns
    assert (summary.kind, summary.amount, summary.covers) == (
        "summary", pos_total, tuple(f"S001-R01-00004{i}" for i in range(2, 7)))
    assert pos_total == D("108.60")
    # the demo's money block in summary mode: POS total = NetSuite total, drift 0.00
    assert books["sales_read_back"] == books["total_and_tax_match"] == 5
    money = {k: D(v) for k, v in books["money"].items()}
    assert (money["pos_total"], money["netsuite_total"], money["drift"]) == (
        pos_total, pos_total, D(0))
    events = [PosTxn(s["pos_transaction_id"], "S001", "R01", "2026-11-26", "sale", s["total"],
                     tuple((t["tender_type"], t["amount"]) for t in s["tenders"]))
              for s, _ in rs]
    [report] = reconcile(DayInputs("2026-11-26", events, ns))
    assert report.balanced, report.to_json()
    assert report.netsuite_by_type["cashsale"].total == pos_total == \
        report.pos_by_type["sale"].total
    # a receipt the summary does not cover is missing; a summary changed by hand differs
    extra = PosTxn("S001-R01-000049", "S001", "R01", "2026-11-26", "sale", D("5.00"))
    changed = [ns[0].__class__(**{**{f: getattr(ns[0], f) for f in ns[0].__slots__},
                                  "amount": pos_total + 1})]
    [report] = reconcile(DayInputs("2026-11-26", [*events, extra], changed))
    assert {(d.txn_id, d.problem) for d in report.drifts} == {
        ("S001-R01-000049", Problem.MISSING), (txn, Problem.DIFFERENT)}
