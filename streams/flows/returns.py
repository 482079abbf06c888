"""The return flow: a POS return becomes a refund linked to its original sale, a payout,
a write-off of units that do not go back on the shelf, an exchange sale, and the loyalty
points it takes back (``flows/loyalty.py``). An online order returned at a till goes
through NetSuite's whole return chain instead (``flows/online_return.py``).

Which refund record, and why, is in ``ledger/refund.py`` (the pure builders); this module
finds the original in NetSuite, writes the records in order, and parks a return whose
original is not there yet (``Missing``: it waits for the sale's externalId). A return is
routed under its original sale's POS transaction id, so both share a sink task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.batch import BatchWriter
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.flows.base import Flow, Lookups, SinkContext
from tillbridge.streams.flows.loyalty import write_movement
from tillbridge.streams.flows.online_return import post_online_return
from tillbridge.streams.flows.sink import post_in_order
from tillbridge.streams.ledger.lookup import (
    ensure,
    find_any,
    find_id,
    find_summary,
    summary_dependency,
)
from tillbridge.streams.ledger.loyalty import LOYALTY_SUMMARISED, REVERSE, movement
from tillbridge.streams.ledger.refund import (
    NO_PAYOUT,
    Original,
    build_disposal,
    build_exchange_sale,
    build_payout,
    build_refund_transform,
    build_standalone_refund,
    disposal_external_id,
    exchange_external_id,
    is_transform,
    payout_external_id,
    refund_record_type,
    return_external_id,
    source_lines,
)
from tillbridge.streams.ledger.summary import SUMMARY_PREFIX
from tillbridge.streams.ledger.types import Missing, Outcome, Posting, Written
from tillbridge.streams.stages.enrich_return import (
    DEFAULT_WRITE_OFF_ACCOUNT,
    ReturnRefs,
    resolve_return,
)
from tillbridge.streams.stages.messages import RawHeaders
from tillbridge.streams.stages.records import Rejection, ReturnRec


class ReturnFlow(Flow):
    kind = "return"
    topic = topics.RETURN.name

    def resolve(self, event: ReturnRec, lookups: Lookups) -> ReturnRefs | Rejection:
        maps = lookups.mappings
        account = maps.document.get("write_off_account") or DEFAULT_WRITE_OFF_ACCOUNT
        return resolve_return(event, maps, lookups.refdata, write_off_account=str(account))

    def route_key(self, event: ReturnRec) -> bytes:
        """Under what it depends on: the original sale's POS id, or for an online order
        the order id (the order flow's key: its events and this return meet in order)."""
        orig = event["original"]
        if orig.get("channel") == "ONLINE" and orig.get("online_order_id"):
            return str(orig["online_order_id"]).encode()
        return str(orig.get("pos_transaction_id") or event["pos_transaction_id"]).encode()

    async def post(self, ctx: SinkContext, event: ReturnRec, refs: ReturnRefs) -> Outcome:
        return await post_return(ctx.client, event, refs)

    async def post_batch(self, ctx: SinkContext, writer: BatchWriter,
                         items: Sequence[tuple[ReturnRec, Any, RawHeaders]]) -> list[Outcome]:
        """A ``batch`` window's returns, in order, one by one: a refund is a ``!transform``
        of its original and a batch request only adds, updates, upserts or deletes
        records of one type (reference §1.9), so async batch jobs cannot carry it."""
        return await post_in_order(self, ctx, items)

    def ids(self, event: ReturnRec) -> dict[str, Any]:
        return {"pos_transaction_id": event["pos_transaction_id"],
                "store_id": event["store_id"], "register_id": event["register_id"],
                "kind": event["kind"],
                "original_pos_transaction_id": event["original"].get("pos_transaction_id"),
                "refund_method": event["refund_method"],
                "external_id": return_external_id(event)}


async def find_original(client: ReliableClient, refs: ReturnRefs) -> Original | None:
    """The original under the first of its possible record types that holds it."""
    assert refs.original is not None
    found = await find_any(client, refs.original, refs.original_types, expand=True)
    return None if found is None else Original(found[0], str(found[1]["id"]), found[1])


async def summary_original(client: ReliableClient, ret: ReturnRec,
                           refs: ReturnRefs) -> Original | None:
    """A POS sale booked inside a ``pos-sum-`` summary (the ``summary`` sync mode): the
    summary is the original its refund is transformed from."""
    if "cashSale" not in refs.original_types:
        return None
    orig = ret["original"]
    found = await find_summary(client, orig.get("store_id") or ret["store_id"],
                               orig.get("register_id"), orig.get("business_date"),
                               orig.get("pos_transaction_id"), expand=True)
    return None if found is None else Original(found[0], str(found[1]["id"]), found[1])


def summarised_posting(ret: ReturnRec, records: list[Written], summary: str) -> Posting:
    """A return of a summarised receipt: its records name the summary; no loyalty reversal
    (the summary earned none: it books to the guest and upserts no shoppers), and the
    result says so by ``loyalty_skipped``."""
    named = tuple(replace(w, links={**w.links, "summary": summary}) for w in records)
    points = ret.get("loyalty_points_reversed")
    result: dict[str, Any] = {"summary_external_id": summary}
    if points:
        result["loyalty_skipped"] = {"reason": LOYALTY_SUMMARISED, "points": points}
    return Posting(named, result=result)


def _customer(refs: ReturnRefs, original: Original | None) -> str:
    """The shopper NetSuite knows, else the original's customer, else the guest."""
    return refs.customer or (original.customer if original else None) or refs.guest_customer


async def _post_refund(client: ReliableClient, ret: ReturnRec, refs: ReturnRefs,
                       original: Original | None) -> Written:
    source_type = original.record_type if original else None
    record_type = refund_record_type(ret, source_type)
    ext = return_external_id(ret)
    transform = original is not None and is_transform(record_type, source_type)
    links = ({} if original is None else
             {"createdFrom": original.id} if transform else {"original": original.id})

    async def write() -> tuple[str, bool]:
        if transform:
            assert original is not None
            unapply = None
            if original.record_type == "invoice" and \
                    Decimal(str(original.record.get("amountRemaining", 0))) <= 0:
                unapply = original.id
            body = build_refund_transform(ret, refs, source_lines(original.record),
                                          None if record_type == "creditMemo"
                                          else refs.payment_method, unapply_invoice=unapply)
            return await client.transform_or_find(original.record_type, original.id,
                                                  record_type, ext, body)
        body = build_standalone_refund(ret, refs, record_type, _customer(refs, original),
                                       refs.payment_method,
                                       original_id=original.id if original else None)
        return await client.create_or_find(record_type, ext, body)

    return await ensure(client, record_type, ext, write, links)


async def _post_payout(client: ReliableClient, ret: ReturnRec, refs: ReturnRefs,
                       credit: Written) -> Written | None:
    """customerRefund of the credit memo's open amount (invoiced originals only)."""
    ext = payout_external_id(ret)
    links = {"apply": credit.netsuite_id}
    found = await find_id(client, "customerRefund", ext)
    if found is not None:
        return Written("customerRefund", found, ext, False, links)
    memo = await client.get("creditMemo", credit.netsuite_id)
    if Decimal(str(memo.get("amountRemaining", 0))) <= 0:
        return None  # the whole credit went against the invoice: nothing to pay out
    new_id, created = await client.transform_or_find(
        "creditMemo", credit.netsuite_id, "customerRefund", ext,
        build_payout(ret, refs, refs.payment_method))
    return Written("customerRefund", new_id, ext, created, links)


async def post_return(client: ReliableClient, ret: ReturnRec,
                      refs: ReturnRefs) -> Posting | Missing:
    """Post a resolved return: refund, payout, write-off, exchange sale, in that order.

    A return whose original is not in NetSuite yet is not posted standalone: ``Missing``
    names the externalId it waits for. Replays write nothing (``created=False``).
    NetSuiteError (permanent) and NetSuiteUnavailable propagate to the sink.
    """
    original = None
    if refs.original is not None:
        original = await find_original(client, refs) or await summary_original(client, ret,
                                                                               refs)
        if original is None:
            orig = ret["original"]
            via_summary = summary_dependency(
                orig.get("store_id") or ret["store_id"], orig.get("register_id"),
                orig.get("business_date"), orig.get("pos_transaction_id")) \
                if "cashSale" in refs.original_types else ()
            return Missing(refs.original, (*refs.original_types, *via_summary),
                           f"return {ret['pos_transaction_id']} of {refs.original}, "
                           "not in NetSuite yet")
    if original is not None and original.record_type == "salesOrder":
        records = await post_online_return(client, ret, refs, original.record)
        refund = records[2]  # the creditMemo, after the RA and the itemReceipt
    else:
        refund = await _post_refund(client, ret, refs, original)
        records = [refund]
    if original is not None and original.record_type == "invoice" \
            and ret["refund_method"] not in NO_PAYOUT:
        payout = await _post_payout(client, ret, refs, refund)
        if payout is not None:
            records.append(payout)
    disposal = build_disposal(ret, refs)
    if disposal is not None:
        ext = disposal_external_id(ret)
        records.append(await ensure(
            client, "inventoryAdjustment", ext,
            lambda: client.create_or_find("inventoryAdjustment", ext, disposal),
            {"return": refund.netsuite_id}))
    if ret.get("exchange_lines"):
        ext = exchange_external_id(ret)
        method = refs.payment_method or (original.payment_method if original else None)
        body = build_exchange_sale(ret, refs, _customer(refs, original), method)
        records.append(await ensure(client, "cashSale", ext,
                                    lambda: client.create_or_find("cashSale", ext, body),
                                    {"return": refund.netsuite_id}))
    summary = original.record.get("externalId") if original is not None and \
        str(original.record.get("externalId") or "").startswith(SUMMARY_PREFIX) else None
    if summary is not None:
        return summarised_posting(ret, records, str(summary))
    reversal = movement(REVERSE, ret.get("loyalty_points_reversed"), _customer(refs, original),
                        refs.guest_customer, (refund.record_type, refund.netsuite_id),
                        ret["store_id"], ret["pos_transaction_id"],
                        ret["customer"].get("loyalty_id"))
    if reversal is None:
        return Posting(tuple(records))
    written, audit = await write_movement(client, reversal)
    return Posting((*records, written), audit=(audit,))
