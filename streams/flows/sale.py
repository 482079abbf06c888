"""Sink stage: turn an enriched sale into NetSuite records, idempotently by externalId.

``build_cash_sale`` and ``promotion_audit_records`` are pure (tested without HTTP).
``SalePoster`` does the I/O: a customer upsert when the shopper is new (or a PATCH of the
fields a matched customer lacks: post-purchase enrichment), then the cashSale, created by
externalId. A replayed or duplicated event never makes a second record; the worker's dedupe
table in front of it saves the request in the common case.

Tenders: each tender line maps to its own payment method (enrich checks every one, validate
checks they add up to the total). The cashSale has a single ``paymentOption``, so the
largest tender (the first on a tie) is the primary and names it; the whole split is
recorded in the memo ("tenders: GIFT_CARD 10.00, VISA 31.26"). A split-tender sale as
separate payment records is the order-to-cash record set's job (invoice + payments).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.ids import sale_id
from tillbridge.streams.stages.enrich import CustomerPlan, Enrichment
from tillbridge.streams.stages.records import Rejection, SaleRec

STAGE = "sink"
log = logging.getLogger(__name__)

#: Custom line field carrying the POS promotion ids (the simulator accepts any custcol_*;
#: on a real account it is a Transaction Line Field of type Free-Form Text).
PROMO_FIELD = "custcol_pos_promotion_ids"


def sale_external_id(sale: SaleRec) -> str:
    """One namespace for all transaction types: the record kind is part of the id."""
    return sale_id(sale["store_id"], sale["pos_transaction_id"])


def _money(value: Decimal) -> Decimal:
    # Stays Decimal: the NetSuite client writes Decimals as exact JSON number literals.
    return value


def _discount_line(item_id: str, disc: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"item": {"id": item_id}, "rate": -_money(disc["amount"]),
                            "amount": -_money(disc["amount"]),
                            "description": f"{disc['code']} {disc.get('promotion_id') or ''}"}
    if disc.get("promotion_id"):
        line[PROMO_FIELD] = disc["promotion_id"]
    return line


def build_cash_sale(sale: SaleRec, enr: Enrichment, customer_id: str,
                    discount_item: str | None = None) -> dict[str, Any]:
    """The cashSale body for one POS sale. Line discounts become discount-item lines right
    after the line they discount; promotion ids ride on both as ``custcol_pos_promotion_ids``.
    A discount books to its code's own discount item when enrich resolved one (mapped or the
    NetSuite promotion's), else to ``discount_item``."""
    lines: list[dict[str, Any]] = []
    for line, item_id in zip(sale["lines"], enr.items, strict=True):
        body_line: dict[str, Any] = {
            "item": {"id": item_id},
            "quantity": _money(line["quantity"]),
            "rate": _money(line["unit_price"]),
            "amount": _money((line["quantity"] * line["unit_price"]).quantize(Decimal("0.01"))),
            "description": line.get("description") or line["sku"],
            "location": {"id": enr.location},
        }
        promos = list(dict.fromkeys(line.get("promotion_ids") or []))
        if promos:
            body_line[PROMO_FIELD] = ",".join(promos)
        lines.append(body_line)
        for disc in line["discounts"]:
            item = enr.discount_items.get(disc["code"]) or discount_item
            if item:
                lines.append(_discount_line(item, disc))
    for disc in sale["order_discounts"]:
        item = enr.discount_items.get(disc["code"]) or discount_item
        if item:
            lines.append(_discount_line(item, disc))
    # The largest tender names the payment option; split tenders are itemised in the memo
    # (a split-tender sale becomes invoice + payments in the order-to-cash record set).
    primary = primary_tender(sale)
    tender_memo = ", ".join(f"{t['tender_type']} {t['amount']}" for t in sale["tenders"])
    body: dict[str, Any] = {
        "externalId": sale_external_id(sale),
        "entity": {"id": customer_id},
        "subsidiary": {"id": enr.subsidiary},
        "location": {"id": enr.location},
        "tranDate": sale["business_date"],
        "otherRefNum": sale["receipt"]["receipt_number"],
        "memo": (f"POS {sale['store_id']}/{sale['register_id']} txn "
                 f"{sale['pos_transaction_id']}; tenders: {tender_memo}")[:999],
        "paymentOption": {"id": enr.payment_methods[primary]},
        "item": {"items": lines},
    }
    if enr.sales_rep:
        body["salesRep"] = {"id": enr.sales_rep}
    return body


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
            if disc.get("promotion_id"):
                seen.add(disc["promotion_id"])
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


@dataclass(frozen=True, slots=True)
class Posted:
    record_type: str
    netsuite_id: str
    external_id: str
    customer_id: str
    customer_rule: str
    created: bool = True  # False: NetSuite already held it (a duplicate or a replay)
    customer_enriched: bool = False  # a matched customer got the fields the event added


def rejection_for(err: NetSuiteError, record_type: str, external_id: str) -> Rejection:
    """The dead-letter verdict for a NetSuite error on one record (``o:errorDetails`` go
    separately, verbatim, into the DLQ headers)."""
    reason = {"auth": "netsuite_auth", "retryable": "netsuite_unavailable"}.get(
        err.kind, "netsuite_rejected")
    return Rejection(STAGE, reason, f"netsuite.{record_type}",
                     f"NetSuite {err.status} {err.code}: {err.detail}",
                     {"record_type": record_type, "external_id": external_id,
                      "status": str(err.status), "error_code": err.code or "",
                      "error_path": err.error_path or ""})


class SalePoster:
    """Posts enriched sales through a ``ReliableClient``.

    The client owns the policy (concurrency slot per request, jittered backoff on 429 that
    never fails the event, retries of 5xx/timeouts with a look-up by externalId before any
    retry of a create, one re-sign after a 401, the circuit breaker). What reaches this
    class is a verdict: a ``NetSuiteError`` the event earned (dead-lettered), or
    ``NetSuiteUnavailable``, which is deliberately *not* caught here: NetSuite is down or
    saturated, the event is fine, and the sink must wait (pause), not dead-letter.
    """

    def __init__(self, client: ReliableClient, *, discount_item: str | None = None,
                 write_mode: str = "create",
                 sale_records: Mapping[str, Any] | None = None) -> None:
        if write_mode not in ("create", "upsert"):
            raise ValueError(f"write_mode must be create or upsert, not {write_mode!r}")
        self.client = client
        self.write_mode = write_mode
        self.discount_item = discount_item
        #: the mappings' ``sale_record_types`` (cashSale or salesOrder per store/channel)
        self.sale_records: Mapping[str, Any] = sale_records or {}

    async def _write(self, record_type: str, external_id: str,
                     body: dict[str, Any]) -> tuple[str, bool]:
        """One idempotent write: (internal id, created by this call).

        Transactions are immutable once posted, so by default they are created (one request;
        the id comes back in Location); "already exists", or a look-up after an ambiguous
        timeout, tells an earlier attempt landed. ``upsert`` mode PUTs on ``eid:`` instead
        (two requests: NetSuite returns no Location on upsert, so the id needs a GET).
        Customers are always upserted so a later event can enrich them."""
        if record_type == "customer" or self.write_mode == "upsert":
            # replace=item: a replayed upsert must not append the lines a second time.
            return await self.client.upsert(
                record_type, external_id, body,
                replace="item" if record_type != "customer" else None), True
        return await self.client.create_or_find(record_type, external_id, body)

    async def _enrich_customer(self, plan: CustomerPlan) -> bool:
        """PATCH the fields a matched customer lacks. Best effort: the sale must not fail
        for a nicety; a refused PATCH is logged and the next sale tries again."""
        if plan.id is None or not plan.updates:
            return False
        try:
            await self.client.patch("customer", plan.id, dict(plan.updates))
        except NetSuiteError as err:
            log.warning("customer %s enrichment failed: %s", plan.id, err)
            return False
        return True

    async def customer_for(self, enr: Enrichment,
                           customer_id: str | None = None) -> tuple[str, bool, bool]:
        """(customer id, written by this call, enriched by this call): the matched or
        resumed customer (PATCHed with what the event adds), else a new one upserted by
        its externalId. Raises ``NetSuiteError`` / ``NetSuiteUnavailable``."""
        plan = enr.customer
        customer_id = customer_id or plan.id
        if customer_id is not None:
            return customer_id, False, await self._enrich_customer(plan)
        new_id, _ = await self._write("customer", plan.external_id or "",
                                      build_customer(plan, enr.subsidiary))
        return new_id, True, False

    def record_type(self, sale: SaleRec) -> str:
        return sale_record_type(sale, self.sale_records)

    def body(self, sale: SaleRec, enr: Enrichment, customer_id: str) -> dict[str, Any]:
        """The sale's record body: a cashSale, or a salesOrder where configured."""
        if self.record_type(sale) == "salesOrder":
            from tillbridge.streams.ledger.order_records import build_sales_order_from_sale

            return build_sales_order_from_sale(sale, enr, customer_id, self.discount_item)
        return build_cash_sale(sale, enr, customer_id, self.discount_item)

    async def post(self, sale: SaleRec, enr: Enrichment, *,
                   customer_id: str | None = None) -> Posted | tuple[Rejection, object]:
        """Post one sale. Returns Posted, or (Rejection, NetSuite error details); raises
        ``NetSuiteUnavailable`` when the caller should wait and try again.

        ``customer_id`` completes a partial sync: the customer was written by an earlier
        attempt, so only the sale record is posted. When the sale record fails after this
        attempt wrote the customer, the rejection's inputs carry ``customer_id`` (and
        ``customer_written``) so the caller can record the partial state.
        """
        plan = enr.customer
        wrote_customer = False
        record_type, external_id = "customer", plan.external_id or ""
        try:
            customer_id, wrote_customer, enriched = await self.customer_for(enr, customer_id)
            record_type, external_id = self.record_type(sale), sale_external_id(sale)
            ns_id, created = await self._write(record_type, external_id,
                                               self.body(sale, enr, customer_id))
        except NetSuiteError as err:
            return partial_rejection(rejection_for(err, record_type, external_id),
                                     customer_id if wrote_customer else None), err.details
        return Posted(record_type, ns_id, external_id, customer_id, plan.rule, created, enriched)


def partial_rejection(rejection: Rejection, written_customer: str | None) -> Rejection:
    """A sale record refused after this attempt wrote its customer: say so in the inputs,
    so the dedupe table can record the partial sync (completed on the next attempt)."""
    if not written_customer:
        return rejection
    return Rejection(rejection.stage, rejection.reason, rejection.rule, rejection.message,
                     {**rejection.inputs, "customer_id": written_customer,
                      "customer_written": "true"})


def sale_record_type(sale: SaleRec, config: Mapping[str, Any]) -> str:
    """cashSale or salesOrder for one sale, from the mappings' ``sale_record_types``:
    ``{"default": ..., "channels": {receipt channel: type}, "stores": {store: type}}``;
    a store's setting wins over its channel's, which wins over the default (cashSale)."""
    by_store = config.get("stores") or {}
    by_channel = config.get("channels") or {}
    channel = (sale.get("receipt") or {}).get("channel")
    return str(by_store.get(sale["store_id"]) or by_channel.get(channel)
               or config.get("default") or "cashSale")
