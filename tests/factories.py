"""Builders for test records (a balanced sale by default, tweaked per test), and helpers
for tests that post them to the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from tillbridge.connectors.netsuite import NetSuiteClient
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy

if TYPE_CHECKING:
    from tillbridge.devstack.netsuite_sim import SimServer
    from tillbridge.streams.refdata.mappings import Mappings
    from tillbridge.streams.refdata.snapshot import ReferenceData

T = TypeVar("T")
#: Retries short enough for a test to wait through an injected fault.
FAST_RETRIES = RetryPolicy(max_attempts=2, base_delay_s=0.01)


def make_sale(**overrides: Any) -> dict[str, Any]:
    """A sale that passes every rule: 2 x 19.99 - 2.00 + tax 3.13 = 41.11, split tender."""
    now = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)
    sale: dict[str, Any] = {
        "event_id": "00000000-0000-0000-0000-000000000001",
        "pos_transaction_id": "S001-R01-000042",
        "store_id": "S001",
        "register_id": "R01",
        "cashier_id": "E001",
        "sales_rep_id": None,
        "business_date": "2026-11-26",
        "started_at": now,
        "completed_at": now,
        "currency": "USD",
        "customer": {"customer_id": None, "loyalty_id": None, "email": None, "phone": None,
                     "first_name": None, "last_name": None, "anonymous_tag": "WALKIN"},
        "lines": [
            {"line_no": 1, "sku": "TEE-001", "description": "Organic Tee #1",
             "quantity": D("2.000"), "unit_price": D("19.99"), "price_level": "BASE",
             "discounts": [{"code": "TEE2", "promotion_id": "PROMO-7", "amount": D("2.00")}],
             "tax_code": "TAX-CA-SF", "tax_rate": D("8.6250"), "tax_amount": D("3.28"),
             "promotion_ids": ["PROMO-7"]},
        ],
        "order_discounts": [],
        "subtotal": D("39.98"),
        "discount_total": D("2.00"),
        "tax_total": D("3.28"),
        "total": D("41.26"),
        # One tender: a cashSale (a split tender is an invoice + payments, see split_tenders).
        "tenders": [
            {"tender_type": "VISA", "amount": D("41.26"), "authorization_id": "A1",
             "gateway_code": "00", "card_last4": "4242", "cash_drawer_id": None},
        ],
        "receipt": {"receipt_number": "R01-42", "channel": "POS", "printed": True,
                    "email_to": None, "terminal_software": "till 9.1"},
    }
    sale.update(overrides)
    return sale


def split_tenders() -> list[dict[str, Any]]:
    """make_sale()'s total paid 30.00 by VISA and 11.26 in cash (an invoice + 2 payments)."""
    return [{"tender_type": "VISA", "amount": D("30.00"), "authorization_id": "A1",
             "gateway_code": "00", "card_last4": "4242", "cash_drawer_id": None},
            {"tender_type": "CASH", "amount": D("11.26"), "authorization_id": None,
             "gateway_code": None, "card_last4": None, "cash_drawer_id": "D1"}]


def sandbox_refdata() -> Any:
    """A ReferenceData snapshot of the simulator's seed (what `ReferenceData.load` reads)."""
    import json
    from decimal import Decimal
    from importlib import resources

    from tillbridge.streams.refdata.snapshot import (
        CustomerRef,
        ItemRef,
        NamedRef,
        ReferenceData,
        TaxCodeRef,
        norm_email,
        norm_phone,
    )

    doc = json.loads(resources.files("tillbridge.connectors").joinpath(
        "data/sandbox.json").read_text(encoding="utf-8"))
    taxes = {}
    for t in doc["tax_codes"]:
        ref = TaxCodeRef(t["id"], t["itemid"], Decimal(t["rate"]), not t["isinactive"])
        taxes[t["id"]] = taxes[t["itemid"]] = ref
    custs = [c for c in doc["customers"] if not c["isinactive"]]
    return ReferenceData(
        items={i["itemid"]: ItemRef(i["id"], i["itemid"], not i["isinactive"])
               for i in doc["items"]},
        customers_by_loyalty={c["loyalty_id"]: c["id"] for c in custs if c["loyalty_id"]},
        ready=True,
        item_locations={i["id"]: frozenset(i["locations"]) for i in doc["items"]},
        locations={x["id"]: NamedRef(x["id"], x["name"], not x["isinactive"])
                   for x in doc["locations"]},
        payment_methods={x["id"]: NamedRef(x["id"], x["name"], not x["isinactive"])
                         for x in doc["payment_methods"]},
        tax_codes=taxes,
        customers_by_email={norm_email(c["email"]): c["id"] for c in custs if c["email"]},
        customers_by_phone={norm_phone(c["phone"]): c["id"] for c in custs if c["phone"]},
        customers={c["id"]: CustomerRef(c["id"], c["loyalty_id"], c["email"], c["phone"],
                                        c["firstname"], c["lastname"]) for c in custs},
    )


def make_return(**overrides: Any) -> dict[str, Any]:
    """A return that passes every rule: one of make_sale()'s two tees back (net 18.99 paid
    each, tax 8.625% = 1.64), restocked at the store, refunded to the VISA it was paid by."""
    now = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)
    ret: dict[str, Any] = {
        "event_id": "00000000-0000-0000-0000-000000000101",
        "pos_transaction_id": "S001-R02-000077",
        "store_id": "S001",
        "register_id": "R02",
        "cashier_id": "E002",
        "business_date": "2026-11-28",
        "occurred_at": now,
        "currency": "USD",
        "kind": "RETURN",
        "original": {"pos_transaction_id": "S001-R01-000042", "store_id": "S001",
                     "register_id": "R01", "business_date": "2026-11-26", "channel": "POS",
                     "online_order_id": None},
        "customer": {"customer_id": None, "loyalty_id": None, "email": None, "phone": None,
                     "first_name": None, "last_name": None, "anonymous_tag": "WALKIN"},
        "lines": [return_line()],
        "exchange_lines": [],
        "refund_method": "ORIGINAL_TENDER",
        "refund_tenders": [
            {"tender_type": "VISA", "amount": D("20.63"), "authorization_id": "RA1",
             "gateway_code": "00", "card_last4": "4242", "cash_drawer_id": None},
        ],
        "refund_total": D("20.63"),
        "exchange_total": D("0.00"),
        "net_refund": D("20.63"),
        "loyalty_points_reversed": None,
        "approved_by": None,
    }
    ret.update(overrides)
    return ret


def return_line(**overrides: Any) -> dict[str, Any]:
    """One returned TEE-001 of make_sale() (line 1), resalable, back on the shelf."""
    line: dict[str, Any] = {
        "line_no": 1, "original_line_no": 1, "sku": "TEE-001", "description": "Organic Tee #1",
        "quantity": D("1.000"), "unit_price": D("18.99"), "refund_amount": D("18.99"),
        "tax_code": "TAX-CA-SF", "tax_rate": D("8.6250"), "tax_refund_amount": D("1.64"),
        "condition": "RESALABLE", "disposition": "RESTOCK", "restock_location": None,
        "reason_code": "WRONG_SIZE", "reason_note": None, "restocking_fee": None,
    }
    line.update(overrides)
    return line


def make_payment(**overrides: Any) -> dict[str, Any]:
    """An approved VISA payment of make_sale()'s transaction (its 30.00 card tender)."""
    now = datetime(2026, 11, 26, 15, 29, tzinfo=UTC)
    pay: dict[str, Any] = {
        "event_id": "00000000-0000-0000-0000-000000000201",
        "payment_id": "P-S001-R01-000042-1",
        "pos_transaction_id": "S001-R01-000042",
        "store_id": "S001",
        "register_id": "R01",
        "cashier_id": "E001",
        "business_date": "2026-11-26",
        "occurred_at": now,
        "currency": "USD",
        "attempt_no": 1,
        "tender_type": "VISA",
        "amount": D("30.00"),
        "tendered_amount": None,
        "change_amount": None,
        "status": "APPROVED",
        "authorization_id": "A1",
        "gateway_code": "ADYEN",
        "gateway_response_code": "00",
        "gateway_reference": "GW-778899",
        "card_brand": "VISA",
        "card_last4": "4242",
        "entry_mode": "CHIP",
        "cash_drawer_id": None,
        "failure_reason": None,
        "failure_code": None,
        "original_payment_id": None,
        "trace": [
            {"at": now, "step": "CARD_READ", "detail": "chip"},
            {"at": now, "step": "AUTH_REQUEST", "detail": "30.00"},
            {"at": now, "step": "AUTH_RESPONSE", "detail": "00 approved"},
        ],
    }
    pay.update(overrides)
    return pay


def order_line(line_no: int = 1, sku: str = "TEE-001", qty: str = "2", price: str = "19.99",
               **overrides: Any) -> dict[str, Any]:
    """One omnichannel order line (decoded Avro shape); quantities are cumulative state."""
    line: dict[str, Any] = {
        "line_no": line_no, "sku": sku, "description": None, "quantity_ordered": D(qty),
        "quantity_fulfilled": None, "quantity_cancelled": None, "quantity_returned": None,
        "unit_price": D(price), "discount_amount": None, "promotion_ids": [],
        "tax_code": "TAX-CA-SF", "tax_rate": D("8.6250"), "tax_amount": None,
        "fulfillment_location": None, "line_status": None, "return_condition": None,
        "restock_location": None,
    }
    line.update(overrides)
    return line


def make_order(**overrides: Any) -> dict[str, Any]:
    """A web BOPIS order picked up at S001 by a known loyalty member (customer 5001):
    2 x TEE-001 at 19.99 less 2.00, 1 x TEE-002 at 26.00."""
    order: dict[str, Any] = {
        "event_id": "00000000-0000-0000-0000-000000000301",
        "occurred_at": datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
        "kind": "BOPIS", "order_id": "WEB-1001", "sequence": 1, "order_channel": "WEB",
        "status": "PLACED", "store_id": None, "register_id": None, "pos_transaction_id": None,
        "original_pos_transaction_id": None, "fulfillment_location": None,
        "pickup_store_id": "S001", "tax_jurisdiction": "CA-SF", "currency": "USD",
        "customer": {"customer_id": "C-77", "loyalty_id": "LOY100001", "email": None,
                     "phone": None, "first_name": None, "last_name": None,
                     "anonymous_tag": None},
        "ship_to": None,
        "lines": [order_line(1, "TEE-001", "2", "19.99", discount_amount=D("2.00"),
                             promotion_ids=["PROMO-7"]),
                  order_line(2, "TEE-002", "1", "26.00")],
        "subtotal": D("65.98"), "discount_total": D("2.00"), "shipping_total": None,
        "tax_total": D("5.52"), "total": D("69.50"), "fulfillment_id": None, "carrier": None,
        "tracking_number": None, "cancel_reason": None, "modification_note": None,
        "source_system": "ECOM",
    }
    order.update(overrides)
    return order


def make_movement(**overrides: Any) -> dict[str, Any]:
    """A shrink of one TEE-001 at S001 (decoded ``inventory.avsc``)."""
    mv: dict[str, Any] = {
        "event_id": "00000000-0000-0000-0000-000000000401", "movement_id": "MV-1",
        "occurred_at": datetime(2026, 11, 26, 15, 5, tzinfo=UTC), "store_id": "S001",
        "register_id": None, "pos_transaction_id": None, "employee_id": "E001",
        "sku": "TEE-001", "quantity_delta": D("-1.000"), "reason": "SHRINK",
        "reason_note": "damaged", "reference_id": None, "counterpart_location": None,
        "unit_cost": None, "on_hand_after": None, "available_after": None,
        "backordered": False, "backorder_quantity": None, "reorder_point": None,
        "replenishment_triggered": False, "replenishment_quantity": None,
        "replenish_from": None,
    }
    mv.update(overrides)
    return mv


def make_settlement(**overrides: Any) -> dict[str, Any]:
    """S001/R01's Z report: cash counted 1.50 short, VISA batch 0.25 over."""
    at = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    st: dict[str, Any] = {
        "event_id": "00000000-0000-0000-0000-000000000501", "settlement_id": "Z-0042",
        "report_type": "Z", "store_id": "S001", "register_id": "R01", "cash_drawer_id": "D1",
        "business_date": "2026-11-26", "opened_at": at, "closed_at": at, "occurred_at": at,
        "opened_by": "E001", "closed_by": "E001", "currency": "USD",
        "opening_float": D("100.00"), "paid_in": None, "paid_out": None, "cash_drops": None,
        "tenders": [
            {"tender_type": "CASH", "expected_amount": D("40.00"),
             "counted_amount": D("38.50"), "over_short": D("-1.50"), "payment_count": 2,
             "refund_amount": None, "batch_id": None},
            {"tender_type": "VISA", "expected_amount": D("30.00"),
             "counted_amount": D("30.25"), "over_short": None, "payment_count": 1,
             "refund_amount": None, "batch_id": "B-9"},
        ],
        "sale_count": 3, "return_count": 0, "void_count": 0, "no_sale_count": 0,
        "failed_payment_count": 0, "gross_sales": D("70.00"), "discount_total": D("0.00"),
        "returns_total": D("0.00"), "tax_total": D("0.00"), "net_sales": D("70.00"),
        "first_pos_transaction_id": None, "last_pos_transaction_id": None,
        "transactions": [],
    }
    st.update(overrides)
    return st


# -- against the simulator ---------------------------------------------------------------

def run_client(sim: SimServer, use: Callable[[ReliableClient], Awaitable[T]],
               policy: RetryPolicy = FAST_RETRIES) -> T:
    """``use`` with the project's ReliableClient on the simulator, in a fresh event loop."""
    async def main() -> T:
        async with NetSuiteClient(sim.base_url, sim.credentials) as raw:
            return await use(ReliableClient(raw, policy))
    return asyncio.run(main())


def created(sim: SimServer) -> dict[str, int]:
    """Records created so far per record type (types with none left out)."""
    records = httpx.get(sim.base_url + "/__sim/stats").json()["records"]
    return {t: v["created"] for t, v in records.items() if v["created"]}


async def post_cash_sale(rc: ReliableClient, sale: dict[str, Any], maps: Mappings,
                         ref: ReferenceData) -> str:
    """The sale as the sink posts it (enrich + build_cash_sale, by externalId)."""
    from tillbridge.streams.ledger.sale_records import build_cash_sale, sale_external_id
    from tillbridge.streams.stages.enrich import Enrichment, enrich_sale

    enr = enrich_sale(sale, maps, ref)
    assert isinstance(enr, Enrichment), enr
    body = build_cash_sale(sale, enr, enr.customer.id or maps.guest_customer, maps.discount_item)
    return await rc.create_idempotent("cashSale", sale_external_id(sale), body)
