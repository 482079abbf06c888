"""An online order returned at a till: the POS return completes NetSuite's chain
(authorisation -> goods received -> credit -> refund; the builders and the table of
records are in ``ledger/return_chain.py``).

Each step is looked up by its externalId before it is written (``ensure``), so a return
replayed after a crash anywhere in the chain finds what its earlier attempt wrote and
writes only the rest. The authorisation is shared with the order's own RETURN_IN_STORE
event (same externalId, and both events are routed under the order id, so one sink task
sees them in turn): whichever comes first creates it, the other finds it.
"""

from __future__ import annotations

from typing import Any

from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.lookup import ensure, find_id
from tillbridge.streams.ledger.order_records import OrderState, SoLine, parse_order
from tillbridge.streams.ledger.refund import payout_external_id, return_external_id
from tillbridge.streams.ledger.return_chain import (
    build_authorisation,
    build_credit,
    build_receipt,
    build_refund,
    match_order_lines,
    paid_back,
    parse_ra,
    pick_ra_lines,
    ra_external_id,
    receipt_external_id,
    returned_patch,
)
from tillbridge.streams.ledger.types import Written
from tillbridge.streams.stages.enrich_return import ReturnRefs
from tillbridge.streams.stages.records import ReturnRec

RA = "returnAuthorization"


async def _authorisation(client: ReliableClient, ret: ReturnRec, refs: ReturnRefs,
                         order: OrderState, matched: list[SoLine | None]) -> Written:
    """The RA (found, or made from the order); a new one also records on the order lines
    what is now returned, so the order's own return event does not authorise it again."""
    ext = ra_external_id(ret)
    links = {"createdFrom": order.id}
    found = await find_id(client, RA, ext)
    if found is not None:
        return Written(RA, found, ext, False, links)
    ra_id, created = await client.transform_or_find(
        "salesOrder", order.id, RA, ext, build_authorisation(ret, refs, order, matched))
    if created:
        await client.patch("salesOrder", order.id, returned_patch(ret, matched))
    return Written(RA, ra_id, ext, created, links)


async def post_online_return(client: ReliableClient, ret: ReturnRec, refs: ReturnRefs,
                             order_record: dict[str, Any]) -> list[Written]:
    """RA, itemReceipt, creditMemo and (money paid back) customerRefund, in that order.
    The creditMemo is the return's own record (``rtn`` externalId, as for any return)."""
    order = parse_order(order_record)
    matched = match_order_lines(ret, refs, order)
    ra = await _authorisation(client, ret, refs, order, matched)
    ra_lines = parse_ra(await client.get(RA, ra.netsuite_id, expand=True))
    picks = pick_ra_lines(matched, ra_lines)
    via = {"createdFrom": ra.netsuite_id}
    rcpt = receipt_external_id(ret)
    receipt = await ensure(client, "itemReceipt", rcpt, lambda: client.transform_or_find(
        RA, ra.netsuite_id, "itemReceipt", rcpt, build_receipt(ret, refs, ra_lines, picks)),
        via)
    rtn = return_external_id(ret)
    credit = await ensure(client, "creditMemo", rtn, lambda: client.transform_or_find(
        RA, ra.netsuite_id, "creditMemo", rtn, build_credit(ret, refs, ra_lines, picks)), via)
    records = [ra, receipt, credit]
    if paid_back(ret) > 0:
        rfd = payout_external_id(ret)
        records.append(await ensure(
            client, "customerRefund", rfd, lambda: client.transform_or_find(
                "creditMemo", credit.netsuite_id, "customerRefund", rfd,
                build_refund(ret, refs, credit.netsuite_id)),
            {"apply": credit.netsuite_id}))
    return records
