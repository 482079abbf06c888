"""A sale's tenders read back from NetSuite, per payment method, against the POS's.

What a settlement per payment method needs NetSuite to answer: for each POS sale, the money
each payment method took. A cashSale's ``paymentOption`` took its total less the gift
certificates redeemed on it; each customerPayment applied to an invoice took its
``payment`` under its own ``paymentOption``; gift cards are the ``giftCertRedemption``
lines; store credit is what credit memos applied to the invoice. Used by the demo's money
block and by the tests (reads only: GET and SuiteQL).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.errors import NotFound
from tillbridge.streams.ledger.ids import sale_id
from tillbridge.streams.ledger.tenders import GIFT_CARD, STORE_CREDIT
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.records import SaleRec
from tillbridge.streams.stages.tenders import booked_tenders

ZERO = Decimal(0)
_PAYMENTS = ("SELECT id FROM transaction WHERE recordtype = 'customerpayment' "
             "AND custbody_pos_transaction_id = ? AND custbody_pos_store_id = ? ORDER BY id")
_CREDITS = "SELECT id FROM transaction WHERE recordtype = 'creditmemo' AND entity = ?"


def expected_by_method(sale: SaleRec, tenders: Mapping[str, str]) -> dict[str, Decimal]:
    """The POS's tender totals by NetSuite payment method id (gift cards and store credit by
    their tender code: they are liabilities drawn on, not payment methods), change netted."""
    out: dict[str, Decimal] = {}
    for t in booked_tenders(sale):
        key = t["tender_type"] if t["tender_type"] in (GIFT_CARD, STORE_CREDIT) \
            else tenders[t["tender_type"]]
        out[key] = out.get(key, ZERO) + t["amount"]
    return {k: v for k, v in out.items() if v}


def _items(record: Mapping[str, Any], sublist: str) -> list[dict[str, Any]]:
    value = record.get(sublist)
    return list(value.get("items", [])) if isinstance(value, dict) else []


def _add(out: dict[str, Decimal], key: str, amount: Any) -> None:
    value = Decimal(str(amount or 0)).quantize(Decimal("0.01"))
    if value:
        out[key] = out.get(key, ZERO) + value


async def booked_by_method(client: NetSuiteClient, sale: SaleRec) -> dict[str, Decimal] | None:
    """What NetSuite booked for the sale per payment method (None: no sale record)."""
    ext = sale_id(sale["store_id"], sale["pos_transaction_id"])
    for record_type in ("cashSale", "invoice"):
        try:
            record = await client.get(record_type, f"eid:{ext}", expand=True)
        except NotFound:
            continue
        out: dict[str, Decimal] = {}
        for line in _items(record, "giftCertRedemption"):
            _add(out, GIFT_CARD, line.get("authCodeApplied"))
        if record_type == "cashSale":
            option = (record.get("paymentOption") or {}).get("id")
            received = Decimal(str(record["total"])) - Decimal(str(record.get("giftCertApplied")
                                                                    or 0))
            if option:
                _add(out, str(option), received)
            return out
        await _invoice_tenders(client, sale, record, out)
        return out
    return None


async def _invoice_tenders(client: NetSuiteClient, sale: SaleRec, invoice: Mapping[str, Any],
                           out: dict[str, Decimal]) -> None:
    """An invoice's tenders: its customerPayments, and the credit memos applied to it."""
    rows = await client.suiteql(_PAYMENTS, params=[sale["pos_transaction_id"], sale["store_id"]])
    for row in rows:
        payment = await client.get("customerPayment", str(row["id"]))
        _add(out, str((payment.get("paymentOption") or {}).get("id")), payment.get("payment"))
    customer = str((invoice.get("entity") or {}).get("id"))
    for row in await client.suiteql(_CREDITS, params=[customer]):
        memo = await client.get("creditMemo", str(row["id"]), expand=True)
        for line in _items(memo, "apply"):
            if str((line.get("doc") or {}).get("id")) == str(invoice["id"]) and line.get("apply"):
                _add(out, STORE_CREDIT, line.get("amount"))


def tender_check(base_url: str, generated: list[dict[str, Any]]) -> dict[str, Any]:
    """Each posted sale's tenders read back per payment method and compared with the POS's:
    ``checked``, ``match``, ``situations`` (sales per tender situation) and the drift."""
    tenders = Mappings.load().tenders
    sales = cast(list[SaleRec], generated)

    async def read() -> list[dict[str, Decimal] | None]:
        async with NetSuiteClient(base_url, NetSuiteCredentials.dev()) as client:
            return [await booked_by_method(client, sale) for sale in sales]
    booked = asyncio.run(read())
    drift, match = ZERO, 0
    situations: Counter[str] = Counter()
    for sale, got in zip(sales, booked, strict=True):
        want = expected_by_method(sale, tenders)
        got = got or {}
        match += got == want
        drift += sum((abs(want.get(k, ZERO) - got.get(k, ZERO)) for k in {*want, *got}), ZERO)
        situations.update(situations_of(sale))
    return {"checked": len(sales), "match": match, "situations": dict(sorted(situations.items())),
            "drift_amount": str(drift), "drift": drift}


def situations_of(sale: SaleRec) -> list[str]:
    """The tender situations a sale shows (for the demo's count of each)."""
    kinds = [t["tender_type"] for t in sale["tenders"]]
    out = []
    if len(kinds) >= 3:
        out.append("split_3_ways")
    if GIFT_CARD in kinds and len(kinds) > 1:
        out.append("gift_card_and_other")
    if STORE_CREDIT in kinds:
        out.append("store_credit")
    if any(line.get("gift_card_code") for line in sale["lines"]):
        out.append("gift_card_sold")
    if any(t.get("change_given") for t in sale["tenders"]):
        out.append("cash_with_change")
    return out
