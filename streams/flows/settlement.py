"""Posting a register close: the bank deposit of its receipts, then the over/short journal,
each once by externalId. Not wired to Kafka yet: the settlement window aggregator will
call it (its bodies are ``ledger/settlement.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.settlement import (
    SettlementAccounts,
    build_deposit,
    build_over_short_journal,
    register_ref,
)
from tillbridge.streams.ledger.types import Posting, Skipped, Written
from tillbridge.streams.stages.records import SettlementRec


async def post_settlement(client: ReliableClient, s: SettlementRec, receipts: Sequence[str],
                          accounts: SettlementAccounts, subsidiary: str,
                          location: str | None = None,
                          fees: Mapping[str, Decimal] | None = None) -> Posting | Skipped:
    """Deposit, then over/short journal, each once. ``receipts`` are the caller's: the
    register's cash sales/payments it posted for this business day."""
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
