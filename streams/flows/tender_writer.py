"""The NetSuite I/O of a sale's tenders beyond the sale record (bodies: ``ledger/tenders``).

Before the sale record: the gift certificates its gift cards redeem (SuiteQL by code) and
the customer's open credit (credit memos with an amount unpaid), so a tender whose
liability is not in NetSuite is refused before anything is written. After an invoice: one
customerPayment per paying tender (write-once by externalId) and the store credit applied
from the open credit memos, up to what the invoice still owes (so a replay applies nothing
twice).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.lookup import ensure
from tillbridge.streams.ledger.tenders import (
    TenderPlan,
    allocate_credit,
    build_tender_payment,
    credit_application,
    credit_refusal,
)
from tillbridge.streams.ledger.types import Written
from tillbridge.streams.stages.enrich import Enrichment
from tillbridge.streams.stages.records import Rejection, SaleRec

_CERT_QUERY = "SELECT id, giftcertcode, amountremaining FROM giftcertificate WHERE giftcertcode = ?"
_CREDIT_QUERY = ("SELECT id, foreignamountunpaid FROM transaction WHERE recordtype = 'creditmemo' "
                 "AND entity = ? ORDER BY id")


async def gift_certificates(client: ReliableClient,
                            plan: TenderPlan) -> dict[str, tuple[str, Decimal]]:
    """Gift card code -> (gift certificate id, amount remaining), for the codes NetSuite has."""
    out: dict[str, tuple[str, Decimal]] = {}
    for code in plan.gift_codes:
        if not code:
            continue
        rows = await client.suiteql(_CERT_QUERY, params=[code])
        if rows:
            out[code] = (str(rows[0]["id"]), Decimal(str(rows[0].get("amountremaining") or 0)))
    return out


async def open_credits(client: ReliableClient, customer_id: str) -> list[tuple[str, Decimal]]:
    """The customer's credit memos with credit left, oldest first: [(id, open amount)]."""
    rows = await client.suiteql(_CREDIT_QUERY, params=[customer_id])
    out = []
    for row in rows:
        # abs: NetSuite reports a credit's unpaid amount with the credit's sign
        left = abs(Decimal(str(row.get("foreignamountunpaid") or 0)))
        if left > 0:
            out.append((str(row["id"]), left))
    return out


async def post_tender_records(client: ReliableClient, sale: SaleRec, enr: Enrichment,
                              customer_id: str, invoice: dict[str, Any],
                              plan: TenderPlan) -> tuple[Written, ...] | Rejection:
    """Pay the sale's invoice: a customerPayment per paying tender, then the store credit
    (a Rejection when the open credit went short since the check before the invoice)."""
    invoice_id = str(invoice["id"])
    written: list[Written] = []
    for index, tender in plan.paid:
        body = build_tender_payment(sale, index, tender, enr, customer_id, invoice_id,
                                    str(invoice["tranDate"]))
        written.append(await _pay(client, body, invoice_id))
    if plan.credit:
        owed = Decimal(str((await client.get("invoice", invoice_id)).get("amountRemaining", 0)))
        to_apply = min(owed, plan.credit_total)
        credits = await open_credits(client, customer_id) if to_apply > 0 else []
        refusal = credit_refusal(plan, credits, customer_id, to_apply)
        if refusal is not None:
            return refusal
        if to_apply > 0:
            for memo_id, amount in allocate_credit(to_apply, credits):
                await client.patch("creditMemo", memo_id, credit_application(invoice_id, amount))
                written.append(Written("creditMemo", memo_id, "", False, {"apply": invoice_id},
                                       updated=True))
    return tuple(written)


async def _pay(client: ReliableClient, body: dict[str, Any], invoice_id: str) -> Written:
    """One tender's customerPayment, written once (looked up by externalId first)."""
    ext = str(body["externalId"])
    return await ensure(client, "customerPayment", ext,
                        lambda: client.create_or_find("customerPayment", ext, body),
                        {"apply": invoice_id})
