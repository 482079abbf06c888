"""Builders for test records: a balanced sale by default, tweaked per test."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any


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
        "tenders": [
            {"tender_type": "VISA", "amount": D("30.00"), "authorization_id": "A1",
             "gateway_code": "00", "card_last4": "4242", "cash_drawer_id": None},
            {"tender_type": "CASH", "amount": D("11.26"), "authorization_id": None,
             "gateway_code": None, "card_last4": None, "cash_drawer_id": "D1"},
        ],
        "receipt": {"receipt_number": "R01-42", "channel": "POS", "printed": True,
                    "email_to": None, "terminal_software": "till 9.1"},
    }
    sale = copy.deepcopy(sale)
    sale.update(overrides)
    return sale


def sandbox_refdata() -> Any:
    """A ReferenceData snapshot of the simulator's seed (what `ReferenceData.load` reads)."""
    import json
    from decimal import Decimal
    from importlib import resources

    from tillbridge.streams.refdata import (
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
