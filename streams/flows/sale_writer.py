"""The sale's NetSuite writes: a customer when the shopper is new (or a PATCH of the fields a
matched customer lacks: post-purchase enrichment), then the sale record, created by
externalId. Bodies come from ``ledger/sale_records.py``; this module only does the I/O.

A replayed or duplicated event never makes a second record; the worker's dedupe table in
front of it (``flows/sale.py``) saves the request in the common case.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tillbridge.connectors.netsuite.errors import NetSuiteError
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.flows.sink import rejection_for
from tillbridge.streams.flows.tender_writer import (
    gift_certificates,
    open_credits,
    post_tender_records,
)
from tillbridge.streams.ledger.lookup import find_record
from tillbridge.streams.ledger.order_records import build_sales_order_from_sale
from tillbridge.streams.ledger.sale_records import (
    CONTENT_FP_FIELD,
    SOURCE_FIELD,
    build_cash_sale,
    build_customer,
    build_sale_invoice,
    sale_external_id,
    sale_record_type,
)
from tillbridge.streams.ledger.tax import tax_setup
from tillbridge.streams.ledger.tenders import TenderPlan, funds_refusal, plan_tenders
from tillbridge.streams.ledger.types import Written
from tillbridge.streams.stages.enrich import CustomerPlan, Enrichment
from tillbridge.streams.stages.records import Rejection, SaleRec
from tillbridge.streams.stages.resend import content_fingerprint, content_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Posted:
    record_type: str
    netsuite_id: str
    external_id: str
    customer_id: str
    customer_rule: str
    created: bool = True  # False: NetSuite already held it (a duplicate or a replay)
    customer_enriched: bool = False  # a matched customer got the fields the event added
    #: the tenders' own records: a customerPayment each, credit memos applied (invoice)
    tenders: tuple[Written, ...] = ()


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
                 sale_records: Mapping[str, Any] | None = None,
                 tax: Mapping[str, Any] | None = None) -> None:
        if write_mode not in ("create", "upsert"):
            raise ValueError(f"write_mode must be create or upsert, not {write_mode!r}")
        self.client = client
        self.write_mode = write_mode
        self.discount_item = discount_item
        #: the mappings' ``sale_record_types`` (cashSale or salesOrder per store/channel)
        self.sale_records: Mapping[str, Any] = sale_records or {}
        #: the mappings' ``tax`` section (legacy or SuiteTax per subsidiary)
        self.tax: Mapping[str, Any] = tax or {}

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
        """salesOrder where configured; else what the tenders make it (``ledger/tenders``):
        a cashSale for one paying tender, an invoice for a split or store credit."""
        configured = sale_record_type(sale, self.sale_records)
        return configured if configured == "salesOrder" else plan_tenders(sale).record_type

    def simple(self, sale: SaleRec) -> bool:
        """One record and no look-ups (a batch job can write it): no gift card, no split."""
        if self.record_type(sale) == "salesOrder":
            return True
        plan = plan_tenders(sale)
        return plan.record_type == "cashSale" and not plan.gift

    def body(self, sale: SaleRec, enr: Enrichment, customer_id: str,
             source: str | None = None,
             certificates: dict[str, str] | None = None) -> dict[str, Any]:
        """The sale's record body: a cashSale, an invoice (split tenders), or a salesOrder
        where configured; ``source`` (the event's Kafka coordinates) is stamped on it."""
        setup = tax_setup(self.tax, enr.subsidiary)
        record_type = self.record_type(sale)
        if record_type == "salesOrder":
            body = build_sales_order_from_sale(sale, enr, customer_id, self.discount_item, setup)
        elif record_type == "invoice":
            body = build_sale_invoice(sale, enr, customer_id, self.discount_item, setup,
                                      certificates)
        else:
            body = build_cash_sale(sale, enr, customer_id, self.discount_item, setup,
                                   certificates)
        if source:
            body[SOURCE_FIELD] = source
        body[CONTENT_FP_FIELD] = content_fingerprint(content_summary(sale))
        return body

    async def held(self, record_type: str, netsuite_id: str) -> dict[str, Any]:
        """A record NetSuite already held (one GET; only on the rare path where a write
        found its externalId taken): who wrote it and what it is worth."""
        return await self.client.get(record_type, netsuite_id)

    async def post(self, sale: SaleRec, enr: Enrichment, *, customer_id: str | None = None,
                   source: str | None = None) -> Posted | tuple[Rejection, object]:
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
            tenders = plan_tenders(sale)
            funds = await self._funds(record_type, external_id, tenders, customer_id)
            if isinstance(funds, Rejection):
                return partial_rejection(funds, customer_id if wrote_customer else None), None
            ns_id, created = await self._write(record_type, external_id,
                                               self.body(sale, enr, customer_id, source, funds))
            extra: tuple[Written, ...] | Rejection = ()
            if record_type == "invoice":
                invoice = {"id": ns_id, "tranDate": enr.business_date or sale["business_date"]}
                extra = await post_tender_records(self.client, sale, enr, customer_id, invoice,
                                                  tenders)
            if isinstance(extra, Rejection):
                return extra, None
        except NetSuiteError as err:
            return partial_rejection(rejection_for(err, record_type, external_id),
                                     customer_id if wrote_customer else None), err.details
        return Posted(record_type, ns_id, external_id, customer_id, plan.rule, created, enriched,
                      extra)

    async def _funds(self, record_type: str, external_id: str, plan: TenderPlan,
                     customer_id: str) -> dict[str, str] | Rejection:
        """The gift certificate id of each gift card code, after checking that the gift
        cards and the store credit are there to draw on (skipped when the sale record is
        already in NetSuite: a replay, whose own redemptions spent the balance)."""
        if record_type == "salesOrder" or not (plan.gift or plan.credit):
            return {}
        certs = await gift_certificates(self.client, plan) if plan.gift else {}
        if await find_record(self.client, record_type, external_id) is None:
            credits = await open_credits(self.client, customer_id) if plan.credit else []
            refusal = funds_refusal(plan, certs, credits, customer_id)
            if refusal is not None:
                return refusal
        return {code: cert_id for code, (cert_id, _) in certs.items()}


def partial_rejection(rejection: Rejection, written_customer: str | None) -> Rejection:
    """A sale record refused after this attempt wrote its customer: say so in the inputs,
    so the dedupe table can record the partial sync (completed on the next attempt)."""
    if not written_customer:
        return rejection
    return Rejection(rejection.stage, rejection.reason, rejection.rule, rejection.message,
                     {**rejection.inputs, "customer_id": written_customer,
                      "customer_written": "true"})


