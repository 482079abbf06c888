"""The settlement flow: a register close (Z report) becomes the bank ``deposit`` of the
register's receipts and the over/short ``journalEntry`` (or one summary journal:
``settlement.mode`` in the mappings file), each once by externalId.

Triggered by the close itself, per store, register and business day: the flow reads the
register's receipts of the day back from NetSuite (one SuiteQL query, paged), compares the
POS's totals by tender with what was posted (the results record carries the comparison),
and posts. When the report's journal lists a receipt NetSuite does not hold yet (it is
parked, dead-lettered or still in flight), the day is incomplete: the close is parked,
waiting for that receipt's externalId, and its results record and parking entry name every
receipt still missing; the parking timer re-checks it and releases it once the receipt is
posted (or dead-letters it as ``orphan_dependency`` after ``TILLBRIDGE_PARK_TIMEOUT_S``).
An X report is interim and posts nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.flows.base import Flow, Lookups, SinkContext
from tillbridge.streams.ledger.ids import PREFIX
from tillbridge.streams.ledger.settlement import (
    RECEIPT_KINDS,
    PostedReceipt,
    SettlementAccounts,
    build_deposit,
    build_over_short_journal,
    build_summary_journal,
    comparison,
    deposit_external_id,
    receipt_external_id,
    register_ref,
    waiting_for,
)
from tillbridge.streams.ledger.types import Missing, Outcome, Posting, Skipped, Written
from tillbridge.streams.reconcile import pos_side
from tillbridge.streams.reconcile.compare import DayInputs, reconcile
from tillbridge.streams.reconcile.documents import documents
from tillbridge.streams.reconcile.netsuite_side import to_txn
from tillbridge.streams.stages.enrich_settlement import SettlementRefs, resolve_settlement
from tillbridge.streams.stages.messages import Outbound
from tillbridge.streams.stages.records import Rejection, SettlementRec

log = logging.getLogger(__name__)

#: Receipts of one register and day: the custbody fields every receipt builder sets.
_DAY_QUERY = ("SELECT id, externalid, recordtype, foreigntotal, taxtotal, "
              "custbody_pos_store_id, custbody_pos_register_id, custbody_pos_transaction_id "
              "FROM transaction WHERE trandate = TO_DATE('{day}', 'YYYY-MM-DD') "
              "AND custbody_pos_store_id = ? AND custbody_pos_register_id = ? ORDER BY id")


class SettlementFlow(Flow):
    kind = "settlement"
    topic = topics.SETTLEMENT.name

    def __init__(self, drift_threshold: Decimal = Decimal(0)) -> None:
        self.drift_threshold = drift_threshold

    def resolve(self, event: SettlementRec, lookups: Lookups) -> SettlementRefs | Rejection:
        return resolve_settlement(event, lookups.mappings)

    def route_key(self, event: SettlementRec) -> bytes:
        return f"{event['store_id']}/{event['register_id']}/{event['business_date']}".encode()

    async def post(self, ctx: SinkContext, event: SettlementRec,
                   refs: SettlementRefs) -> Outcome:
        return await post_register_day(ctx.client, event, refs, self.drift_threshold)

    def ids(self, event: SettlementRec) -> dict[str, Any]:
        return {"settlement_id": event["settlement_id"], "report_type": event["report_type"],
                "store_id": event["store_id"], "register_id": event["register_id"],
                "business_date": event["business_date"],
                "external_id": deposit_external_id(event)}


async def register_rows(client: ReliableClient, s: SettlementRec) -> list[dict[str, Any]]:
    """SuiteQL rows of the register's transactions of the day."""
    query = _DAY_QUERY.format(day=date.fromisoformat(s["business_date"]).isoformat())
    return await client.suiteql(query, params=[s["store_id"], s["register_id"]])


async def register_receipts(client: ReliableClient, s: SettlementRec) -> list[PostedReceipt]:
    """The register's receipts of the day in NetSuite (sales and refunds)."""
    return receipts_of(await register_rows(client, s))


def receipts_of(rows: Sequence[Mapping[str, Any]]) -> list[PostedReceipt]:
    out = []
    for row in rows:
        parts = str(row.get("externalid") or "").split("-", 2)
        kind = RECEIPT_KINDS.get(parts[1]) if len(parts) == 3 else None
        txn = row.get("custbody_pos_transaction_id")
        if kind is None or not txn:
            continue
        out.append(PostedReceipt(str(row["id"]), str(row.get("recordtype") or ""), str(txn),
                                 kind, abs(Decimal(str(row.get("foreigntotal") or 0)))))
    return out


async def post_register_day(client: ReliableClient, s: SettlementRec, refs: SettlementRefs,
                            drift_threshold: Decimal = Decimal(0)
                            ) -> Posting | Missing | Skipped:
    """Compare, then post the day (or wait for the receipts it still lacks); a posted close
    with a journal also publishes the register's reconciliation against it."""
    if s["report_type"] != "Z":
        return Skipped(f"{register_ref(s)}: interim report, nothing to post")
    rows = await register_rows(client, s)
    posted = receipts_of(rows)
    missing = waiting_for(s, posted)
    if missing:
        names = ", ".join(f"{kind} {txn}" for kind, txn in missing)
        log.info("%s waits: %d receipts not in NetSuite yet: %s", register_ref(s),
                 len(missing), names)
        kind, txn = missing[0]
        return Missing(receipt_external_id(s, kind, txn),
                       ("cashSale", "salesOrder") if kind == "sale"
                       else ("cashRefund", "creditMemo"),
                       f"{register_ref(s)}: the day is incomplete, waiting for {names}")
    compared = comparison(s, posted)
    if refs.mode == "journal":
        assert refs.undeposited is not None  # resolve_settlement refuses it otherwise
        recorded = sum((p.amount for p in posted if p.kind == "sale"), Decimal(0)) - \
            sum((p.amount for p in posted if p.kind == "return"), Decimal(0))
        body = build_summary_journal(s, refs.accounts, refs.undeposited, recorded,
                                     refs.subsidiary, refs.location)
        records = []
        if body is not None:
            je_id, created = await client.create_or_find("journalEntry", body["externalId"],
                                                         body)
            records.append(Written("journalEntry", je_id, body["externalId"], created))
        if not records:
            return Skipped(f"{register_ref(s)}: nothing counted, nothing recorded")
        return Posting(tuple(records), result={"settlement": compared, "mode": "journal"},
                       audit=register_reconciliation(s, rows, drift_threshold))
    # Money received: cash sales, and the tender payments of split-tender invoices.
    receipts = [p.netsuite_id for p in posted if p.record_type == "cashsale"] + \
        [str(r["id"]) for r in rows if r.get("recordtype") == "customerpayment"
         and str(r.get("externalid") or "").startswith(f"{PREFIX}-tnd-")]
    outcome = await post_settlement(client, s, receipts, refs.accounts, refs.subsidiary,
                                    refs.location)
    if isinstance(outcome, Posting):
        return Posting(outcome.records, result={"settlement": compared, "mode": "deposit"},
                       audit=register_reconciliation(s, rows, drift_threshold))
    return outcome


def register_reconciliation(s: SettlementRec, rows: Sequence[Mapping[str, Any]],
                            threshold: Decimal) -> tuple[Outbound, ...]:
    """The register's reconciliation against its close's journal, for the reconciliation
    topic (none without a journal). Every journal receipt is in NetSuite by now (the close
    waited for them), so what it finds is extra receipts (a double scan) and amounts that
    differ; ``tillbridge reconcile`` adds tillbridge's state of each from the topics."""
    journal = pos_side.journal(s)
    if not journal:
        return ()
    reg = (s["store_id"], s["register_id"])
    day = DayInputs(s["business_date"], (), [to_txn(r, s["store_id"]) for r in rows], {},
                    {reg: journal}, {reg: pos_side.zreport_tenders(s)})
    docs = documents(reconcile(day), s["business_date"], s["store_id"], threshold,
                     {"settlement_id": s["settlement_id"]}, origin="settlement")
    return tuple(Outbound(topics.RECONCILIATION, key, json.dumps(doc).encode())
                 for key, doc in docs[:-1])


async def post_settlement(client: ReliableClient, s: SettlementRec, receipts: Sequence[str],
                          accounts: SettlementAccounts, subsidiary: str,
                          location: str | None = None,
                          fees: Mapping[str, Decimal] | None = None) -> Posting | Skipped:
    """Deposit, then over/short journal, each once. ``receipts`` are the caller's: the
    register's cash sales/payments posted for this business day."""
    if s["report_type"] != "Z":
        return Skipped(f"{register_ref(s)}: interim report, nothing to post")
    records: list[Written] = []
    deposit = build_deposit(s, receipts, accounts, subsidiary, location, fees)
    if deposit is not None:
        dep_id, created = await client.create_or_find("deposit", deposit["externalId"],
                                                      deposit)
        records.append(Written("deposit", dep_id, deposit["externalId"], created,
                               {"payment": ",".join(dict.fromkeys(receipts))}))
    journal = build_over_short_journal(s, accounts, subsidiary, location)
    if journal is not None:
        je_id, created = await client.create_or_find("journalEntry", journal["externalId"],
                                                     journal)
        records.append(Written("journalEntry", je_id, journal["externalId"], created))
    if not records:
        return Skipped(f"{register_ref(s)}: no receipts to bank and no over/short")
    return Posting(tuple(records))
