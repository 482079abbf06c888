"""Typed views of decoded POS events and the stage outcome types.

Decoded Avro arrives as plain dicts; TypedDicts give the stages type-checked field names at
zero per-event cost (no copying into objects on the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypedDict

from .reasons import CATALOGUE


class DiscountRec(TypedDict):
    code: str
    promotion_id: str | None
    amount: Decimal


class SaleLineRec(TypedDict):
    line_no: int
    sku: str
    description: str | None
    quantity: Decimal
    unit_price: Decimal
    price_level: str | None
    discounts: list[DiscountRec]
    tax_code: str | None
    tax_rate: Decimal
    tax_amount: Decimal
    promotion_ids: list[str]


class CustomerRefRec(TypedDict):
    customer_id: str | None
    loyalty_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    anonymous_tag: str | None


class TenderRec(TypedDict):
    tender_type: str
    amount: Decimal
    authorization_id: str | None
    gateway_code: str | None
    card_last4: str | None
    cash_drawer_id: str | None


class ReceiptRec(TypedDict):
    receipt_number: str
    channel: str
    printed: bool
    email_to: str | None
    terminal_software: str | None


class SaleRec(TypedDict):
    event_id: str
    pos_transaction_id: str
    store_id: str
    register_id: str
    cashier_id: str | None
    sales_rep_id: str | None
    business_date: str
    started_at: datetime
    completed_at: datetime
    currency: str
    customer: CustomerRefRec
    lines: list[SaleLineRec]
    order_discounts: list[DiscountRec]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal
    tenders: list[TenderRec]
    receipt: ReceiptRec


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a stage refused a record: becomes the DLQ headers. ``inputs`` is what the rule saw."""

    stage: str
    reason: str
    rule: str
    message: str
    inputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.reason not in CATALOGUE:
            raise ValueError(f"reason {self.reason!r} is not in the catalogue")
