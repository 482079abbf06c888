"""A window's results records (``flows/window_results.py``) are the documents
``json.dumps`` writes for them: same keys, order, separators and escapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tillbridge.streams.flows.sale import SaleFlow
from tillbridge.streams.flows.stock import InventoryFlow
from tillbridge.streams.flows.window_results import posted_results
from tillbridge.streams.ledger.loyalty import LOYALTY_SUMMARISED
from tillbridge.streams.ledger.types import Written
from tillbridge.streams.stages.messages import Source

AT = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)


def expected(kind: str, ids: dict[str, Any], src: Source, when: datetime,
             written: Written, value: bytes, **extra: Any) -> str:
    """The document built as a dict and written by ``json.dumps`` (the result_time as the
    record under test has it: the clock is not under test)."""
    result_time = json.loads(value)["result_time"]
    doc = {"event_type": kind, **ids, "outcome": "posted",
           "source": f"{src.topic}/{src.partition}/{src.offset}",
           "event_time": when.isoformat(), **extra,
           "records": [{"record_type": written.record_type,
                        "netsuite_id": written.netsuite_id,
                        "external_id": written.external_id, "created": written.created,
                        **written.links}],
           "result_time": result_time}
    return json.dumps(doc)


def test_inventory_members_byte_for_byte() -> None:
    flow = InventoryFlow()
    written = Written("inventoryAdjustment", "901", "INVADJ-S001-1", True)
    members = [({"movement_id": f"M-{n}", "store_id": "S001", "pos_transaction_id": None,
                 "reason": "SHRINK", "occurred_at": AT},
                Source("pos.inventory", 2, 40 + n, None, b"", []))
               for n in range(2)]
    members.append(({"movement_id": 'Ünïcode "quoted"\n', "store_id": "S002",
                     "pos_transaction_id": "T-9", "reason": "FOUND", "occurred_at": AT},
                    Source("pos.inventory", 0, 7, None, b"", [])))
    outs = posted_results(flow, members, written)
    assert len(outs) == 3
    for (event, src), out in zip(members, outs, strict=True):
        assert out.value is not None
        assert out.value.decode() == expected("inventory", flow.ids(event), src, AT,
                                              written, out.value)
    assert outs[2].key == b"T-9" and outs[0].key == b""


def test_a_summarised_sale_keeps_its_skipped_loyalty_points() -> None:
    flow = SaleFlow()
    written = Written("cashSale", "77", "SUM-S001-R01-1", False, {"summary": "true"})
    event = {"pos_transaction_id": "S001-R01-000001", "store_id": "S001",
             "register_id": "R01", "completed_at": AT, "loyalty_points_earned": 12}
    src = Source("pos.sale", 1, 3, b"S001-R01-000001", b"", [])
    (out,) = posted_results(flow, [(event, src)], written)
    assert out.value is not None
    assert out.value.decode() == expected(
        "sale", flow.ids(event), src, AT, written, out.value,
        loyalty_skipped={"reason": LOYALTY_SUMMARISED, "points": 12})
    assert json.loads(out.value)["records"][0]["summary"] == "true"
