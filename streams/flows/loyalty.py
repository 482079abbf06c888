"""Writing the loyalty ledger (``ledger/loyalty.py``): one custom record per movement,
once, plus its audit message; and reading a customer's balance back by SuiteQL."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.loyalty import (
    BALANCE_QUERY,
    EARN,
    RECORD_TYPE,
    Movement,
    audit_record,
    build_record,
    movement,
)
from tillbridge.streams.ledger.types import Outcome, Posting, Written
from tillbridge.streams.stages.messages import Outbound
from tillbridge.streams.stages.records import SaleRec


async def write_movement(client: ReliableClient,
                         m: Movement) -> tuple[Written, Outbound]:
    """The movement's record (found by externalId on a replay) and its audit message.

    The audit message goes out with every outcome that carries the movement, a replay
    included (at least once: consumers dedupe on ``external_id``)."""
    ext = m.external_id
    # Written straight away, not looked up first: one request per movement. Its body
    # depends on no balance, so a replay's POST is refused as "already exists" (or, after
    # an ambiguous failure, looked up) and answered with the existing record.
    new_id, created = await client.create_or_find(RECORD_TYPE, ext, build_record(m))
    written = Written(RECORD_TYPE, new_id, ext, created,
                      {"customer": m.customer_id, "transaction": m.transaction_id})
    audit = Outbound(topics.AUDIT_LOYALTY, m.customer_id.encode(),
                     json.dumps(audit_record(m, written.netsuite_id)).encode(),
                     [("tillbridge.record", b"loyalty")])
    return written, audit


async def balance(client: ReliableClient, customer_id: str) -> int:
    """The customer's points: the sum of their movements (0 with none)."""
    rows = await client.suiteql(BALANCE_QUERY, params=[customer_id])
    value = rows[0].get("balance") if rows else None
    return int(Decimal(str(value))) if value not in (None, "") else 0


async def with_earned(client: ReliableClient, sale: SaleRec, outcome: Outcome,
                      guest_customer: str) -> Outcome:
    """A posted sale's outcome plus the movement of the points it earned (sales that
    earned none: unchanged, no request). Also on a replay or duplicate: the movement is
    then found by its externalId, so one written before a crash is never written twice
    and one missed by a crash is written now."""
    points = sale.get("loyalty_points_earned")
    if not points or not isinstance(outcome, Posting):
        return outcome
    sale_rec = outcome.primary
    customer = outcome.result.get("customer_id")
    if customer is None:  # a replay answered from the dedupe table: NetSuite knows it
        record = await client.get(sale_rec.record_type, sale_rec.netsuite_id)
        customer = (record.get("entity") or {}).get("id")
    m = movement(EARN, points, str(customer) if customer else None, guest_customer,
                 (sale_rec.record_type, sale_rec.netsuite_id), sale["store_id"],
                 sale["pos_transaction_id"], sale["customer"].get("loyalty_id"))
    if m is None:
        return outcome
    written, audit = await write_movement(client, m)
    return replace(outcome, records=(*outcome.records, written),
                   audit=(*outcome.audit, audit))
