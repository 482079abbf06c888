"""The tender situations a chain's tills produce, layered on the generator's tenders.

Every situation of issue 10 §2 appears in generated traffic: a split over three tenders,
a gift card with a card, a gift card alone, store credit (alone or with cash), a gift card
sold on a receipt line, and cash with change (reported net, or as handed over with the
change, which tillbridge nets). Drawn from their own random stream, so the rest of the
traffic (baskets, ids, prices) is what it was before this module existed.

Gift cards and store credit draw on what NetSuite holds before go-live (the sandbox seed's
``gift_certificates`` and ``credit_memos``): each factory uses a card or a customer's
credit at most once and for at most ``MAX_DRAW``, so several generated days can share one
simulator without a tender overdrawing its liability.
"""

from __future__ import annotations

import random
from decimal import ROUND_CEILING, Decimal
from typing import Any

from tillbridge.devstack.pos.reference import load_data

CENT = Decimal("0.01")
MAX_DRAW = Decimal("60.00")  # the most one factory draws on one card or one credit
GIFT_CARD_SKU = "GIFTCARD"
_NOTES = (Decimal(5), Decimal(10), Decimal(20), Decimal(50), Decimal(100))


class TenderShaper:
    """Reshapes a sale's tenders (and sometimes sells a gift card) with its own RNG."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed * 7919 + 2)
        sandbox = load_data("sandbox.json")
        self.cards = [str(c["giftCertCode"]) for c in sandbox.get("gift_certificates", [])]
        self.credit = {str(m["entity"]) for m in sandbox.get("credit_memos", [])}
        self.sold = 0

    def with_gift_card(self, lines: list[dict[str, Any]], txn: str) -> list[dict[str, Any]]:
        """The receipt's lines (each with its ``gift_card_code``, None), now and then one
        more selling a gift card."""
        out = [{**line, "gift_card_code": None} for line in lines]
        sold = self.gift_card_line(len(out) + 1, txn)
        return [*out, sold] if sold else out

    def gift_card_line(self, line_no: int, txn: str) -> dict[str, Any] | None:
        """Now and then a receipt also sells a gift card (tax exempt: it is not a sale)."""
        if self.rng.random() >= 0.04:
            return None
        self.sold += 1
        price = self.rng.choice((Decimal("25.00"), Decimal("50.00"), Decimal("100.00")))
        return {"line_no": line_no, "sku": GIFT_CARD_SKU, "description": "Gift Card",
                "quantity": Decimal("1.000"), "unit_price": price, "price_level": None,
                "discounts": [], "tax_code": "TAX-EXEMPT", "tax_rate": Decimal("0.0000"),
                "tax_amount": Decimal(0), "promotion_ids": [],
                "gift_card_code": f"GC-{txn}"}

    def card(self, kind: str, amount: Decimal) -> dict[str, Any]:
        """A card tender drawn from this module's RNG (the generator's stays untouched)."""
        code = "".join(self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))
        return {"tender_type": kind, "amount": amount, "authorization_id": code,
                "gateway_code": self.rng.choice(("ADYEN", "STRIPE", "WORLDPAY")),
                "card_last4": f"{self.rng.randrange(10_000):04d}", "cash_drawer_id": None,
                "gift_card_code": None, "change_given": None}

    def shape(self, tenders: list[dict[str, Any]], total: Decimal,
              customer_id: str | None) -> list[dict[str, Any]]:
        """The situations, then gift card codes (a card with no budget left: paid by card)."""
        roll = self.rng.random()
        if customer_id in self.credit and roll < 0.5:
            self.credit.discard(customer_id)  # once per customer and factory
            part = min(MAX_DRAW, total)
            rest = [self.card("VISA", total - part)] if total > part else []
            tenders = [_store_credit(part), *rest]
        elif len(tenders) == 2 and roll < 0.4 and tenders[1]["amount"] >= 2 * CENT:
            first, second = tenders
            half = (second["amount"] / 2).quantize(CENT)
            kind = second["tender_type"]
            tenders = [first, self.card(kind, second["amount"] - half),
                       self.card("AMEX" if kind != "AMEX" else "DEBIT", half)]
        out = [{"gift_card_code": None, "change_given": None, **t} for t in tenders]
        out = [self._gift(t) if t["tender_type"] == "GIFT_CARD" else t for t in out]
        return [self._change(t) if t["tender_type"] == "CASH" else t for t in out]

    def _gift(self, tender: dict[str, Any]) -> dict[str, Any]:
        if not self.cards or tender["amount"] > MAX_DRAW:
            return self.card("VISA", tender["amount"])
        tender["gift_card_code"] = self.cards.pop(self.rng.randrange(len(self.cards)))
        return tender

    def _change(self, tender: dict[str, Any]) -> dict[str, Any]:
        """Cash handed over in notes: the change is recorded; a third of the tills report the
        handed-over amount (tillbridge nets it), the rest the amount kept."""
        amount = tender["amount"]
        note = next((n for n in _NOTES if n >= amount), None)
        if note is None or self.rng.random() < 0.3:
            return tender
        handed = (amount / note).to_integral_value(ROUND_CEILING) * note
        change = handed - amount
        if change <= 0:
            return tender
        gross = self.rng.random() < 1 / 3
        return {**tender, "change_given": change, "amount": handed if gross else amount}


def _store_credit(amount: Decimal) -> dict[str, Any]:
    return {"tender_type": "STORE_CREDIT", "amount": amount, "authorization_id": None,
            "gateway_code": None, "card_last4": None, "cash_drawer_id": None,
            "gift_card_code": None, "change_given": None}
