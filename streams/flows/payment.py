"""The payment flow: POS payment events -> NetSuite receipts, and the audit record of every
attempt.

What an APPROVED payment becomes depends on how its POS transaction was posted (all under
the sale's externalId ``ids.sale_id``):

- cashSale: nothing; the cash sale is the receipt (``Skipped("covered by cashSale <id>")``).
  Same for the invoice of a split-tender sale: each tender already has its customerPayment.
  Same for an uplift paid on an exchange, covered by the exchange cashSale (``exch``).
- salesOrder: a customerDeposit (``customer`` from the order, ``salesOrder`` link).
- invoice: a customerPayment applied to the invoice (``apply`` sublist).
- not posted yet: ``Missing`` on the sale's externalId, so the event waits for it.

A REFUNDED payment with ``original_payment_id`` becomes a customerRefund, transformed from
the customerDeposit / customerPayment it refunds. Its externalId is kind ``pay`` with the
refund event's own ``payment_id``: every payment event owns at most one record, under its
own id, and it can never collide with a return's ``rfd``. A refund of a payment that a
cashSale (or a POS return) covers is skipped: the POS return event posts the cash refund.

DECLINED, FAILED, VOIDED and PENDING attempts move no money NetSuite knows of: they are
skipped, and ``payment_audit_record`` turns any attempt into a JSON-ready audit row (status,
failure and gateway codes, trace steps) so failed attempts stay investigable.

``customer`` (never ``entity``) names the customer on all three records (reference §9.10).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.batch import BatchWriter
from tillbridge.connectors.netsuite.errors import NetSuiteError, Rejected
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.flows.base import Flow, Lookups, SinkContext
from tillbridge.streams.flows.sink import refused, rejection_for
from tillbridge.streams.ledger.lookup import (
    ensure,
    find_any,
    find_record,
    find_summary,
    summary_dependency,
)
from tillbridge.streams.ledger.payment import (
    REFUND_SOURCES,
    SALE_TYPES,
    build_customer_deposit,
    build_customer_payment,
    build_payment_refund,
    payment_audit_record,
)
from tillbridge.streams.ledger.tenders import TENDERS_FIELD
from tillbridge.streams.ledger.types import Missing, Outcome, Posting, Refused, Skipped, Written
from tillbridge.streams.stages.enrich_payment import (
    POSTING_STATUSES,
    PaymentRefs,
    resolve_payment,
)
from tillbridge.streams.stages.messages import Outbound, RawHeaders
from tillbridge.streams.stages.records import PaymentRec, Rejection


class PaymentFlow(Flow):
    kind = "payment"
    topic = topics.PAYMENT.name

    def resolve(self, event: PaymentRec, lookups: Lookups) -> PaymentRefs | Rejection:
        return resolve_payment(event, lookups.mappings, lookups.refdata)

    def route_key(self, event: PaymentRec) -> bytes:
        # Under its sale's POS transaction id: the sale's own routed partition.
        return str(event["pos_transaction_id"]).encode()

    async def post(self, ctx: SinkContext, event: PaymentRec, refs: PaymentRefs) -> Outcome:
        return await post_payment(ctx.client, event, refs)

    async def post_batch(self, ctx: SinkContext, writer: BatchWriter,
                         items: Sequence[tuple[PaymentRec, Any, RawHeaders]]) -> list[Outcome]:
        return await post_payments_batch(self, ctx, writer, items)

    def ids(self, event: PaymentRec) -> dict[str, Any]:
        return {"payment_id": event["payment_id"],
                "pos_transaction_id": event["pos_transaction_id"],
                "store_id": event["store_id"], "status": event["status"],
                "tender_type": event["tender_type"], "amount": str(event["amount"])}

    def audit(self, event: PaymentRec, skipped: Skipped) -> list[Outbound]:
        """Attempts that make no NetSuite record (declined, failed, voided) keep their trace."""
        if event["status"] == "APPROVED":
            return []  # covered by the sale's own record: nothing to investigate
        doc = payment_audit_record(event, skipped.why)
        return [Outbound(topics.AUDIT_PAYMENTS, str(event["payment_id"]).encode(),
                         json.dumps(doc).encode())]


@dataclass(frozen=True, slots=True)
class _Create:
    """The record an approved payment makes, not written yet."""

    record_type: str
    external_id: str
    body: dict[str, Any]
    links: dict[str, str]
    sale_id: str
    amount: Decimal


async def _post_approved(client: ReliableClient, pay: PaymentRec,
                         refs: PaymentRefs) -> Posting | Missing | Skipped:
    plan = await _approved(client, pay, refs)
    if not isinstance(plan, _Create):
        return plan
    written = await ensure(
        client, plan.record_type, plan.external_id,
        lambda: client.create_or_find(plan.record_type, plan.external_id, plan.body),
        plan.links)
    return Posting((written,))


async def _approved(client: ReliableClient, pay: PaymentRec, refs: PaymentRefs,
                    applied: Decimal = Decimal(0)) -> _Create | Missing | Skipped:
    """What an approved payment becomes (``applied``: what other payments of the same
    batch already take of the invoice's open amount)."""
    found = await find_any(client, refs.sale, SALE_TYPES)
    if found is None:
        exchange = await find_record(client, "cashSale", refs.exchange)
        if exchange is not None:
            return Skipped(f"covered by exchange cashSale {exchange['id']}")
        summary = await find_summary(client, pay["store_id"], pay["register_id"],
                                     pay["business_date"], pay["pos_transaction_id"])
        if summary is not None:  # a receipt of the ``summary`` sync mode: its cashSale
            return Skipped(f"covered by summary cashSale {summary[1]['id']} "
                           f"({summary[1].get('externalId')})")
        return Missing(refs.sale, (*SALE_TYPES, *summary_dependency(
            pay["store_id"], pay["register_id"], pay["business_date"],
            pay["pos_transaction_id"])),
                       f"payment {pay['payment_id']} of {refs.sale}, not in NetSuite yet")
    sale_type, sale = found
    sale_id = str(sale["id"])
    if sale_type == "cashSale":
        return Skipped(f"covered by cashSale {sale_id}")
    if sale_type == "invoice" and sale.get(TENDERS_FIELD):
        # A split-tender sale's invoice: its tenders are paid by their own customerPayments.
        return Skipped(f"covered by the tender payments of invoice {sale_id}")
    customer = str(sale["entity"]["id"])
    if sale_type == "salesOrder":
        return _Create("customerDeposit", refs.payment,
                       build_customer_deposit(pay, refs, sale_id, customer),
                       {"salesOrder": sale_id}, sale_id, pay["amount"])
    open_amount = max(Decimal(0), Decimal(str(sale.get("amountRemaining", 0))) - applied)
    return _Create("customerPayment", refs.payment,
                   build_customer_payment(pay, refs, sale_id, customer, open_amount),
                   {"apply": sale_id}, sale_id, pay["amount"])


async def post_payments_batch(flow: Flow, ctx: SinkContext, writer: BatchWriter,
                              items: Sequence[tuple[PaymentRec, Any, RawHeaders]]
                              ) -> list[Outcome]:
    """A ``batch`` window's payments: the customerPayments and customerDeposits they make
    through async batch jobs (<= 100 a request, by externalId: never twice), the rest
    (covered, skipped, waiting for their sale, refunds by ``!transform``) one by one."""
    outcomes: list[Outcome | None] = [None] * len(items)
    creates: dict[str, list[tuple[int, _Create]]] = {}
    applied: dict[str, Decimal] = {}
    for i, (pay, refs, _) in enumerate(items):
        ctx.at(i)
        try:
            plan = await _approved(ctx.client, pay, refs, applied.get(pay["pos_transaction_id"],
                                                                     Decimal(0))) \
                if pay["status"] == "APPROVED" else await post_payment(ctx.client, pay, refs)
        except NetSuiteError as err:
            outcomes[i] = refused(flow, pay, err)
            continue
        if isinstance(plan, _Create):
            creates.setdefault(plan.record_type, []).append((i, plan))
            key = pay["pos_transaction_id"]
            applied[key] = applied.get(key, Decimal(0)) + plan.amount
        else:
            outcomes[i] = plan
    for record_type, group in creates.items():
        results = await writer.write(record_type, [(c.external_id, c.body) for _, c in group])
        for (i, c), res in zip(group, results, strict=True):
            if res.error is not None or res.netsuite_id is None:
                why = res.error or Rejected(None, "NO_ID", detail="the batch job gave no id")
                outcomes[i] = Refused(rejection_for(why, record_type, c.external_id),
                                      why.details)
            else:
                outcomes[i] = Posting((Written(record_type, res.netsuite_id, c.external_id,
                                               res.created, c.links),))
    return [o for o in outcomes if o is not None]


async def _post_refunded(client: ReliableClient, pay: PaymentRec,
                         refs: PaymentRefs) -> Posting | Missing | Skipped:
    original = refs.original_payment
    assert original is not None
    found = await find_any(client, original, tuple(REFUND_SOURCES))
    if found is None:
        for record_type, ext in (("cashSale", refs.sale), ("cashRefund", refs.refund),
                                 ("creditMemo", refs.refund)):
            covered = await find_record(client, record_type, ext)
            if covered is not None:
                return Skipped(f"refund covered by {record_type} {covered['id']} "
                               "(the POS sale/return posts it)")
        return Missing(original, tuple(REFUND_SOURCES),
                       f"refund {pay['payment_id']} of payment {pay['original_payment_id']}, "
                       "not in NetSuite yet")
    source_type, source = found
    source_id = str(source["id"])
    body = build_payment_refund(pay, refs, source_type, source_id)
    written = await ensure(
        client, "customerRefund", refs.payment,
        lambda: client.transform_or_find(source_type, source_id, "customerRefund",
                                         refs.payment, body),
        {REFUND_SOURCES[source_type]: source_id})
    return Posting((written,))


async def post_payment(client: ReliableClient, pay: PaymentRec,
                       refs: PaymentRefs) -> Posting | Missing | Skipped:
    """Post one resolved payment event; see the module doc for what each status becomes.

    Idempotent: a replay finds its record by externalId (``created=False``). Permanent
    NetSuiteErrors and NetSuiteUnavailable propagate to the sink.
    """
    status = pay["status"]
    if status not in POSTING_STATUSES:
        reason = pay.get("failure_code") or pay.get("failure_reason") or "no reason given"
        return Skipped(f"{status} payment {pay['payment_id']} ({reason}): no NetSuite record; "
                       "kept as a payment audit record")
    if status == "APPROVED":
        return await _post_approved(client, pay, refs)
    return await _post_refunded(client, pay, refs)
