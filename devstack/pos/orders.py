"""Omnichannel order traffic: each order as the sequence of events its life produces.

Two shapes the seed document names, drawn from the same sandbox as the sales:

- **BOPIS**: placed online (PLACED, pickup at a store), then PICKED_UP at that store's
  counter (fulfilled and billed there);
- **buy in store, ship from warehouse**: placed at a till (SHIP_FROM_WAREHOUSE, W001),
  then shipped in two partial fulfilments (PARTIALLY_FULFILLED, then FULFILLED);
  some of them are cancelled instead after the first shipment (the rest is closed).

Quantities on fulfilment events are cumulative (``quantity_fulfilled``), as the schema
says. Every event of an order is keyed by its order id and carries ``sequence``.
Deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka.topics import OMNICHANNEL, RETURN
from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.devstack.pos.followups import online_return_for
from tillbridge.devstack.pos.generator import QTY, RATE, customer_fields, money, rng_uuid
from tillbridge.devstack.pos.reference import Reference, Store, load_data, reference

WAREHOUSE = "W001"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
_WEB_GUEST = {"customer_id": None, "loyalty_id": None, "email": None, "phone": None,
              "first_name": None, "last_name": None, "anonymous_tag": "WEB-GUEST"}


class _Orders:
    def __init__(self, seed: int, ref: Reference) -> None:
        self.rng = random.Random(seed ^ 0x0DE5)
        self.ref = ref
        self.clock = START
        sandbox = load_data("sandbox.json")
        wh = next(loc["id"] for loc in sandbox["locations"] if loc["store_code"] == WAREHOUSE)
        self.warehouse = {i["itemid"] for i in sandbox["items"]
                          if wh in i.get("locations", []) and not i.get("isinactive")}

    def uuid(self) -> str:
        return rng_uuid(self.rng)

    def tick(self, minutes: int) -> datetime:
        self.clock += timedelta(minutes=minutes, seconds=self.rng.randint(0, 59))
        return self.clock

    def lines(self, store: Store, ship: bool) -> list[dict[str, Any]]:
        # A shipped order can only hold what the warehouse stocks.
        stock = [i for i in store.items if i.sku in self.warehouse] if ship else store.items
        items = self.rng.sample(stock, min(len(stock), self.rng.choice((1, 2, 3))))
        out = []
        for n, item in enumerate(items, start=1):
            qty = Decimal(self.rng.choice((1, 2, 2, 3)))
            tax = money(qty * item.base_price * store.tax_rate / 100)
            out.append({
                "line_no": n, "sku": item.sku, "description": item.name,
                "quantity_ordered": qty.quantize(QTY), "quantity_fulfilled": None,
                "quantity_cancelled": None, "quantity_returned": None,
                "unit_price": item.base_price, "discount_amount": None, "promotion_ids": [],
                "tax_code": store.tax_code, "tax_rate": store.tax_rate.quantize(RATE),
                "tax_amount": tax, "fulfillment_location": None, "line_status": None,
                "return_condition": None, "restock_location": None})
        return out

    def order(self, n: int, kind: str, store: Store) -> dict[str, Any]:
        lines = self.lines(store, ship=kind == "SHIP_FROM_WAREHOUSE")
        subtotal = sum((ln["quantity_ordered"] * ln["unit_price"] for ln in lines), Decimal(0))
        tax = sum((ln["tax_amount"] for ln in lines), Decimal(0))
        known = self.rng.choice(self.ref.customers) if self.ref.customers else None
        at_till = kind == "SHIP_FROM_WAREHOUSE"
        return {
            "event_id": self.uuid(), "occurred_at": self.tick(7), "kind": kind,
            "order_id": f"{'POS' if at_till else 'WEB'}-{n:06d}", "sequence": 1,
            "order_channel": "POS" if at_till else "WEB", "status": "PLACED",
            "store_id": store.code if at_till else None,
            "register_id": "R01" if at_till else None,
            "pos_transaction_id": f"{store.code}-R01-O{n:05d}" if at_till else None,
            "original_pos_transaction_id": None,
            "fulfillment_location": WAREHOUSE if at_till else None,
            "pickup_store_id": None if at_till else store.code,
            "tax_jurisdiction": None, "currency": "USD",
            "customer": customer_fields(known) if known else dict(_WEB_GUEST),
            "ship_to": {"name": "Pat Doe", "line1": "1 Market St", "line2": None,
                        "city": "San Francisco", "region": "CA", "postal_code": "94105",
                        "country": "US"} if at_till else None,
            "lines": lines, "subtotal": money(subtotal), "discount_total": Decimal("0.00"),
            "shipping_total": None, "tax_total": tax, "total": money(subtotal) + tax,
            "fulfillment_id": None, "carrier": None, "tracking_number": None,
            "cancel_reason": None, "modification_note": None,
            "source_system": "POS" if at_till else "ECOM",
        }

    def follow(self, order: dict[str, Any], status: str, seq: int,
               fulfilled: list[Decimal] | None = None, **extra: Any) -> dict[str, Any]:
        ev = {**order, "event_id": self.uuid(), "occurred_at": self.tick(90),
              "sequence": seq, "status": status, **extra}
        ev["lines"] = [dict(ln) for ln in order["lines"]]
        for line, qty in zip(ev["lines"], fulfilled or [], strict=False):
            line["quantity_fulfilled"] = qty.quantize(QTY)
        return ev


def generate_orders(count: int, seed: int = 0, *, cancel_rate: float = 0.2,
                    return_rate: float = 0.1) -> Iterator[GeneratedEvent]:
    """Events of ``count`` orders, each order's events in sequence order (interleaved
    with the next orders', as several orders progress at once). ``return_rate`` of the
    picked-up orders come back to the store's till: the order's RETURN_IN_STORE event,
    then the till's POS return of it (on ``pos.return.v1``)."""
    factory = _Orders(seed, reference())
    rng = factory.rng
    pending: list[list[Any]] = []
    for n in range(1, count + 1):
        store = rng.choice(factory.ref.stores)
        if rng.random() < 0.5:
            order = factory.order(n, "BOPIS", store)
            full = [ln["quantity_ordered"] for ln in order["lines"]]
            pickup = factory.follow(order, "PICKED_UP", 2, full, store_id=store.code,
                                    register_id="R02",
                                    pos_transaction_id=f"{store.code}-R02-K{n:05d}",
                                    fulfillment_id=f"F-{n}-1")
            events: list[Any] = [order, pickup]
            if rng.random() < return_rate:  # back at the till three days after pickup
                event, ret = online_return_for(order, store.code, 3,
                                               f"{store.code}-R03-B{n:05d}", rng,
                                               pickup["occurred_at"] + timedelta(days=3))
                events += [event, GeneratedEvent(ret["pos_transaction_id"].encode(), ret,
                                                 RETURN)]
        else:
            order = factory.order(n, "SHIP_FROM_WAREHOUSE", store)
            first = [Decimal(1) for _ in order["lines"]]
            full = [ln["quantity_ordered"] for ln in order["lines"]]
            events = [order, factory.follow(order, "PARTIALLY_FULFILLED", 2, first,
                                            fulfillment_id=f"F-{n}-1", carrier="UPS",
                                            tracking_number=f"1Z{n:08d}")]
            if rng.random() < cancel_rate:
                events.append(factory.follow(order, "CANCELLED", 3, first,
                                             kind="CANCEL", cancel_reason="CUSTOMER_REQUEST"))
            else:
                events.append(factory.follow(order, "FULFILLED", 3, full,
                                             fulfillment_id=f"F-{n}-2", carrier="UPS",
                                             tracking_number=f"1Z{n:08d}B"))
        pending.append(events)
        yield from _next_of_each(pending)
    while pending:
        yield from _next_of_each(pending)


def _next_of_each(pending: list[list[Any]]) -> Iterator[GeneratedEvent]:
    """Release one event of each order in flight (orders progress side by side); an
    order's event is a dict, another family's (its POS return) a ready GeneratedEvent."""
    for evs in list(pending):
        ev = evs.pop(0)
        yield ev if isinstance(ev, GeneratedEvent) else \
            GeneratedEvent(ev["order_id"].encode(), ev, OMNICHANNEL)
        if not evs:
            pending.remove(evs)
