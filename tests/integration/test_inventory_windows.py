"""Inventory windows through the real worker (broker, registry, simulator, worker process):
one inventoryAdjustment per location per window, read back from NetSuite, after kill -9
mid-window and after the post (restarted on its own data dir); a late movement goes to
the next window; and a day of sales, returns and movements leaves NetSuite's on-hand equal
to the POS's.

Event times are explicit (a past day), so windows close by event time (a later movement
of the same store) or, in the day test, by the wall clock once the store is quiet."""

from __future__ import annotations

import asyncio
import collections
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import make_movement, make_return, make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce, wait_until
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.stack import WorkerProcess
from tillbridge.streams.runtime.settings import Settings

pytestmark = pytest.mark.integration

W1 = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)


def mv(mid: str, store: str, sku: str, qty: str, reason: str, at: datetime,
       **kw: Any) -> dict[str, Any]:
    return make_movement(movement_id=mid, event_id=str(uuid.uuid5(uuid.NAMESPACE_OID, mid)),
                         store_id=store, sku=sku, quantity_delta=D(qty), reason=reason,
                         occurred_at=at, **kw)


def publish(s: Settings, moves: list[dict[str, Any]]) -> None:
    encode = AvroCodec(s.schema_registry_url or "").encoder(topics.INVENTORY)
    produce(s, [(m["movement_id"].encode(), encode(m)) for m in moves], topics.INVENTORY.name)


def outcomes_of(out: Outcomes, ids: set[str], timeout: float) -> dict[str, str]:
    """movement id -> its latest outcome, once every id in ``ids`` has one."""
    seen: dict[str, str] = {}

    def done() -> bool:
        out.tail.poll(0.3)
        for r in out.results:
            doc = json.loads(r.value)
            if doc.get("movement_id"):
                seen[doc["movement_id"]] = doc["outcome"]
        return ids <= set(seen)

    wait_until(done, timeout, f"outcomes of {sorted(ids - set(seen))}")
    return seen


async def _query(s: Settings, q: str, *params: str) -> list[dict[str, Any]]:
    async with NetSuiteClient(s.netsuite_base_url or "", NetSuiteCredentials.dev()) as c:
        return await c.suiteql(q, params=list(params) or None)


def adjustments(s: Settings) -> dict[str, list[tuple[str, str, str]]]:
    """externalId -> (item, quantity, memo) lines of every inventoryAdjustment NetSuite holds;
    fails when an externalId is held twice."""
    heads = asyncio.run(_query(s, "SELECT id, externalid FROM transaction WHERE recordtype = ?",
                               "inventoryadjustment"))
    twice = [e for e, n in collections.Counter(h["externalid"] for h in heads).items() if n > 1]
    assert not twice, f"posted twice: {twice}"
    out = {}
    for h in heads:
        lines = asyncio.run(_query(s, "SELECT item, quantity FROM transactionline WHERE "
                                      "transaction = ? AND mainline = 'F'", h["id"]))
        out[h["externalid"]] = sorted((r["item"], r["quantity"], "") for r in lines)
    return out


def test_one_adjustment_per_location_and_window_across_kill_9(stack) -> None:
    s = stack.settings.replace(window_s=60, window_grace_s=5, window_idle_s=3600,
                               window_tick_s=0.5)
    out = Outcomes(s)
    worker = WorkerProcess(s).start()
    try:
        publish(s, [mv("A1", "S001", "TEE-001", "-1", "SHRINK", W1 + timedelta(seconds=5)),
                    mv("A2", "S001", "TEE-002", "-2", "DAMAGE", W1 + timedelta(seconds=20)),
                    mv("B1", "S002", "TEE-001", "1", "FOUND", W1 + timedelta(seconds=7)),
                    mv("B2", "S002", "TEE-003", "5", "RECEIPT", W1 + timedelta(seconds=50)),
                    mv("B0", "S002", "TEE-003", "-1", "SALE", W1 + timedelta(seconds=9))])
        assert outcomes_of(out, {"B0"}, 30) == {"B0": "skipped"}, "a SALE movement: skipped"
        time.sleep(1.0)  # A1..B2 are in their open windows now
        assert adjustments(s) == {}, "nothing posted before the windows close"
        worker.kill()  # mid-window
        worker.restart()
        # a movement 70 s into the day per store: event time passes W1's end + grace
        publish(s, [mv("A3", "S001", "TEE-003", "-1", "SHRINK", W1 + timedelta(seconds=70)),
                    mv("B3", "S002", "TEE-002", "2", "ADJUSTMENT", W1 + timedelta(seconds=70))])
        got = outcomes_of(out, {"A1", "A2", "B1", "B2"}, 40)
        assert {got[m] for m in ("A1", "A2", "B1", "B2")} == {"posted"}, got
        worker.kill()  # after the post
        worker.restart()
        publish(s, [mv("A4", "S001", "TEE-001", "-4", "SHRINK", W1 + timedelta(seconds=30))])
        # Input partitions are read side by side (keys are movement ids): give the late
        # movement time to reach its window before the one that closes that window.
        time.sleep(2.0)
        publish(s, [mv("A5", "S001", "TEE-001", "1", "FOUND", W1 + timedelta(seconds=130)),
                    mv("B4", "S002", "TEE-001", "1", "FOUND", W1 + timedelta(seconds=130))])
        got = outcomes_of(out, {"A3", "B3", "A4"}, 40)
        assert {got[m] for m in ("A3", "B3", "A4")} == {"posted"}, got
    finally:
        print(worker.log_tail(60))
        worker.stop()
        out.close()
    assert not out.dead, out.summary()
    assert adjustments(s) == {
        "pos-adj-S001-20261126T150000Z": [("1001", "-1", ""), ("1002", "-2", "")],
        "pos-adj-S002-20261126T150000Z": [("1001", "1", ""), ("1003", "5", "")],
        # A4 was late (its window had closed): it joined the next one
        "pos-adj-S001-20261126T150100Z": [("1001", "-4", ""), ("1003", "-1", "")],
        "pos-adj-S002-20261126T150100Z": [("1002", "2", "")],
    }
    late = asyncio.run(_query(s, "SELECT memo FROM transaction WHERE externalid = ?",
                              "pos-adj-S001-20261126T150100Z"))
    assert late and "2 movements" in late[0]["memo"]


def on_hand(s: Settings, item: str, location: str) -> D:
    rows = asyncio.run(_query(s, "SELECT quantityonhand FROM aggregateitemlocation WHERE "
                                 "item = ? AND location = ?", item, location))
    return D(rows[0]["quantityonhand"])


def test_a_day_leaves_netsuite_on_hand_equal_to_the_pos(stack) -> None:
    """Sales and a return post per record (cashSale, cashRefund: they move the stock); the
    POS's movements for them are skipped, the rest go through windows closed by the wall
    clock once the stores are quiet. NetSuite's on-hand (SuiteQL) then equals the seed
    plus every POS movement, to the unit."""
    s = stack.settings.replace(window_s=60, window_grace_s=0, window_idle_s=1,
                               window_tick_s=0.5)
    day = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    sales = [make_sale(pos_transaction_id=f"S001-R01-00004{i}") for i in (2, 3, 4)]
    ret = make_return(refund_method="CASH")
    ret["refund_tenders"][0]["tender_type"] = "CASH"
    moves = [mv(f"D-SALE-{i}", "S001", "TEE-001", "-2", "SALE", day, pos_transaction_id=
                sale["pos_transaction_id"]) for i, sale in enumerate(sales)]
    moves += [mv("D-RET", "S001", "TEE-001", "1", "RETURN", day + timedelta(minutes=1)),
              mv("D-SHR", "S001", "TEE-001", "-1", "SHRINK", day + timedelta(minutes=2)),
              mv("D-RCV", "S001", "TEE-002", "10", "RECEIPT", day + timedelta(minutes=3)),
              mv("D-OUT", "S001", "TEE-002", "-3", "TRANSFER", day + timedelta(minutes=4),
                 counterpart_location="S002"),
              mv("D-IN", "S002", "TEE-002", "3", "TRANSFER", day + timedelta(minutes=4),
                 counterpart_location="S001"),
              mv("D-CNT", "S002", "TEE-002", "-1", "ADJUSTMENT", day + timedelta(minutes=5))]
    expected: dict[tuple[str, str], D] = collections.defaultdict(lambda: D(25))
    items, locs = {"TEE-001": "1001", "TEE-002": "1002"}, {"S001": "1", "S002": "2"}
    for m in moves:
        expected[(items[m["sku"]], locs[m["store_id"]])] += m["quantity_delta"]
    out = Outcomes(s)
    worker = WorkerProcess(s).start()
    try:
        produce(s, encode_sales(s, sales))
        rtn = AvroCodec(s.schema_registry_url or "").encoder(topics.RETURN)
        produce(s, [(ret["pos_transaction_id"].encode(), rtn(ret))], topics.RETURN.name)
        publish(s, moves)
        got = outcomes_of(out, {m["movement_id"] for m in moves}, 40)
        wait_until(lambda: (out.tail.poll(0.3), len(out.results) >= len(moves) + 4)[1], 40,
                   "the sales' and the return's outcomes")
    finally:
        worker.stop()
        out.close()
    assert not out.dead, out.summary()
    assert {k: v for k, v in got.items() if v == "skipped"} == {
        "D-SALE-0": "skipped", "D-SALE-1": "skipped", "D-SALE-2": "skipped",
        "D-RET": "skipped"}
    assert {(i, loc): on_hand(s, i, loc) for (i, loc) in expected} == dict(expected)
    print("POS on-hand == NetSuite on-hand:", dict(expected))
