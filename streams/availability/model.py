"""Typed records of the availability flow: what NetSuite said, what the POS did since, and
the signals the two together raise. Quantities are Decimal, never float."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

ZERO = Decimal(0)

#: ``(location id, item id)``: one NetSuite item at one NetSuite location.
Key = tuple[str, str]


def key_text(key: Key) -> str:
    """The Kafka key of an item at a location: ``<location id>/<item id>`` (NetSuite ids)."""
    return f"{key[0]}/{key[1]}"


@dataclass(frozen=True, slots=True)
class Level:
    """NetSuite's figures for one item at one location, as one read saw them."""

    location: str
    item: str
    on_hand: Decimal
    committed: Decimal
    available: Decimal
    on_order: Decimal
    reorder_point: Decimal | None = None
    preferred: Decimal | None = None

    @property
    def key(self) -> Key:
        return (self.location, self.item)


@dataclass(frozen=True, slots=True)
class ReadInfo:
    """One NetSuite read: which one (so an event can name it) and when it started."""

    read_id: str
    read_at: datetime


@dataclass(frozen=True, slots=True)
class Delta:
    """One POS event's effect on one item at one location.

    ``netsuite_key`` is the externalId of the NetSuite record that will carry the change
    (a sale's cashSale, a return's cashRefund, a movement window's inventoryAdjustment): once
    a read finds it, NetSuite's figures include the change and the delta is dropped."""

    event_id: str
    kind: str  # SALE, RETURN, EXCHANGE or the movement's reason
    location: str
    item: str
    quantity: Decimal  # signed: negative leaves the location
    store_id: str = ""
    sku: str = ""
    pos_transaction_id: str | None = None
    netsuite_key: str | None = None
    seen_at: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.location, self.item)


@dataclass
class ItemState:
    """The current availability of one item at one location: NetSuite's last read plus the
    POS events since that NetSuite does not show yet."""

    location: str
    item: str
    store_id: str = ""
    sku: str = ""
    base: Level | None = None
    read: ReadInfo | None = None
    pending: dict[str, Delta] = field(default_factory=dict)
    below_reorder: bool = False

    @property
    def key(self) -> Key:
        return (self.location, self.item)

    def moved(self) -> Decimal:
        return sum((d.quantity for d in self.pending.values()), ZERO)

    def available(self) -> Decimal:
        return (self.base.available if self.base else ZERO) + self.moved()

    def on_hand(self) -> Decimal:
        return (self.base.on_hand if self.base else ZERO) + self.moved()


@dataclass(frozen=True, slots=True)
class Oversell:
    """A sale took the item's available quantity at its location below zero."""

    location: str
    item: str
    store_id: str
    sku: str
    quantity_short: Decimal
    available_after: Decimal
    pos_transaction_id: str | None
    event_id: str


@dataclass(frozen=True, slots=True)
class Replenish:
    """Available fell below the reorder point: one per crossing, not one per sale."""

    location: str
    item: str
    store_id: str
    sku: str
    available: Decimal
    reorder_point: Decimal
    preferred: Decimal | None
    on_order: Decimal
    suggested_quantity: Decimal
    cause: str  # the POS event or the NetSuite read that crossed it


Signal = Oversell | Replenish
