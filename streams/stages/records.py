"""Typed views of decoded POS events and the stage outcome types.

Decoded Avro arrives as plain dicts; TypedDicts give the stages type-checked field names at
zero per-event cost (no copying into objects on the hot path).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from tillbridge.streams.stages.reasons import ReasonCode, Stage


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
    #: added to sale.avsc later (optional): the code of a gift card sold on this line
    gift_card_code: NotRequired[str | None]


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
    #: added to sale.avsc later (optional): the gift card's code, the cash change handed back
    gift_card_code: NotRequired[str | None]
    change_given: NotRequired[Decimal | None]


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
    #: VAT stores: prices include tax (absent in events written before the field existed)
    prices_include_tax: NotRequired[bool]
    tax_rounding: NotRequired[str | None]
    customer: CustomerRefRec
    lines: list[SaleLineRec]
    order_discounts: list[DiscountRec]
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal
    tenders: list[TenderRec]
    receipt: ReceiptRec
    #: added to sale.avsc later (optional): older producers and fixtures leave it out
    loyalty_points_earned: NotRequired[int | None]


class ReturnLineRec(TypedDict):
    line_no: int
    original_line_no: int | None
    sku: str
    description: str | None
    quantity: Decimal
    unit_price: Decimal
    refund_amount: Decimal  # pre-tax, after any restocking fee
    tax_code: str | None
    tax_rate: Decimal
    tax_refund_amount: Decimal
    condition: str  # RESALABLE, OPENED, DEFECTIVE, DAMAGED, WRONG_ITEM, EXPIRED
    disposition: str  # RESTOCK, DISPOSE, RETURN_TO_VENDOR, INSPECT
    restock_location: str | None
    reason_code: str
    reason_note: str | None
    restocking_fee: Decimal | None


class ExchangeLineRec(TypedDict):
    line_no: int
    sku: str
    description: str | None
    quantity: Decimal
    unit_price: Decimal
    discount_amount: Decimal | None
    tax_code: str | None
    tax_rate: Decimal
    tax_amount: Decimal


class OriginalRefRec(TypedDict):
    """The sale being returned; every id None for a receipt-less return."""

    pos_transaction_id: str | None
    store_id: str | None
    register_id: str | None
    business_date: str | None
    channel: str  # POS | ONLINE
    online_order_id: str | None


class ReturnRec(TypedDict):
    """A decoded ``return.avsc`` event: a new transaction linked to its sale."""

    event_id: str
    pos_transaction_id: str
    store_id: str
    register_id: str
    cashier_id: str | None
    business_date: str
    occurred_at: datetime
    currency: str
    kind: str  # RETURN | EXCHANGE
    original: OriginalRefRec
    customer: CustomerRefRec
    lines: list[ReturnLineRec]
    exchange_lines: list[ExchangeLineRec]
    refund_method: str  # ORIGINAL_TENDER, CASH, STORE_CREDIT, GIFT_CARD, EXCHANGE_ONLY, NONE
    refund_tenders: list[TenderRec]
    refund_total: Decimal
    exchange_total: Decimal
    net_refund: Decimal
    loyalty_points_reversed: int | None
    approved_by: str | None


class PaymentTraceRec(TypedDict):
    at: datetime
    step: str
    detail: str | None


class PaymentRec(TypedDict):
    """A decoded ``payment.avsc`` event: one attempt or state change of a tender."""

    event_id: str
    payment_id: str
    pos_transaction_id: str
    store_id: str
    register_id: str
    cashier_id: str | None
    business_date: str
    occurred_at: datetime
    currency: str
    attempt_no: int
    tender_type: str
    amount: Decimal
    tendered_amount: Decimal | None
    change_amount: Decimal | None
    status: str  # APPROVED, DECLINED, FAILED, VOIDED, REFUNDED, PENDING
    authorization_id: str | None
    gateway_code: str | None
    gateway_response_code: str | None
    gateway_reference: str | None
    card_brand: str | None
    card_last4: str | None
    entry_mode: str | None
    cash_drawer_id: str | None
    failure_reason: str | None
    failure_code: str | None
    original_payment_id: str | None
    trace: list[PaymentTraceRec]


@dataclass(frozen=True, slots=True, init=False)
class Rejection:
    """Why a stage refused a record: becomes the DLQ headers. ``inputs`` is what the rule saw.

    ``stage`` and ``reason`` are always enum members, so a rejection with an unknown code
    cannot exist. The constructor also takes their plain strings (coerced, and refused when
    unknown) for callers not yet converted; it is written out, not generated, so mypy accepts
    those strings while the attributes stay typed as the enums.
    """

    stage: Stage
    reason: ReasonCode
    rule: str
    message: str
    inputs: dict[str, Any]

    def __init__(self, stage: Stage | str, reason: ReasonCode | str, rule: str, message: str,
                 inputs: dict[str, Any] | None = None) -> None:
        # Frozen: the dataclass __setattr__ refuses, so set the slots directly.
        object.__setattr__(self, "stage", _stage(stage))
        object.__setattr__(self, "reason", _reason(reason))
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "inputs", {} if inputs is None else inputs)


def _stage(value: Stage | str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        known = ", ".join(Stage)
        raise ValueError(f"stage {value!r} is not a pipeline stage ({known})") from None


def _reason(value: ReasonCode | str) -> ReasonCode:
    try:
        return ReasonCode(value)
    except ValueError:
        raise ValueError(f"reason {value!r} is not in the catalogue") from None


def reject(stage: Stage, reason: ReasonCode, rule: str, message: str,
           **inputs: object) -> Rejection:
    """A rule's rejection; inputs become DLQ headers: plain strings, empty rather than None."""
    return Rejection(stage, reason, rule, message,
                     {k: "" if v is None else str(v) for k, v in inputs.items()})


# -- omnichannel orders, inventory movements, settlements (decoded Avro) -------------------

class OrderLineRec(TypedDict):
    """One order line as the OMS/POS sees it. Quantities are the line's state after the event
    (cumulative): ``quantity_fulfilled`` 2 means two units shipped/handed over so far."""

    line_no: int
    sku: str
    description: str | None
    quantity_ordered: Decimal
    quantity_fulfilled: Decimal | None
    quantity_cancelled: Decimal | None
    quantity_returned: Decimal | None
    unit_price: Decimal
    discount_amount: Decimal | None
    promotion_ids: list[str]
    tax_code: str | None
    tax_rate: Decimal | None
    tax_amount: Decimal | None
    fulfillment_location: str | None
    line_status: str | None
    return_condition: str | None
    restock_location: str | None


class ShipToRec(TypedDict):
    name: str | None
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str


class OrderRec(TypedDict):
    """``schemas/omnichannel.avsc``: one state change of an order that spans channels."""

    event_id: str
    occurred_at: datetime
    kind: str
    order_id: str
    sequence: int
    order_channel: str
    status: str
    store_id: str | None
    register_id: str | None
    pos_transaction_id: str | None
    original_pos_transaction_id: str | None
    fulfillment_location: str | None
    pickup_store_id: str | None
    tax_jurisdiction: str | None
    currency: str
    customer: CustomerRefRec
    ship_to: ShipToRec | None
    lines: list[OrderLineRec]
    subtotal: Decimal
    discount_total: Decimal
    shipping_total: Decimal | None
    tax_total: Decimal
    total: Decimal
    fulfillment_id: str | None
    carrier: str | None
    tracking_number: str | None
    cancel_reason: str | None
    modification_note: str | None
    source_system: str


class InventoryMovementRec(TypedDict):
    """``schemas/inventory.avsc``: one change of on-hand stock of one SKU at one location."""

    event_id: str
    movement_id: str
    occurred_at: datetime
    store_id: str
    register_id: str | None
    pos_transaction_id: str | None
    employee_id: str | None
    sku: str
    quantity_delta: Decimal
    reason: str
    reason_note: str | None
    reference_id: str | None
    counterpart_location: str | None
    unit_cost: Decimal | None
    on_hand_after: Decimal | None
    available_after: Decimal | None
    backordered: bool
    backorder_quantity: Decimal | None
    reorder_point: Decimal | None
    replenishment_triggered: bool
    replenishment_quantity: Decimal | None
    replenish_from: str | None


class TenderSettlementRec(TypedDict):
    tender_type: str
    expected_amount: Decimal
    counted_amount: Decimal | None
    over_short: Decimal | None
    payment_count: int
    refund_amount: Decimal | None
    batch_id: str | None


class JournalLineRec(TypedDict):
    pos_transaction_id: str
    kind: str
    amount: Decimal
    tax_amount: Decimal | None


class SettlementRec(TypedDict):
    """``schemas/settlement.avsc``: a register's Z (close) or X (interim) report."""

    event_id: str
    settlement_id: str
    report_type: str
    store_id: str
    register_id: str
    cash_drawer_id: str | None
    business_date: str
    opened_at: datetime
    closed_at: datetime
    occurred_at: datetime
    opened_by: str | None
    closed_by: str | None
    currency: str
    opening_float: Decimal | None
    paid_in: Decimal | None
    paid_out: Decimal | None
    cash_drops: Decimal | None
    tenders: list[TenderSettlementRec]
    sale_count: int
    return_count: int
    void_count: int
    no_sale_count: int
    failed_payment_count: int
    gross_sales: Decimal
    discount_total: Decimal
    returns_total: Decimal
    tax_total: Decimal
    net_sales: Decimal
    first_pos_transaction_id: str | None
    last_pos_transaction_id: str | None
    transactions: list[JournalLineRec]
