"""Synthetic POS traffic: realistic sales from several stores and registers.

Why a generator and not fixtures: the pipeline has to be exercised with the
mix real tills produce -- small baskets, member and clearance prices, coupons
and receipt-level promotions, per-store tax, cash/card/gift-card and split
tenders, known, newly enrolled and anonymous shoppers -- plus the dirty data
the seed lists (missing tax code or location, unknown SKU, totals that do not
add up, duplicates, bytes that are not Avro). Every sale is drawn from the
NetSuite sandbox (:mod:`tillbridge.devstack.pos.reference`), so a clean
sale always maps to active items stocked at the selling store.

Arithmetic (all :class:`~decimal.Decimal`, ROUND_HALF_UP to the cent):

* line gross = quantity x unit_price; ``subtotal`` = sum of line gross;
* line tax = (gross - line discounts) x rate / 100, or x rate / (100 + rate) in a
  VAT store (``prices_include_tax``), rounded per line or on the receipt total per rate
  with the cents allocated to lines, as the store's till does (``STORE_TAX``,
  :mod:`tillbridge.devstack.pos.tax`); exempt items/shoppers and reduced-rate items carry
  their own code (``line_tax``);
* receipt-level (order) discounts do not change line tax: they are modelled
  as post-tax reductions of the receipt, so every line's tax can be checked
  from that line alone;
* ``discount_total`` = line discounts + order discounts;
* ``total`` = subtotal - discount_total + tax_total, exactly (no + tax_total in a VAT
  store: its prices hold their tax);
* sum of tender amounts == total, exactly (cash change already deducted).

Output is deterministic for a given ``seed`` (one :class:`random.Random`, a
fixed start clock, UUIDs drawn from that RNG).
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tillbridge.connectors.kafka.topics import SALE
from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.devstack.pos.reference import Customer, Item, Reference, Store, reference
from tillbridge.devstack.pos.tax import ring_tax
from tillbridge.devstack.pos.tenders import TenderShaper

DIRTY_KINDS: tuple[str, ...] = (
    "missing_tax_code",
    "missing_location",
    "unknown_sku",
    "totals_mismatch",
    "duplicate",
    "not_avro",
)

CENT = Decimal("0.01")
QTY = Decimal("0.001")
RATE = Decimal("0.0001")
DEFAULT_START = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
REGISTERS_PER_STORE = 3
TERMINAL_SOFTWARE = "TillOS 4.2.1"

_BASKET_SIZES = (1, 2, 3, 4, 5, 6, 8)
_BASKET_WEIGHTS = (40, 25, 15, 9, 5, 4, 2)
_QUANTITIES = (1, 2, 3)
#: Tax situations a chain has, per store (the till's choice): rounding per LINE or on the
#: receipt TOTAL, and VAT-inclusive prices; other stores: per line, tax-exclusive.
STORE_TAX: dict[str, tuple[str, bool]] = {"S002": ("TOTAL", False), "S004": ("TOTAL", False),
                                          "S005": ("LINE", True)}
#: Exempt items (books), exempt shoppers (a resale certificate on file: loyalty ids ending
#: in 7) and reduced-rate items (socks) carry their own code (mappings tax.line_rate_codes).
EXEMPT_SKU_PREFIX = "BTL-"
EXEMPT_SHOPPER_SUFFIX = "7"
REDUCED_SKU_PREFIX = "SCK-"
REDUCED_RATE = Decimal("5.0000")
_QUANTITY_WEIGHTS = (85, 12, 3)
_CARDS = ("VISA", "MASTERCARD", "AMEX", "DEBIT")
_CARD_WEIGHTS = (45, 25, 10, 20)
_GATEWAYS = ("ADYEN", "STRIPE", "WORLDPAY")
_FIRST = ("Maya", "Leo", "Noor", "Ken", "Zoe", "Raj", "Ines", "Tom", "Lina", "Omar")
_LAST = ("Patel", "Nguyen", "Silva", "Kim", "Moreau", "Haddad", "Berg", "Costa", "Ito", "Reyes")


def money(value: Decimal) -> Decimal:
    """Round half-up to the cent (the POS rounding rule)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def loyalty_points(amount: Decimal) -> int:
    """The till's loyalty rule: a point per whole currency unit paid (or refunded)."""
    return int(max(amount, Decimal(0)))


def rng_uuid(rng: random.Random) -> str:
    """A v4 UUID drawn from ``rng``, so generated events are reproducible by seed."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def customer_fields(known: Customer) -> dict[str, Any]:
    """A known shopper as a sale's or order's ``customer`` record."""
    return {
        "customer_id": known.customer_id,
        "loyalty_id": known.loyalty_id,
        "email": known.email,
        "phone": known.phone,
        "first_name": known.first_name,
        "last_name": known.last_name,
        "anonymous_tag": None,
    }




class _SaleFactory:
    def __init__(self, seed: int, start: datetime, ref: Reference, min_lines: int = 1) -> None:
        self.rng = random.Random(seed)
        self.ref = ref
        self.clock = start
        self.sequences: dict[tuple[str, str], int] = {}
        self.new_customers = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=64)
        self.min_lines = min_lines  # benchmarks ask for ~1 KB sales (bigger baskets)
        self.shaper = TenderShaper(seed)  # tender situations, on their own RNG

    # -- small helpers -------------------------------------------------------
    def uuid(self) -> str:
        return rng_uuid(self.rng)

    def code(self, alphabet: str, length: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def tick(self) -> datetime:
        millis = max(1, int(self.rng.expovariate(1 / 900)))
        self.clock += timedelta(milliseconds=millis)
        return self.clock

    def next_transaction(self, store: Store) -> tuple[str, str, int]:
        register = f"R{self.rng.randint(1, REGISTERS_PER_STORE):02d}"
        seq = self.sequences.get((store.code, register), 0) + 1
        self.sequences[(store.code, register)] = seq
        return register, f"{store.code}-{register}-{seq:06d}", seq

    # -- sale parts ----------------------------------------------------------
    def customer(self) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.40 and self.ref.customers:
            return customer_fields(self.rng.choice(self.ref.customers))
        if roll < 0.50:
            self.new_customers += 1
            n = self.new_customers
            first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
            return {
                "customer_id": None,
                "loyalty_id": f"LOY9{self.rng.randint(0, 99):02d}{n:05d}",
                "email": f"{first.lower()}.{last.lower()}.{n}@example.net",
                "phone": f"+1-555-{self.rng.randint(2000, 9999)}",
                "first_name": first,
                "last_name": last,
                "anonymous_tag": None,
            }
        return {
            "customer_id": None,
            "loyalty_id": None,
            "email": None,
            "phone": None,
            "first_name": None,
            "last_name": None,
            "anonymous_tag": "WALKIN",
        }

    def price(self, item: Item, member: bool) -> tuple[Decimal, str]:
        if item.sku.endswith(("-005", "-006")) and self.rng.random() < 0.5:
            return money(item.base_price * Decimal("0.70")), "CLEARANCE"
        if member:
            return money(item.base_price * Decimal("0.90")), "MEMBER"
        return item.base_price, "BASE"

    def line_discounts(self, gross: Decimal) -> list[dict[str, Any]]:
        roll = self.rng.random()
        if roll < 0.08:
            pct = self.rng.choice((10, 15))
            amount = money(gross * pct / 100)
            promo = f"PROMO-COUPON{pct}"
            return [{"code": f"COUPON{pct}", "promotion_id": promo, "amount": amount}]
        if roll < 0.12 and gross >= 25:
            return [{"code": "MARKDOWN5", "promotion_id": "PROMO-MD5", "amount": Decimal("5.00")}]
        return []

    def order_discounts(self, net: Decimal, member: bool) -> list[dict[str, Any]]:
        roll = self.rng.random()
        if roll < 0.08 and net >= 50:
            return [
                {"code": "SPEND50SAVE5", "promotion_id": "PROMO-SPEND50", "amount": Decimal("5.00")}
            ]
        if roll < 0.12 and member and net >= 40:
            return [{"code": "LOYALTY-REWARD", "promotion_id": None, "amount": Decimal("10.00")}]
        return []

    def card(self, tender: str, amount: Decimal, store: Store) -> dict[str, Any]:
        return {
            "tender_type": tender,
            "amount": amount,
            "authorization_id": self.code("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", 6),
            "gateway_code": _GATEWAYS[int(store.location_id) % len(_GATEWAYS)],
            "card_last4": self.code("0123456789", 4),
            "cash_drawer_id": None,
        }

    def tenders(self, total: Decimal, store: Store, register: str) -> list[dict[str, Any]]:
        drawer = f"{store.code}-{register}-D1"
        cash = {
            "tender_type": "CASH",
            "amount": total,
            "authorization_id": None,
            "gateway_code": None,
            "card_last4": None,
            "cash_drawer_id": drawer,
        }
        roll = self.rng.random()
        brand = self.rng.choices(_CARDS, _CARD_WEIGHTS)[0]
        if roll < 0.30:
            return [cash]
        if roll < 0.80 or total < Decimal("0.02"):
            return [self.card(brand, total, store)]
        if roll < 0.88:
            gift = self.card("GIFT_CARD", total, store)
            gift["gateway_code"] = "GIVEX"
            return [gift]
        # split tender: part gift card or cash, rest on a card
        part = money(total * Decimal(str(round(self.rng.uniform(0.2, 0.8), 2))))
        part = min(max(part, CENT), total - CENT)
        if self.rng.random() < 0.5:
            first = self.card("GIFT_CARD", part, store)
            first["gateway_code"] = "GIVEX"
        else:
            first = dict(cash, amount=part)
        return [first, self.card(brand, total - part, store)]

    def sale(self) -> dict[str, Any]:
        rng = self.rng
        store = rng.choice(self.ref.stores)
        register, txn, seq = self.next_transaction(store)
        completed = self.tick()
        started = completed - timedelta(milliseconds=rng.randint(20_000, 300_000))
        customer = self.customer()
        member = customer["loyalty_id"] is not None
        size = max(rng.choices(_BASKET_SIZES, _BASKET_WEIGHTS)[0], self.min_lines)
        items = rng.sample(store.items, min(size, len(store.items)))
        lines: list[dict[str, Any]] = []
        for n, item in enumerate(items, start=1):
            qty = Decimal(rng.choices(_QUANTITIES, _QUANTITY_WEIGHTS)[0])
            unit_price, tier = self.price(item, member)
            gross = qty * unit_price
            discounts = self.line_discounts(gross)
            lines.append(
                {
                    "line_no": n,
                    "sku": item.sku,
                    "description": item.name,
                    "quantity": qty.quantize(QTY),
                    "unit_price": unit_price,
                    "price_level": tier,
                    "discounts": discounts,
                    **self.line_tax(store, item.sku, customer),
                    "tax_amount": Decimal(0),  # rung below, per store (devstack/pos/tax.py)
                    "promotion_ids": [d["promotion_id"] for d in discounts if d["promotion_id"]],
                }
            )
        subtotal = sum((ln["quantity"] * ln["unit_price"] for ln in lines), Decimal(0))
        line_disc = sum((d["amount"] for ln in lines for d in ln["discounts"]), Decimal(0))
        order_disc = self.order_discounts(subtotal - line_disc, member)
        lines = self.shaper.with_gift_card(lines, txn)
        rounding, inclusive = STORE_TAX.get(store.code, ("LINE", False))
        sale = ring_tax({"lines": lines, "order_discounts": order_disc,
                         "prices_include_tax": inclusive}, rounding)
        total = sale["total"]
        cashier = rng.choice(self.ref.employees) if self.ref.employees else None
        return {
            "event_id": self.uuid(),
            "pos_transaction_id": txn,
            "store_id": store.code,
            "register_id": register,
            "cashier_id": cashier,
            "sales_rep_id": cashier if rng.random() < 0.6 else rng.choice(self.ref.employees),
            "business_date": completed.date().isoformat(),
            "started_at": started,
            "completed_at": completed,
            "currency": "USD",
            "prices_include_tax": inclusive,
            "tax_rounding": rounding,
            "customer": customer,
            "lines": lines,
            "order_discounts": order_disc,
            "subtotal": sale["subtotal"],
            "discount_total": sale["discount_total"],
            "tax_total": sale["tax_total"],
            "total": total,
            "tenders": self.shaper.shape(self.tenders(total, store, register), total,
                                         customer["customer_id"]),
            "receipt": {
                "receipt_number": f"{store.code}{register}{seq:06d}",
                "channel": "POS",
                "printed": rng.random() < 0.7,
                "email_to": customer["email"] if member and rng.random() < 0.3 else None,
                "terminal_software": TERMINAL_SOFTWARE,
            },
            "loyalty_points_earned": loyalty_points(total) if member else None,
        }

    @staticmethod
    def line_tax(store: Store, sku: str, customer: dict[str, Any]) -> dict[str, Any]:
        """The line's tax code and rate: an exempt shopper's or item's TAX-EXEMPT, a
        reduced-rate item's TAX-REDUCED, else the store's. Decided from the SKU and the
        loyalty id (no random draw), so the rest of the traffic is as before."""
        loyalty = customer.get("loyalty_id") or ""
        if loyalty.endswith(EXEMPT_SHOPPER_SUFFIX) or sku.startswith(EXEMPT_SKU_PREFIX):
            return {"tax_code": "TAX-EXEMPT", "tax_rate": Decimal(0).quantize(RATE)}
        if sku.startswith(REDUCED_SKU_PREFIX):
            return {"tax_code": "TAX-REDUCED", "tax_rate": REDUCED_RATE.quantize(RATE)}
        return {"tax_code": store.tax_code, "tax_rate": store.tax_rate.quantize(RATE)}

    # -- dirty variants ------------------------------------------------------
    def make_dirty(self, kind: str) -> GeneratedEvent:
        rng = self.rng
        if kind == "duplicate":
            again = copy.deepcopy(rng.choice(self.recent))
            again["event_id"] = self.uuid()
            return GeneratedEvent(again["pos_transaction_id"].encode(), again, SALE, kind)
        sale = self.sale()
        key = sale["pos_transaction_id"].encode()
        if kind == "not_avro":
            return GeneratedEvent(key, self.garbage(sale), SALE, kind)
        if kind == "missing_tax_code":
            rng.choice(sale["lines"])["tax_code"] = None
        elif kind == "missing_location":
            sale["store_id"] = rng.choice(("", "S999", "XX-UNKNOWN"))
        elif kind == "unknown_sku":
            line = rng.choice(sale["lines"])
            sku = line["sku"]
            while sku in self.ref.known_skus:
                sku = f"UNK-{rng.randint(100, 999)}"
            line["sku"] = sku
        elif kind == "totals_mismatch":
            last = sale["tenders"][-1]
            cents = Decimal(rng.randint(1, 99)) * CENT
            if rng.random() < 0.5 and last["amount"] - cents > 0:
                cents = -cents
            sale["total"] += cents
            last["amount"] += cents
        else:
            raise ValueError(f"unknown dirty kind {kind!r}")
        return GeneratedEvent(key, sale, SALE, kind)

    def garbage(self, sale: dict[str, Any]) -> bytes:
        """Bytes a misconfigured producer might send; none starts with magic byte 0 + id."""
        choice = self.rng.randrange(4)
        if choice == 0:  # a JSON producer on the Avro topic
            return json.dumps(
                {"pos_transaction_id": sale["pos_transaction_id"], "total": str(sale["total"])}
            ).encode()
        if choice == 1:  # random noise, first byte not the magic 0
            return bytes([self.rng.randint(1, 255)]) + self.rng.randbytes(self.rng.randint(0, 64))
        if choice == 2:  # truncated Confluent header
            return b"\x00" + self.rng.randbytes(self.rng.randint(0, 4))
        return b""  # empty value (a tombstone on a non-compacted topic)


def generate(
    count: int,
    seed: int = 0,
    dirty: float = 0.0,
    *,
    start: datetime = DEFAULT_START,
    min_lines: int = 1,
) -> Iterator[GeneratedEvent]:
    """Yield ``count`` sale events; about ``dirty`` of them (0..1) dirty, kinds in equal shares.

    Deterministic for a given ``seed``/``dirty``/``start``. A ``duplicate``
    repeats one of the last clean sales (same ``pos_transaction_id`` and key,
    new ``event_id``).
    """
    if not 0.0 <= dirty <= 1.0:
        raise ValueError(f"dirty must be within 0..1, got {dirty}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    factory = _SaleFactory(seed, start, reference(), min_lines)
    for _ in range(count):
        if dirty and factory.rng.random() < dirty:
            kind = factory.rng.choice(DIRTY_KINDS)
            if kind == "duplicate" and not factory.recent:
                kind = factory.rng.choice(DIRTY_KINDS[:-2] + DIRTY_KINDS[-1:])
            yield factory.make_dirty(kind)
            continue
        sale = factory.sale()
        factory.recent.append(sale)
        yield GeneratedEvent(sale["pos_transaction_id"].encode(), sale, SALE)
