"""Store inventory movements, as a store system reports them beside the sales.

Every line of a clean sale leaves the store (a SALE movement) and every restocked return
line comes back (RETURN): tillbridge skips both, the cashSale and cashRefund book them.
Besides those, each store reports what NetSuite learns of no other way: shrink, damage,
count corrections, found stock, receipts and transfers between stores (both sides). One
seeded dirty movement is **late**: it happened well before the others of its store and is
published last, so its window has closed by the time it arrives (it must go to the next
open window, never be dropped).

Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka.topics import INVENTORY, RETURN, SALE
from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.devstack.pos.generator import QTY, rng_uuid
from tillbridge.devstack.pos.reference import reference

#: (reason, sign, low, high): what a store reports per movement type
_STORE_MOVES = (("SHRINK", -1, 1, 2), ("DAMAGE", -1, 1, 2), ("ADJUSTMENT", -1, 1, 3),
                ("ADJUSTMENT", 1, 1, 2), ("FOUND", 1, 1, 1), ("RECEIPT", 1, 6, 24))


def movement(rng: random.Random, mid: str, store: str, sku: str, qty: Decimal, reason: str,
             at: datetime, **extra: Any) -> dict[str, Any]:
    mv: dict[str, Any] = {
        "event_id": rng_uuid(rng), "movement_id": mid, "occurred_at": at, "store_id": store,
        "register_id": None, "pos_transaction_id": None, "employee_id": None, "sku": sku,
        "quantity_delta": qty.quantize(QTY), "reason": reason, "reason_note": None,
        "reference_id": None, "counterpart_location": None, "unit_cost": None,
        "on_hand_after": None, "available_after": None, "backordered": False,
        "backorder_quantity": None, "reorder_point": None, "replenishment_triggered": False,
        "replenishment_quantity": None, "replenish_from": None}
    mv.update(extra)
    return mv


def _event(mv: dict[str, Any]) -> GeneratedEvent:
    key = mv.get("pos_transaction_id") or mv["movement_id"]
    return GeneratedEvent(str(key).encode(), mv, INVENTORY)


def _of_transaction(event: GeneratedEvent, rng: random.Random) -> list[GeneratedEvent]:
    """The SALE / RETURN movements of a clean sale or return."""
    if event.dirty_kind is not None or not isinstance(event.value, dict):
        return []
    doc, out = event.value, []
    txn = doc["pos_transaction_id"]
    if event.topic is SALE:
        for line in doc["lines"]:
            out.append(movement(rng, f"{txn}-L{line['line_no']}", doc["store_id"], line["sku"],
                                -line["quantity"], "SALE", doc["completed_at"],
                                pos_transaction_id=txn, register_id=doc["register_id"]))
    elif event.topic is RETURN:
        for line in doc["lines"]:
            if line.get("disposition") == "RESTOCK":
                out.append(movement(rng, f"{txn}-L{line['line_no']}", doc["store_id"],
                                    line["sku"], line["quantity"], "RETURN",
                                    doc["occurred_at"], pos_transaction_id=txn))
    return [_event(mv) for mv in out]


def store_movements(start: datetime, span: timedelta, seed: int = 0, per_store: int = 6,
                    late: int = 1) -> list[GeneratedEvent]:
    """Per store ``per_store`` movements over ``[start, start + span)`` and one transfer out
    to the next store (and in there), in event-time order; then ``late`` late ones."""
    rng = random.Random(seed ^ 0x1A7E)
    stores = reference().stores
    moves: list[dict[str, Any]] = []
    for n, store in enumerate(stores):
        for i in range(per_store):
            reason, sign, low, high = rng.choice(_STORE_MOVES)
            item = rng.choice(store.items)
            at = start + span * rng.random()
            moves.append(movement(rng, f"MV-{store.code}-{i:04d}", store.code, item.sku,
                                  Decimal(sign * rng.randint(low, high)), reason, at))
        other = stores[(n + 1) % len(stores)]
        shared = [i for i in store.items if i.sku in {o.sku for o in other.items}]
        if shared and other is not store:
            item, qty = rng.choice(shared), Decimal(rng.randint(1, 4))
            at = start + span * rng.random()
            ref = f"TO-{store.code}-{other.code}"
            moves.append(movement(rng, f"{ref}-OUT", store.code, item.sku, -qty, "TRANSFER",
                                  at, reference_id=ref, counterpart_location=other.code))
            moves.append(movement(rng, f"{ref}-IN", other.code, item.sku, qty, "TRANSFER",
                                  at, reference_id=ref, counterpart_location=store.code))
    moves.sort(key=lambda m: m["occurred_at"])
    for i in range(late):
        store = stores[i % len(stores)]
        moves.append(movement(rng, f"MV-{store.code}-LATE{i}", store.code,
                              rng.choice(store.items).sku, Decimal(-1), "SHRINK",
                              start - timedelta(minutes=10), reason_note="late upload"))
    return [_event(mv) for mv in moves]


def with_movements(stream: Iterable[GeneratedEvent], seed: int = 0, *, per_store: int = 6,
                   late: int = 1) -> Iterator[GeneratedEvent]:
    """The stream with the SALE / RETURN movement of every clean sale and return right
    after it, then the stores' own movements over the stream's event-time span."""
    rng = random.Random(seed ^ 0x570C)
    first: datetime | None = None
    last: datetime | None = None
    for event in stream:
        yield event
        for mv in _of_transaction(event, rng):
            assert isinstance(mv.value, dict)
            at = mv.value["occurred_at"]
            first = at if first is None or at < first else first
            last = at if last is None or at > last else last
            yield mv
    if first is not None and last is not None:
        yield from store_movements(first, max(last - first, timedelta(seconds=1)), seed,
                                   per_store, late)
