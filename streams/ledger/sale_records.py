"""The NetSuite records one POS sale becomes, built as pure functions (tested without HTTP).

A sale is a ``cashSale`` (or a ``salesOrder`` where the mappings' ``sale_record_types``
say so, built in ``order_records.py``), preceded by a ``customer`` upsert for a new
identified shopper. Line discounts become discount-item lines right after the line they
discount; promotion ids ride on both as ``custcol_pos_promotion_ids``.

Tenders: each tender line maps to its own payment method (enrich checks every one, validate
checks they add up to the total, cash change netted). ``ledger/tenders.py`` decides the
records: one paying tender (plus gift cards) is a cashSale with that tender's
``paymentOption`` and POS data; a split or store credit is an invoice (``build_sale_invoice``)
plus a customerPayment per tender and applied credit memos. The memo also lists the split
("tenders: GIFT_CARD 10.00, VISA 31.26") for a human reading the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.ids import pos_fields, sale_id
from tillbridge.streams.ledger.tax import TaxGroup, TaxLine, TaxSetup, apply_tax, net_amounts
from tillbridge.streams.ledger.tenders import TenderPlan, plan_tenders, sale_tender_fields
from tillbridge.streams.stages.enrich import CustomerPlan, Enrichment
from tillbridge.streams.stages.records import DiscountRec, SaleRec

#: Custom line field carrying the POS promotion ids (the simulator accepts any custcol_*;
#: on a real account it is a Transaction Line Field of type Free-Form Text).
PROMO_FIELD = "custcol_pos_promotion_ids"
#: Custom body field carrying the Kafka coordinates (topic/partition/offset) of the event
#: that wrote the record: a replay of that event after a crash is then told apart from a
#: POS sending the same transaction twice (a different event), and a record is traceable
#: back to its input record. On a real account: a Transaction Body Field, Free-Form Text.
SOURCE_FIELD = "custbody_tillbridge_source"
#: Custom body field carrying the sale's content fingerprint (``stages/resend.py``): when the
#: dedupe table no longer knows a posted sale (rebuilt, a new worker group), a re-send of
#: its transaction id with other content is still told from a plain duplicate.
CONTENT_FP_FIELD = "custbody_tillbridge_content_fp"


def sale_external_id(sale: SaleRec) -> str:
    """One namespace for all transaction types: the record kind is part of the id."""
    return sale_id(sale["store_id"], sale["pos_transaction_id"])


def _money(value: Decimal) -> Decimal:
    # Stays Decimal: the NetSuite client writes Decimals as exact JSON number literals.
    return value


def _discount_line(item_id: str, disc: DiscountRec) -> dict[str, Any]:
    line: dict[str, Any] = {"item": {"id": item_id}, "rate": -_money(disc["amount"]),
                            "amount": -_money(disc["amount"]),
                            "description": f"{disc['code']} {disc.get('promotion_id') or ''}"}
    if disc.get("promotion_id"):
        line[PROMO_FIELD] = disc["promotion_id"]
    return line


def _item_lines(sale: SaleRec, enr: Enrichment,
                discount_item: str | None) -> tuple[list[dict[str, Any]], list[TaxGroup]]:
    """Each POS line and its discount lines, and the tax group they form (``ledger/tax.py``)."""
    lines: list[dict[str, Any]] = []
    groups: list[TaxGroup] = []
    inclusive = bool(sale.get("prices_include_tax"))
    for index, (line, item_id) in enumerate(zip(sale["lines"], enr.items, strict=True)):
        gross = (line["quantity"] * line["unit_price"]).quantize(Decimal("0.01"))
        body_line: dict[str, Any] = {
            "item": {"id": item_id},
            "quantity": _money(line["quantity"]),
            "rate": _money(line["unit_price"]),
            "amount": _money(gross),
            "description": line.get("description") or line["sku"],
            "location": {"id": enr.location},
        }
        if line.get("gift_card_code"):
            body_line.update(gift_card_fields(sale, str(line.get("gift_card_code"))))
        promos = list(dict.fromkeys(line.get("promotion_ids") or []))
        if promos:
            body_line[PROMO_FIELD] = ",".join(promos)
        rate = _at(enr.tax_rates, index)
        rate = line["tax_rate"] if rate is None else rate
        group = TaxGroup(_at(enr.tax_codes, index), rate, line["tax_amount"],
                         reference=f"L{line['line_no']}")
        booked = [d for d in line["discounts"]
                  if enr.discount_items.get(d["code"]) or discount_item]
        nets = net_amounts(gross, [d["amount"] for d in booked], line["tax_amount"], rate,
                           inclusive)
        group.lines.append(TaxLine(len(lines), nets[0]))
        lines.append(body_line)
        for disc, net in zip(booked, nets[1:], strict=True):
            item = enr.discount_items.get(disc["code"]) or discount_item
            group.lines.append(TaxLine(len(lines), net))
            lines.append(_discount_line(str(item), disc))
        groups.append(group)
    return lines, groups


def build_cash_sale(sale: SaleRec, enr: Enrichment, customer_id: str,
                    discount_item: str | None = None, tax: TaxSetup | None = None,
                    certificates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The cashSale body for one POS sale with one paying tender (and any gift cards:
    ``certificates`` maps their codes to NetSuite gift certificate ids). Line discounts
    become discount-item lines right after the line they discount; promotion ids ride on
    both as ``custbody_pos_promotion_ids``. A discount books to its code's own discount item
    when enrich resolved one (mapped or the NetSuite promotion's), else to ``discount_item``.
    Each line carries its tax in the subsidiary's model (``ledger/tax.py``; legacy when
    ``tax`` is None)."""
    return _sale_body(sale, enr, customer_id, discount_item, tax, certificates or {})


def build_sale_invoice(sale: SaleRec, enr: Enrichment, customer_id: str,
                       discount_item: str | None = None, tax: TaxSetup | None = None,
                       certificates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The invoice of a split-tender (or store-credit) sale: the cashSale's lines and tax,
    no payment fields (each tender is its own customerPayment, ``ledger/tenders.py``)."""
    return _sale_body(sale, enr, customer_id, discount_item, tax, certificates or {},
                      plan_tenders(sale))


def build_sale_lines(sale: SaleRec, enr: Enrichment, customer_id: str,
                     discount_item: str | None = None,
                     tax: TaxSetup | None = None) -> dict[str, Any]:
    """The sale's header, lines and tax without any payment (a salesOrder takes none)."""
    return _sale_body(sale, enr, customer_id, discount_item, tax, {}, tenders=False)


def _sale_body(sale: SaleRec, enr: Enrichment, customer_id: str, discount_item: str | None,
               tax: TaxSetup | None, certificates: Mapping[str, str],
               plan: TenderPlan | None = None, tenders: bool = True) -> dict[str, Any]:
    lines, groups = _item_lines(sale, enr, discount_item)
    for disc in sale["order_discounts"]:
        item = enr.discount_items.get(disc["code"]) or discount_item
        if item:
            lines.append(_discount_line(item, disc))
    plan = plan or plan_tenders(sale)
    tender_memo = ", ".join(f"{t['tender_type']} {t['amount']}" for t in sale["tenders"])
    body: dict[str, Any] = {
        "externalId": sale_external_id(sale),
        "entity": {"id": customer_id},
        "subsidiary": {"id": enr.subsidiary},
        "location": {"id": enr.location},
        "tranDate": enr.business_date or sale["business_date"],
        "otherRefNum": sale["receipt"]["receipt_number"],
        "memo": (f"POS {sale['store_id']}/{sale['register_id']} txn "
                 f"{sale['pos_transaction_id']}; tenders: {tender_memo}")[:999],
        "item": {"items": lines},
        # The till's coordinates as fields: reconciliation selects a day's records by them.
        **pos_fields(sale["store_id"], sale["register_id"], sale["pos_transaction_id"]),
        **(sale_tender_fields(plan, enr, certificates) if tenders else {}),
    }
    apply_tax(body, groups, tax or TaxSetup())
    if enr.sales_rep:
        body["salesRep"] = {"id": enr.sales_rep}
    return body


def gift_card_fields(sale: SaleRec, code: str) -> dict[str, str]:
    """A gift card sold on a line (its item a giftCertificateItem): NetSuite creates the gift
    certificate, a liability, from these line fields (reference §5.3)."""
    cust = sale["customer"]
    name = " ".join(p for p in (cust.get("first_name"), cust.get("last_name")) if p)
    fields = {"giftCertNumber": code, "giftCertRecipientName": name or "Card holder",
              "giftCertFrom": f"POS {sale['store_id']}"}
    if cust.get("email"):
        fields["giftCertRecipientEmail"] = str(cust.get("email"))
    return fields


def _at(values: list[Any], index: int) -> Any:
    """The enrichment's per-line value, None when the list is short (tax codes unreadable)."""
    return values[index] if index < len(values) else None


def primary_tender(sale: SaleRec) -> int:
    """Index of the tender that names the cashSale's paymentOption: the largest, first on ties."""
    return max(range(len(sale["tenders"])), key=lambda i: sale["tenders"][i]["amount"])


def promotion_audit_records(sale: SaleRec, external_id: str,
                            netsuite_id: str | None = None) -> list[dict[str, Any]]:
    """One JSON-ready record per discount and per promotion id on a posted sale.

    Every discount is listed (``promotion_id`` None when the till gave none, e.g. a loyalty
    reward) and so is a line promotion id that moved no discount amount (amount "0.00"), so
    any promotion's effect can be traced from NetSuite back to the receipt line and back.
    Amounts are strings: exact decimals.
    """
    base = {"pos_transaction_id": sale["pos_transaction_id"], "store_id": sale["store_id"],
            "register_id": sale["register_id"], "business_date": sale["business_date"],
            "netsuite_external_id": external_id, "netsuite_id": netsuite_id}
    out: list[dict[str, Any]] = []
    for line in sale["lines"]:
        seen: set[str] = set()
        for disc in line["discounts"]:
            out.append({**base, "line_no": line["line_no"], "sku": line["sku"],
                        "promotion_id": disc.get("promotion_id"), "discount_code": disc["code"],
                        "amount": str(disc["amount"])})
            promo_id = disc.get("promotion_id")
            if promo_id:
                seen.add(promo_id)
        for promo in dict.fromkeys(line.get("promotion_ids") or []):
            if promo not in seen:
                out.append({**base, "line_no": line["line_no"], "sku": line["sku"],
                            "promotion_id": promo, "discount_code": None, "amount": "0.00"})
    for disc in sale["order_discounts"]:
        out.append({**base, "line_no": None, "sku": None, "promotion_id": disc.get("promotion_id"),
                    "discount_code": disc["code"], "amount": str(disc["amount"])})
    return out


def build_customer(plan: CustomerPlan, subsidiary: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "externalId": plan.external_id,
        "isPerson": True,
        "firstName": plan.first_name or "POS",
        "lastName": plan.last_name or "Customer",
        "subsidiary": {"id": subsidiary},
    }
    if plan.email:
        body["email"] = plan.email
    if plan.phone:
        body["phone"] = plan.phone
    if plan.loyalty_id:
        body["custentity_loyalty_id"] = plan.loyalty_id
    return body


def sale_record_type(sale: SaleRec, config: Mapping[str, Any]) -> str:
    """cashSale or salesOrder for one sale, from the mappings' ``sale_record_types``:
    ``{"default": ..., "channels": {receipt channel: type}, "stores": {store: type}}``;
    a store's setting wins over its channel's, which wins over the default (cashSale)."""
    by_store = config.get("stores") or {}
    by_channel = config.get("channels") or {}
    channel = (sale.get("receipt") or {}).get("channel")
    return str(by_store.get(sale["store_id"]) or by_channel.get(channel)
               or config.get("default") or "cashSale")
