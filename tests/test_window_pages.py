"""A window too large for one Kafka record: a busy store's window of 12,000 movements is
booked on member pages, each under the broker's 1 MB default, posted once to the in-process
simulator (real HTTP) and read back to the unit; the book read again from what was
produced, in any order, holds every member and the final state."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from types import SimpleNamespace
from typing import Any

from tests.factories import run_client, sandbox_refdata
from tests.test_runtime_fakes import RecordingEmitter
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import DEFAULT_MAX_MESSAGE_BYTES
from tillbridge.devstack.netsuite_sim.server import SimServer
from tillbridge.devstack.pos.inventory import movement
from tillbridge.streams.flows.base import Lookups
from tillbridge.streams.flows.stock import InventoryFlow
from tillbridge.streams.flows.window_plans import inventory_plan
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.runtime import metrics
from tillbridge.streams.runtime.acks import AckQueue
from tillbridge.streams.runtime.window_close import Member, WindowCloser
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.windows.book import PAGE_SEP, WindowBook, WindowRecord
from tillbridge.streams.windows.engine import WindowEngine, WindowSpec

MAPS = Mappings.load()
START = datetime(2026, 11, 26, 8, tzinfo=UTC)
MOVEMENTS = 12_000
SKUS = ("TEE-001", "TEE-002", "TEE-003")


def _window(n: int = MOVEMENTS) -> tuple[Any, Any, dict[str, D]]:
    """``n`` movements at S001 in one hour, closed on the wall clock; the POS's net
    quantity per SKU beside it."""
    flow = InventoryFlow()
    plan = inventory_plan(flow, WindowSpec(3600, 0, 60, 0))
    lookups = Lookups(MAPS, sandbox_refdata())
    engine: WindowEngine[Member] = WindowEngine(plan.name, plan.spec)
    rng, net = random.Random(3), defaultdict(D)
    for i in range(n):
        sku, qty = rng.choice(SKUS), D(rng.choice((-2, -1, 1, 3)))
        mv = movement(rng, f"BIG-{i:06d}", "S001", sku, qty, "ADJUSTMENT",
                      START + timedelta(seconds=i * 0.25))
        refs = flow.resolve(mv, lookups)
        src = Source(topics.INVENTORY.name, 0, i, mv["movement_id"].encode(), b"v", [])
        engine.add(plan.key(mv), plan.member_id(mv), mv["occurred_at"],
                   Member(flow, src, src, mv, refs, None))
        net[sku] += qty
    engine.tick(START.timestamp() + 7200)
    [window] = engine.take_ready()
    return plan, window, dict(net)


def test_a_window_whose_close_fails_is_tried_again_never_dropped() -> None:
    """The book's produce refused once (librdkafka's answer, from the recording emitter):
    the window goes back to the engine, counted in ``tillbridge_window_close_failures``,
    and the next tick posts it, once (read back from the simulator)."""
    plan, window, _net = _window(40)
    engine: WindowEngine[Member] = WindowEngine(plan.name, plan.spec)
    engine.give_back([window])
    refusals = [1]

    def refuse(out: Outbound) -> bool:
        if out.topic == topics.WINDOWS and refusals:
            return bool(refusals.pop())
        return False

    emitter, book = RecordingEmitter(refuse=refuse), WindowBook()
    failures = metrics.WINDOW_CLOSE_FAILURES.labels(plan.name)
    before = failures._value.get()

    async def close_twice(client: Any) -> list[dict[str, Any]]:
        pipe = SimpleNamespace(lookups=Lookups(MAPS, sandbox_refdata()), reliable=client)
        closer = WindowCloser(pipe, emitter, book, AckQueue(lambda _e: None, lambda _e: None))
        await closer.close_all({plan.name: plan}, {plan.name: engine})
        assert book.get(window.wid) is not None and book.get(window.wid).state == "closing"
        assert failures._value.get() == before + 1
        await closer.close_all({plan.name: plan}, {plan.name: engine})
        return await client.suiteql("SELECT id FROM transaction WHERE recordtype = ?",
                                    params=["inventoryadjustment"])

    with SimServer() as sim:
        rows = run_client(sim, close_twice)
    assert len(rows) == 1 and book.get(window.wid).state == "posted"  # type: ignore[union-attr]
    assert engine.take_ready() == []
    results = [o for o in emitter.sent if o.topic == topics.RESULTS]
    assert len(results) == 40, "each member's outcome once"


def _read_back(sent: list[Outbound], order: list[int]) -> WindowBook:
    book = WindowBook()
    for i in order:
        book.apply(sent[i].key, sent[i].value)
    return book


def test_a_window_too_large_for_one_record_is_booked_on_pages_and_posted_once() -> None:
    plan, window, net = _window()
    book, emitter = WindowBook(), RecordingEmitter()

    async def close(client: Any) -> list[dict[str, Any]]:
        pipe = SimpleNamespace(lookups=Lookups(MAPS, sandbox_refdata()), reliable=client)
        closer = WindowCloser(pipe, emitter, book, AckQueue(lambda _e: None, lambda _e: None))
        await closer.close(plan, window)
        [record] = book.records.values()
        return await client.suiteql(
            "SELECT item, quantity FROM transactionline WHERE transaction = ? "
            "AND mainline = 'F'", params=[record.netsuite_id])

    with SimServer() as sim:
        rows = run_client(sim, close)
        adjustments = run_client(sim, lambda c: c.suiteql(
            "SELECT id FROM transaction WHERE recordtype = ?", params=["inventoryadjustment"]))
    items = {sku: ref.id for sku, ref in sandbox_refdata().items.items()}
    held: dict[str, D] = defaultdict(D)
    for r in rows:
        held[str(r["item"])] += D(str(r["quantity"]))
    assert len(adjustments) == 1, "one record for the window"
    assert {sku: held[str(items[sku])] for sku in net} == net, "to the unit, per item"

    booked = [o for o in emitter.sent if o.topic == topics.WINDOWS]
    pages = [o for o in booked if PAGE_SEP.encode() in (o.key or b"")]
    assert len(pages) > 1, "12,000 members do not fit one record"
    assert max(len(o.value or b"") + len(o.key or b"") for o in booked) \
        < DEFAULT_MAX_MESSAGE_BYTES
    assert booked.index(pages[-1]) < min(booked.index(o) for o in booked if o not in pages), \
        "every page is produced before the window's record"
    results = [o for o in emitter.sent if o.topic == topics.RESULTS]
    assert len(results) == MOVEMENTS

    [record] = book.records.values()
    n = len(booked)
    for order in (list(range(n)), list(reversed(range(n))),
                  random.Random(7).sample(range(n), n)):
        again = _read_back(booked, order)
        [got] = again.records.values()
        assert (got.state, got.netsuite_id) == ("posted", record.netsuite_id), order[:3]
        assert got.members == record.members and len(got.members) == MOVEMENTS
        assert len(again.known(plan.name)) == MOVEMENTS and again.unfinished(plan.name) == []


def test_a_paged_window_is_not_whole_until_its_last_page_and_is_forgotten_with_them() -> None:
    members = {f"m{i:05d}": [START.isoformat(), False] for i in range(5000)}
    rec = WindowRecord("w", "inventory", "S001", START.isoformat(), START.isoformat(), "e",
                       "closing", members)
    booked, values = rec.paged(page_bytes=40_000)
    assert booked.member_pages == len(values) > 2
    book = WindowBook()
    book.apply(b"w", booked.with_state("posted", "9").to_json())
    for n, value in enumerate(values[:-1]):
        book.apply(f"w{PAGE_SEP}{n}".encode(), value)
    assert book.get("w") is None, "a window missing a page is not exposed"
    book.apply(f"w{PAGE_SEP}{len(values) - 1}".encode(), values[-1])
    got = book.get("w")
    assert got is not None and got.state == "posted" and got.members == members
    book.apply(b"w", booked.to_json())  # the older closing record read late
    assert book.get("w").state == "posted"  # type: ignore[union-attr]
    book.apply(b"w", None)
    assert book.get("w") is None
    small, none = WindowRecord("s", "inventory", "S001", "", "", "e", "closing",
                               {"m": [START.isoformat(), False]}).paged()
    assert small.member_pages == 0 and none == []
