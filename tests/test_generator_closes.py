"""Register closes of generated traffic: their totals by tender are the day's real totals,
their journal lists every receipt, they parse with the settlement schema (as `tillbridge
publish` reads them), and the seeded dirt is a missing receipt and a drawer over/short."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

from tillbridge.connectors.kafka.topics import SETTLEMENT
from tillbridge.connectors.pos.jsonl import parse_line
from tillbridge.devstack.pos.closes import day_with_closes
from tillbridge.devstack.pos.generator import generate
from tillbridge.streams.stages.tenders import booked_tenders


def test_clean_day_closes_carry_the_real_totals_by_tender() -> None:
    events, closes = day_with_closes(generate(120, seed=3), seed=3)
    assert len(events) == 120
    expected: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for e in events:
        for t in booked_tenders(e.value):  # what the drawer kept: cash change netted
            expected[(e.value["store_id"], e.value["register_id"], t["tender_type"])] += \
                t["amount"]
    seen: dict[tuple[str, str, str], Decimal] = {}
    for close in closes:
        assert parse_line(json.dumps(close)).topic == SETTLEMENT
        for t in close["tenders"]:
            seen[(close["store_id"], close["register_id"], t["tender_type"])] = \
                Decimal(t["expected_amount"])
            assert t["over_short"] == "0.00"
    assert seen == dict(expected)
    journal = {t["pos_transaction_id"] for c in closes for t in c["transactions"]}
    assert journal == {e.value["pos_transaction_id"] for e in events}
    assert sum(c["sale_count"] for c in closes) == 120


def test_dirty_day_drops_one_receipt_and_counts_one_drawer_off() -> None:
    events, closes = day_with_closes(generate(120, seed=3), seed=3, dirty=0.05)
    published = {e.value["pos_transaction_id"] for e in events}
    journal = {t["pos_transaction_id"] for c in closes for t in c["transactions"]}
    assert len(journal - published) == 1, "one receipt in a close was never published"
    off = [t for c in closes for t in c["tenders"] if t["over_short"] != "0.00"]
    assert len(off) == 1 and off[0]["tender_type"] == "CASH"
    assert Decimal(off[0]["counted_amount"]) - Decimal(off[0]["expected_amount"]) == \
        Decimal(off[0]["over_short"])
