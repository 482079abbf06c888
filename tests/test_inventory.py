"""The inventory flow: which movements are posted, one adjustment per location and window
with a line per item and reason, posted once (a different body under the same externalId
is a conflict, never posted over), and the simulator's on-hand moved by the transactions
NetSuite books stock with, so "never twice" can be read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import (
    make_movement,
    make_return,
    make_sale,
    post_cash_sale,
    run_client,
    sandbox_refdata,
)
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.base import Lookups
from tillbridge.streams.flows.returns import post_return
from tillbridge.streams.flows.stock import InventoryFlow, post_window
from tillbridge.streams.ledger.stock import body_lines
from tillbridge.streams.ledger.types import Skipped, Written
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich_return import ReturnRefs, resolve_return
from tillbridge.streams.stages.reasons import ReasonCode
from tillbridge.streams.stages.records import Rejection

MAPS = Mappings.load(None)
LOOKUPS = Lookups(MAPS, sandbox_refdata())
FLOW = InventoryFlow()
START = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
END = START + timedelta(minutes=5)


def refs(**kw: Any) -> Any:
    return FLOW.resolve(make_movement(**kw), LOOKUPS)


@pytest.mark.parametrize(("kw", "reason"), [
    ({"reason": "STOLEN"}, ReasonCode.UNKNOWN_MOVEMENT_REASON),
    ({"store_id": "S999"}, ReasonCode.UNKNOWN_STORE),
    ({"sku": "NOPE-1"}, ReasonCode.UNKNOWN_SKU),
])
def test_a_movement_that_cannot_be_posted_is_dead_lettered(kw: dict[str, Any],
                                                          reason: ReasonCode) -> None:
    rej = refs(**kw)
    assert isinstance(rej, Rejection) and rej.reason == reason
    assert all(isinstance(v, str) for v in rej.inputs.values())


def test_sales_and_returns_are_skipped_the_rest_is_windowed() -> None:
    """A cashSale / cashRefund moves those units already: never counted twice."""
    for reason in ("SALE", "RETURN"):
        mv = make_movement(reason=reason, sku="NOT-CHECKED")
        assert FLOW.resolve(mv, LOOKUPS) == {"location": "1", "subsidiary": "1", "item": ""}
        assert isinstance(FLOW.skip(mv), Skipped)
    for reason in ("SHRINK", "DAMAGE", "ADJUSTMENT", "FOUND", "TRANSFER", "RECEIPT"):
        mv = make_movement(reason=reason)
        assert FLOW.skip(mv) is None
        assert FLOW.resolve(mv, LOOKUPS) == {"location": "1", "subsidiary": "1", "item": "1001"}
    mv = make_movement()
    assert FLOW.route_key(mv) == b"S001" and FLOW.member_id(mv) == "MV-1"


def members(*moves: tuple[dict[str, Any], bool]) -> list[tuple[Any, Any, datetime, bool]]:
    return [(mv, FLOW.resolve(mv, LOOKUPS), mv["occurred_at"], late) for mv, late in moves]


def test_one_adjustment_per_window_a_line_per_item_and_reason() -> None:
    late = make_movement(movement_id="MV-L", sku="TEE-002", reason="DAMAGE",
                         quantity_delta=D("-1"), occurred_at=START - timedelta(minutes=9))
    body = FLOW.window_body("S001", START, END, members(
        (make_movement(movement_id="MV-1", quantity_delta=D("-2")), False),
        (make_movement(movement_id="MV-2", quantity_delta=D("-1")), False),
        (make_movement(movement_id="MV-3", reason="FOUND", quantity_delta=D("1")), False),
        (make_movement(movement_id="MV-4", sku="TEE-003", reason="RECEIPT",
                       quantity_delta=D("12")), False),
        (make_movement(movement_id="MV-5", sku="TEE-003", reason="ADJUSTMENT",
                       quantity_delta=D("2")), False),
        (make_movement(movement_id="MV-6", sku="TEE-003", reason="ADJUSTMENT",
                       quantity_delta=D("-2")), False),
        (late, True)), LOOKUPS)
    assert body is not None
    assert body["externalId"] == "pos-adj-S001-20261126T150000Z"
    assert body["adjLocation"] == {"id": "1"} and body["account"] == {"id": "520"}
    lines = [(ln["item"]["id"], ln["adjustQtyBy"], ln["memo"]) for ln in body["inventory"]["items"]]
    assert lines == [
        ("1001", D("1"), "FOUND"), ("1001", D("-3"), "SHRINK"),
        ("1002", D("-1"), f"DAMAGE late MV-L at {late['occurred_at'].isoformat()}"),
        ("1003", D("12"), "RECEIPT"),  # ADJUSTMENT +2 -2 nets to nothing: no line
    ]
    assert body_lines(body) == [("1001", "-2"), ("1002", "-1"), ("1003", "12")]
    assert FLOW.window_body("S001", START, END, members(
        (make_movement(quantity_delta=D("1")), False),
        (make_movement(movement_id="MV-2", quantity_delta=D("-1")), False)), LOOKUPS) is None


def test_a_window_posts_once_and_is_never_posted_over(sim: SimServer) -> None:
    body = FLOW.window_body("S001", START, END, members(
        (make_movement(quantity_delta=D("-2")), False)), LOOKUPS)
    other = FLOW.window_body("S001", START, END, members(
        (make_movement(quantity_delta=D("-5")), False)), LOOKUPS)
    assert body is not None and other is not None

    async def go(rc: ReliableClient) -> list[Written | Rejection]:
        return [await post_window(rc, body), await post_window(rc, body),
                await post_window(rc, other)]

    first, again, clash = run_client(sim, go)
    assert isinstance(first, Written) and first.created
    assert isinstance(again, Written) and not again.created
    assert again.netsuite_id == first.netsuite_id
    assert isinstance(clash, Rejection) and clash.reason == ReasonCode.WINDOW_CONFLICT
    assert clash.inputs["netsuite_lines"] == '[["1001", "-2"]]'
    assert clash.inputs["window_lines"] == '[["1001", "-5"]]'


def on_hand(rc: ReliableClient, item: str, location: str) -> Any:
    async def q() -> D:
        rows = await rc.suiteql("SELECT quantityonhand FROM aggregateitemlocation "
                                "WHERE item = ? AND location = ?", params=[item, location])
        return D(rows[0]["quantityonhand"])
    return q()


def test_netsuite_on_hand_moves_with_sales_refunds_and_adjustments(sim: SimServer) -> None:
    """The simulator books stock as NetSuite does: cashSale out, cashRefund back in,
    inventoryAdjustment by its quantity; read back over SuiteQL."""
    ret = make_return(refund_method="CASH")
    ret["refund_tenders"][0]["tender_type"] = "CASH"
    ret_refs = resolve_return(ret, MAPS, LOOKUPS.refdata)
    assert isinstance(ret_refs, ReturnRefs)
    shrink = FLOW.window_body("S001", START, END, members(
        (make_movement(quantity_delta=D("-3")), False)), LOOKUPS)
    assert shrink is not None

    async def day(rc: ReliableClient) -> list[D]:
        seen = [await on_hand(rc, "1001", "1")]
        await post_cash_sale(rc, make_sale(), MAPS, LOOKUPS.refdata)  # 2 x TEE-001
        seen.append(await on_hand(rc, "1001", "1"))
        await post_return(rc, ret, ret_refs)  # 1 back, restocked at S001
        seen.append(await on_hand(rc, "1001", "1"))
        await post_window(rc, shrink)
        seen.append(await on_hand(rc, "1001", "1"))
        seen.append(await on_hand(rc, "1001", "2"))  # another location: untouched
        return seen

    assert run_client(sim, day) == [D(25), D(23), D(24), D(21), D(25)]
