"""The availability rules, pure: POS deltas and NetSuite reads in, state and signals out."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import fastavro

from tillbridge.schemas import load_schema
from tillbridge.streams.availability import deltas as make
from tillbridge.streams.availability.events import signal_doc, state_from_record, state_record
from tillbridge.streams.availability.model import (
    Delta,
    ItemState,
    Level,
    Oversell,
    ReadInfo,
    Replenish,
)
from tillbridge.streams.availability.orders import Cursor, StatusChange, TxnRow, changes
from tillbridge.streams.availability.rules import apply_delta, apply_read, suggested_quantity

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
AGE = timedelta(minutes=15)


def level(available: str, rp: str | None = "5", preferred: str | None = "20",
          on_order: str = "0", committed: str = "0") -> Level:
    on_hand = D(available) + D(committed)
    return Level("1", "1001", on_hand, D(committed), D(available), D(on_order),
                 None if rp is None else D(rp), None if preferred is None else D(preferred))


def read(n: int, at: datetime = T0) -> ReadInfo:
    return ReadInfo(f"r{n}", at)


def sale(n: int, qty: str, kind: str = "SALE", at: datetime = T0) -> Delta:
    return Delta(f"pos.sale.v1/0/{n}#{kind}", kind, "1", "1001", -D(qty), "S001", "TEE-001",
                 f"T{n}", f"pos-sale-S001-T{n}", at)


def fresh(base: Level) -> ItemState:
    state = ItemState("1", "1001", "S001", "TEE-001")
    changed, signals = apply_read(state, base, read(1), frozenset(), AGE)
    assert changed and signals == []
    return state


def test_sales_move_availability_and_a_replay_counts_once() -> None:
    state = fresh(level("10"))
    assert apply_delta(state, sale(1, "2")) == (True, [])
    assert state.available() == D(8) and state.on_hand() == D(8)
    assert apply_delta(state, sale(1, "2")) == (False, [])  # the same event again
    assert state.available() == D(8)


def test_an_oversell_is_signalled_with_the_quantity_short_of_that_sale() -> None:
    state = fresh(level("3", rp=None))
    assert apply_delta(state, sale(1, "2"))[1] == []
    _, signals = apply_delta(state, sale(2, "4"))
    assert signals == [Oversell("1", "1001", "S001", "TEE-001", D(3), D(-3), "T2",
                                "pos.sale.v1/0/2#SALE")]
    _, signals = apply_delta(state, sale(3, "1"))
    assert [s.quantity_short for s in signals if isinstance(s, Oversell)] == [D(1)]
    # a shrink movement below zero is no sale: no oversell warning
    shrink = Delta("pos.inventory.v1/0/9#SHRINK", "SHRINK", "1", "1001", D(-1), "S001")
    assert apply_delta(state, shrink)[1] == []


def test_replenishment_fires_once_per_crossing_and_rearms_above_the_reorder_point() -> None:
    state = fresh(level("7", rp="5", preferred="20", on_order="3"))
    assert apply_delta(state, sale(1, "2"))[1] == []  # 5: not below
    _, signals = apply_delta(state, sale(2, "1"))  # 4 < 5: crossing
    assert signals == [Replenish("1", "1001", "S001", "TEE-001", D(4), D(5), D(20), D(3),
                                 D(13), "T2")]
    assert apply_delta(state, sale(3, "1"))[1] == []  # still below: no second trigger
    assert apply_delta(state, sale(4, "3"))[1] == []
    # NetSuite's read: a receipt brought it back to 12 and both sales are in NetSuite
    _, signals = apply_read(state, level("12", rp="5"), read(2),
                            frozenset({"pos-sale-s001-t1", "pos-sale-s001-t2",
                                       "pos-sale-s001-t3", "pos-sale-s001-t4"}), AGE)
    assert signals == [] and not state.below_reorder and state.available() == D(12)
    _, signals = apply_delta(state, sale(5, "8"))  # 4: a new crossing
    assert [type(s) for s in signals] == [Replenish]


def test_a_read_keeps_what_netsuite_does_not_show_yet_and_drops_stale_deltas() -> None:
    state = fresh(level("10", rp=None))
    apply_delta(state, sale(1, "1", at=T0))
    apply_delta(state, sale(2, "2", at=T0 + timedelta(minutes=10)))
    apply_delta(state, sale(3, "3", at=T0 + timedelta(minutes=10)))
    assert state.available() == D(4)
    # NetSuite has sale 2 (its 2 units gone from its figure); sale 1 was dead-lettered and
    # is older than the pending limit at this read; sale 3 is not posted yet
    changed, _ = apply_read(state, level("8", rp=None), read(2, T0 + timedelta(minutes=16)),
                            frozenset({"pos-sale-s001-t2"}), AGE)
    assert changed and list(state.pending) == ["pos.sale.v1/0/3#SALE"]
    assert state.available() == D(5)
    same, _ = apply_read(state, level("8", rp=None), read(3, T0 + timedelta(minutes=17)),
                         frozenset(), AGE)
    assert not same


def test_suggested_quantity_fills_up_to_the_preferred_level_less_what_is_on_order() -> None:
    assert suggested_quantity(level("2", "5", "20", on_order="4"), D(2)) == D(14)
    assert suggested_quantity(level("2", "5", None), D(2)) == D(3)
    assert suggested_quantity(level("2", "5", "20", on_order="40"), D(2)) == D(0)
    assert suggested_quantity(None, D(2)) == D(0)


class Refs:
    """Store S001 -> location 1, S002 -> 2; SKUs TEE-001/002 -> items 1001/1002."""

    @staticmethod
    def resolver() -> make.Resolver:
        return make.Resolver({"S001": "1", "S002": "2"}.get,
                             {"TEE-001": "1001", "TEE-002": "1002"}.get,
                             lambda mv: f"pos-adj-{mv['store_id']}-W")


def test_a_sale_becomes_one_delta_per_item_and_unknown_skus_are_left_out() -> None:
    ev = {"store_id": "S001", "pos_transaction_id": "T9",
          "lines": [{"sku": "TEE-001", "quantity": D(2)}, {"sku": "TEE-001", "quantity": D(1)},
                    {"sku": "TEE-002", "quantity": D("0.5")}, {"sku": "NOPE", "quantity": D(1)}]}
    out = make.from_sale("pos.sale.v1/1/5", ev, T0, Refs.resolver())
    assert [(d.item, d.quantity, d.netsuite_key, d.pos_transaction_id) for d in out] == [
        ("1001", D(-3), "pos-sale-S001-T9", "T9"), ("1002", D("-0.5"), "pos-sale-S001-T9", "T9")]


def test_a_return_restocks_only_restocked_lines_and_hands_out_its_exchange() -> None:
    ev = {"store_id": "S001", "pos_transaction_id": "R1",
          "lines": [{"sku": "TEE-001", "quantity": D(1), "disposition": "RESTOCK",
                     "restock_location": "S002"},
                    {"sku": "TEE-002", "quantity": D(1), "disposition": "DISPOSE"}],
          "exchange_lines": [{"sku": "TEE-002", "quantity": D(1)}]}
    out = make.from_return("pos.return.v1/0/1", ev, T0, Refs.resolver())
    assert [(d.kind, d.location, d.item, d.quantity, d.netsuite_key) for d in out] == [
        ("RETURN", "2", "1001", D(1), "pos-rtn-S001-R1"),
        ("EXCHANGE", "1", "1002", D(-1), "pos-exch-S001-R1")]


def test_movements_count_except_the_sale_and_return_ones() -> None:
    mv = {"store_id": "S002", "sku": "TEE-002", "quantity_delta": D(-2), "reason": "SHRINK",
          "pos_transaction_id": None}
    [d] = make.from_movement("pos.inventory.v1/0/3", mv, T0, Refs.resolver())
    assert (d.kind, d.location, d.quantity, d.netsuite_key) == ("SHRINK", "2", D(-2),
                                                                "pos-adj-S002-W")
    assert make.from_movement("x", {**mv, "reason": "SALE"}, T0, Refs.resolver()) == []


def test_the_state_record_is_valid_avro_and_names_its_read_and_pos_events() -> None:
    state = fresh(level("10"))
    apply_delta(state, sale(1, "2"))
    record = state_record(state, "e1", T0, "pos.sale.v1/0/1#SALE")
    schema = fastavro.parse_schema(load_schema("availability.avsc"))
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    back: Any = fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), schema, schema)
    assert (back["available"], back["netsuite_available"], back["netsuite_read_id"]) == \
        (D("8.000"), D("10.000"), "r1")
    assert [(e["pos_transaction_id"], e["quantity"]) for e in back["pos_events"]] == \
        [("T1", D("-2.000"))]


def test_signal_documents_say_their_type_and_keep_quantities_exact() -> None:
    doc = signal_doc(Oversell("1", "1001", "S001", "TEE-001", D("1.5"), D("-1.5"), "T1", "e"), T0)
    assert doc["type"] == "oversell" and doc["quantity_short"] == "1.5"


def _row(id_: str, rt: str, status: str | None, modified: str, **kw: Any) -> TxnRow:
    return TxnRow(id_, rt, status, kw.pop("eid", None), modified, **kw)


def test_order_changes_keep_only_pos_orders_and_a_cursor_publishes_each_once() -> None:
    order = _row("10", "salesorder", "B", "2026-12-04 10:00:00", eid="pos-ord-W1",
                 order_id="W1", source="t/0/1", created="2026-12-04 10:00:00")
    foreign = _row("11", "salesorder", "B", "2026-12-04 10:00:00", eid="shopify-9")
    ful = _row("12", "itemfulfillment", None, "2026-12-04 10:05:00", created_from="10")
    found = changes([ful, order, foreign], {"10": order, "11": foreign})
    assert [(c.change_id, c.order_id, c.status, c.by_tillbridge) for c in found] == [
        ("10:pending_fulfillment", "W1", "pending_fulfillment", True),
        ("12:fulfilled", "W1", "fulfilled", False)]
    cursor = Cursor()
    assert cursor.fresh(found) == found
    cursor.advance(found, "2026-12-04 10:01:00")
    assert set(cursor.seen) == {"12:fulfilled"}  # older than the cursor: forgotten
    again = Cursor.from_doc(cursor.to_doc())
    assert again.fresh(found) == [found[0]] and again.since == "2026-12-04 10:01:00"
    assert isinstance(found[1], StatusChange) and found[1].doc()["order_netsuite_id"] == "10"


def test_a_restarted_worker_keeps_the_crossing_and_the_pending_events() -> None:
    """The state read back from its last record: no second trigger for the same crossing,
    and the POS events NetSuite does not show yet still count (once: by their ids)."""
    state = fresh(level("6", rp="5"))
    apply_delta(state, sale(1, "2"))  # 4: crossing
    assert state.below_reorder
    back = state_from_record(state_record(state, "e1", T0, "x"))
    assert back.below_reorder and list(back.pending) == ["pos.sale.v1/0/1#SALE"]
    _, signals = apply_read(back, level("6", rp="5"), read(2), frozenset(), AGE)
    assert signals == [] and back.available() == D(4)
    assert apply_delta(back, sale(1, "2")) == (False, [])  # the replayed sale


def test_the_next_cursor_follows_netsuites_clock_with_an_overlap() -> None:
    from tillbridge.streams.flows.availability import next_cursor

    start = "2026-12-04 10:00:00"
    assert next_cursor(["2026-12-04 10:05:00", "2026-12-04 10:03:10"], start) == \
        "2026-12-04 10:04:30"
    assert next_cursor([], start) == start  # nothing changed: stay
    assert next_cursor(["2026-12-04 10:00:10"], start) == start  # never backwards
    assert next_cursor(["12/4/2026 10:05 am"], start) == start  # another date format


def test_a_record_lists_the_newest_pos_events_and_sums_the_rest() -> None:
    from tillbridge.streams.availability.events import SHOWN

    state = fresh(level("500", rp=None))
    for n in range(SHOWN + 3):
        apply_delta(state, sale(n, "1"))
    record = state_record(state, "e9", T0, "x")
    assert len(record["pos_events"]) == SHOWN and record["pos_events_omitted"] == 3
    assert record["pos_events_omitted_quantity"] == D("-3.000")
    assert record["pos_events"][0]["pos_transaction_id"] == "T3"
    back = state_from_record(record)
    assert len(back.pending) == SHOWN + 1 and back.moved() == D(-(SHOWN + 3))
