"""A business day for two stores with register closes, one store clean and one dirty with
the four differences reconciliation must name: a sale dropped before publishing (kept in
the register's close), a double-scanned sale (the same basket under a second id), a refund
published at a wrong amount (the close has the right one), and a sale to be changed by hand
in NetSuite after posting (done by the caller, see ``hand_change``). The clean store's
cash drawer is counted 1.50 short, so its close books an over/short journal.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.connectors.pos.jsonl import parse_line
from tillbridge.devstack.pos.closes import close_registers
from tillbridge.devstack.pos.followups import return_for
from tillbridge.devstack.pos.generator import DEFAULT_START, generate

DIRTY, CLEAN = "S001", "S002"
SHORT = Decimal("-1.50")
REFUND_ERROR = Decimal("1.00")


@dataclass
class ReconDay:
    business_date: str
    sales: list[GeneratedEvent]
    returns: list[GeneratedEvent]
    closes: list[GeneratedEvent]
    injected: dict[str, str] = field(default_factory=dict)  # difference -> POS txn id
    closes_json: list[dict[str, Any]] = field(default_factory=list)


def _json_default(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value.isoformat()


def build_day(seed: int = 11, sales_per_store: int = 8, *,
              start: Any = DEFAULT_START + timedelta(days=30)) -> ReconDay:
    """The day's events in publishing order, the closes to publish after them, and the
    transaction id of each injected difference."""
    rng = random.Random(seed)
    picked: dict[str, list[dict[str, Any]]] = {DIRTY: [], CLEAN: []}
    for ev in generate(sales_per_store * 8, seed=seed, start=start):
        sale = ev.value
        if isinstance(sale, dict) and sale["store_id"] in picked and \
                len(picked[sale["store_id"]]) < sales_per_store:
            # ids of their own: the demo's main run uses the generator's plain ids
            sale["pos_transaction_id"] = f"{sale['pos_transaction_id']}-Z"
            picked[sale["store_id"]].append(sale)
    dirty, clean = picked[DIRTY], picked[CLEAN]
    dropped, scanned, refunded, changed = dirty[0], dirty[1], dirty[2], dirty[3]
    twin = copy.deepcopy(scanned)
    twin["pos_transaction_id"] = f"{scanned['pos_transaction_id']}-2"
    twin["event_id"] = f"{scanned['event_id'][:-4]}ffff"
    twin["receipt"]["receipt_number"] += "B"
    ret = return_for(refunded, rng, days_later=0, refund_method="ORIGINAL_TENDER")
    ret["business_date"] = refunded["business_date"]
    ret["occurred_at"] = refunded["completed_at"] + timedelta(minutes=5)
    true_ret = copy.deepcopy(ret)  # what the till refunded: less than the event says
    true_ret["refund_total"] -= REFUND_ERROR
    for tender in true_ret["refund_tenders"]:
        tender["amount"] -= REFUND_ERROR
    day = dirty[0]["business_date"]
    register = clean[0]["register_id"]
    closes = close_registers([*dirty, *clean], [true_ret], seed=seed,
                             over_short={(CLEAN, register, day): SHORT})
    published = [s for s in dirty if s is not dropped]
    published.insert(published.index(scanned) + 1, twin)
    return ReconDay(
        day,
        [GeneratedEvent(s["pos_transaction_id"].encode(), s, _sale_topic())
         for s in [*published, *clean]],
        [_event(ret, "return")],
        [parse_line(json.dumps(c, default=_json_default)) for c in closes],
        {"dropped_sale": dropped["pos_transaction_id"],
         "double_scan": twin["pos_transaction_id"],
         "wrong_refund": ret["pos_transaction_id"],
         "changed_in_netsuite": changed["pos_transaction_id"]},
        closes)


def _sale_topic() -> Any:
    from tillbridge.connectors.kafka.topics import SALE
    return SALE


def _event(doc: dict[str, Any], event_type: str) -> GeneratedEvent:
    return parse_line(json.dumps({"event_type": event_type, **doc}, default=_json_default))


def hand_change(record: dict[str, Any]) -> dict[str, Any]:
    """A PATCH body that changes a posted cash sale as someone editing it in NetSuite
    would: its first line's quantity goes up by one."""
    first = record["item"]["items"][0]
    line = {"item": {"id": str(first["item"]["id"])},
            "quantity": Decimal(str(first["quantity"])) + 1, "rate": first["rate"]}
    for key in ("location", "taxCode"):  # a user's edit keeps the line's tax code
        if first.get(key):
            line[key] = {"id": str(first[key]["id"])}
    rest = [{k: v for k, v in ln.items() if k in ("item", "quantity", "rate", "amount",
                                                  "location", "description", "taxCode")}
            for ln in record["item"]["items"][1:]]
    return {"item": {"items": [line, *rest]}}
