"""The order flow: omnichannel orders -> linked NetSuite records: salesOrder,
itemFulfillment, the bill at pickup (cashSale or invoice), closed/changed lines,
returnAuthorization.

Record set of one order (every record ``createdFrom`` the sales order, every externalId
from ``ids``):

=================================  ===========================  ============================
event                              NetSuite                      externalId
=================================  ===========================  ============================
placed (BOPIS / ship from store    salesOrder, approved (``B``)  ``pos-ord-<order>``
or warehouse; PLACED/ALLOCATED)
FULFILLMENT / SHIPPED / PICKED_UP  itemFulfillment (transform)   ``pos-ful-<order>-<ful id>``
PICKED_UP (``bill_on``)            cashSale/invoice (transform)  see ``bill_external_id``
CANCEL                             PATCH: lines closed           (the order's)
MODIFY                             PATCH: lines changed/added    (the order's)
RETURN_IN_STORE                    returnAuthorization, approved ``pos-ra-<order>-<seq>``
                                                                ``pos-ra-<order>-<store>-<txn>``
                                                                (at a till)
=================================  ===========================  ============================

Quantities on an event are the order line's *state* after it (cumulative). A fulfilment
posts the difference between the event's ``quantity_fulfilled`` and what NetSuite already
shows fulfilled on the order line (``quantityFulfilled``), so fulfilments arriving out of
order, replayed or duplicated never over-fulfil: the later cumulative wins and the earlier
event finds nothing left (``Skipped``). Returns work the same way against the quantity
returned so far, kept on the order line in ``custcol_pos_qty_returned`` (NetSuite keeps no
such total on a sales order line).

The order carries the last applied event ``sequence`` (``custbody_pos_event_seq``); an
event older than that is a no-op (``Skipped``), so a late MODIFY cannot undo a newer one.
The same sequence again is a replay: re-applied, which writes nothing new.

The order event alone stops at the returnAuthorization (approved, Pending Receipt): it
says what came back but not what the till paid back. The till's POS return of the same
return (``pos.return.v1``, original channel ONLINE) completes the chain: itemReceipt,
creditMemo, customerRefund (``flows/online_return.py``). Both derive the same RA
externalId (``ids.in_store_ra_id``) when the event names the till's store and
transaction, so whichever comes first creates it.

Custom fields (Transaction Body / Line fields on a real account; the simulator accepts any
``custbody*``/``custcol*``) are the ``F_*`` names in ``order_records.py`` (the pure
builders); the POS/order ids also ride in ``memo`` and ``otherRefNum`` so a record is
traceable without them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.batch import BatchWriter
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.flows.base import Flow, Lookups, SinkContext
from tillbridge.streams.flows.sink import post_in_order
from tillbridge.streams.ledger.ids import order_external_id
from tillbridge.streams.ledger.lookup import find_id, find_record
from tillbridge.streams.ledger.order_changes import (
    build_return_authorization,
    cancel_changes,
    modify_changes,
    return_plan,
)
from tillbridge.streams.ledger.order_records import (
    F_RETURNED,
    F_SEQ,
    MEMO_MAX,
    ZERO,
    FulfilLine,
    OrderPolicy,
    OrderState,
    bill_external_id,
    build_bill,
    build_fulfilment,
    build_sales_order,
    fulfilment_external_id,
    fulfilment_plan,
    parse_order,
    return_external_id,
)
from tillbridge.streams.ledger.sale_records import build_customer
from tillbridge.streams.ledger.types import Missing, Outcome, Posting, Skipped, Written
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.stages.enrich_order import (
    CANCEL,
    FULFIL,
    PLACE,
    RETURN,
    OrderMappings,
    OrderRefs,
    order_action,
    resolve_order,
)
from tillbridge.streams.stages.messages import RawHeaders
from tillbridge.streams.stages.records import OrderRec, Rejection


class OrderFlow(Flow):
    kind = "order"
    topic = topics.OMNICHANNEL.name

    def __init__(self) -> None:
        self._parsed: tuple[Mappings, OrderMappings] | None = None

    def _order_mappings(self, maps: Mappings) -> OrderMappings:
        """Parsed once per mappings object (hot reload makes a new one). Held with the object
        itself, not its id(): a freed object's id can come back for the next one."""
        if self._parsed is None or self._parsed[0] is not maps:
            self._parsed = (maps, OrderMappings.from_dict(maps.document))
        return self._parsed[1]

    def resolve(self, event: OrderRec, lookups: Lookups) -> OrderRefs | Rejection:
        maps = lookups.mappings
        return resolve_order(event, maps, lookups.refdata, self._order_mappings(maps))

    def route_key(self, event: OrderRec) -> bytes:
        return str(event["order_id"]).encode()  # every event of an order: one partition

    async def post(self, ctx: SinkContext, event: OrderRec, refs: OrderRefs) -> Outcome:
        return await post_order_event(ctx.client, event, refs)

    async def post_batch(self, ctx: SinkContext, writer: BatchWriter,
                         items: Sequence[tuple[OrderRec, Any, RawHeaders]]) -> list[Outcome]:
        """A ``batch`` window's order events one by one, each order's in its sequence (then
        event time): a change, fulfilment or bill is made from the salesOrder, so neither
        async batch jobs (one record type, adds and updates only) nor any other order
        would do. What refers to an order a later window creates parks until it exists."""
        return await post_in_order(self, ctx, items, order=lambda e: (
            str(e["order_id"]), e["sequence"], e["occurred_at"]))

    def ids(self, event: OrderRec) -> dict[str, Any]:
        return {"order_id": event["order_id"], "kind": event["kind"],
                "status": event["status"], "sequence": event["sequence"],
                "store_id": event.get("store_id"),
                "pos_transaction_id": event.get("pos_transaction_id"),
                "external_id": order_external_id(event["order_id"])}


# -- flows ---------------------------------------------------------------------------------

async def load_order(client: ReliableClient, order_id: str) -> OrderState | None:
    """The order's sales order with its lines, or None when NetSuite has none (404)."""
    record = await find_record(client, "salesOrder", order_external_id(order_id), expand=True)
    return None if record is None else parse_order(record)


async def post_order_event(client: ReliableClient, ev: OrderRec, refs: OrderRefs,
                           policy: OrderPolicy | None = None) -> Posting | Missing | Skipped:
    """Post one order event. ``Missing`` when it needs the sales order and NetSuite has
    none yet; ``Skipped`` when it changes nothing (older than the last applied event,
    nothing left to fulfil/return, or a kind/status this code does not know).

    Permanent NetSuite refusals raise ``NetSuiteError``; ``NetSuiteUnavailable`` means wait.
    """
    policy = policy or OrderPolicy()
    action = order_action(ev)
    if action is None:
        return Skipped(f"order {ev['order_id']}: kind {ev['kind']} status {ev['status']} "
                       "needs no NetSuite record")
    if action == PLACE:
        return await _place(client, ev, refs, policy)
    order = await load_order(client, ev["order_id"])
    if order is None:
        return Missing(order_external_id(ev["order_id"]), ("salesOrder",),
                       f"{action} of order {ev['order_id']} before its sales order")
    if order.seq is not None and ev["sequence"] < order.seq:
        return Skipped(f"order {ev['order_id']}: event sequence {ev['sequence']} is older "
                       f"than {order.seq}, already applied")
    if action == FULFIL:
        return await _fulfil(client, ev, refs, order, policy)
    if action == RETURN:
        return await _return(client, ev, refs, order)
    if action == CANCEL:  # a cancellation never moves the order
        return await _update(client, ev, order, cancel_changes(ev, order),
                             f"cancelled ({ev.get('cancel_reason') or 'no reason'})", None)
    return await _update(client, ev, order, modify_changes(ev, refs, order),
                         f"modified ({ev.get('modification_note') or 'no note'})",
                         refs.location)


async def _place(client: ReliableClient, ev: OrderRec, refs: OrderRefs,
                 policy: OrderPolicy) -> Posting:
    """Create the order (after the customer, when the shopper is new to NetSuite). A later
    placement event (ALLOCATED, READY_FOR_PICKUP) of an existing order syncs its lines."""
    plan = refs.customer
    customer_id = plan.id
    if customer_id is None:
        customer_id = await client.upsert("customer", plan.external_id or "",
                                          build_customer(plan, refs.subsidiary))
    eid_ = order_external_id(ev["order_id"])
    body = build_sales_order(ev, refs, customer_id, policy)
    so_id, created = await client.create_or_find("salesOrder", eid_, body)
    written = Written("salesOrder", so_id, eid_, created, {"entity": customer_id})
    if created:
        return Posting((written,))
    order = await load_order(client, ev["order_id"])
    if order is None or (order.seq is not None and ev["sequence"] <= order.seq):
        return Posting((written,))
    return await _update(client, ev, order, modify_changes(ev, refs, order),
                         ev["status"].lower(), refs.location)


async def _update(client: ReliableClient, ev: OrderRec, order: OrderState,
                  changes: list[dict[str, Any]], note: str,
                  location: str | None) -> Posting:
    """One PATCH of the order: line changes, header location, memo note, sequence.
    Idempotent: the same event sets the same values again."""
    body: dict[str, Any] = {}
    if changes:
        body["item"] = {"items": changes}
    if location and location != order.location:
        body["location"] = {"id": location}
    tag = f"seq {ev['sequence']} {note}"
    if body and tag not in order.memo:
        body["memo"] = f"{order.memo}; {tag}"[:MEMO_MAX]
    changed = bool(body)
    if body or order.seq is None or ev["sequence"] > order.seq:
        body[F_SEQ] = max(ev["sequence"], order.seq or 0)
        await client.patch("salesOrder", order.id, body)
    lines = ",".join(str(c["line"]) for c in changes if "line" in c)
    return Posting((Written("salesOrder", order.id, order_external_id(ev["order_id"]), False,
                            {"changedLines": lines} if lines else {}, updated=changed),))


async def _fulfil(client: ReliableClient, ev: OrderRec, refs: OrderRefs, order: OrderState,
                  policy: OrderPolicy) -> Posting | Skipped:
    """The itemFulfillment of what this event fulfilled, then the bill if the status asks
    for one (a pickup: the goods left the store, the revenue is earned)."""
    records: list[Written] = []
    links = {"createdFrom": order.id}
    ful_eid = fulfilment_external_id(ev)
    plan = fulfilment_plan(ev, refs, order)
    if plan:
        ful_id, created = await client.transform_or_find(
            "salesOrder", order.id, "itemFulfillment", ful_eid,
            build_fulfilment(ev, plan, order, refs))
        records.append(Written("itemFulfillment", ful_id, ful_eid, created, links))
    else:
        found = await find_id(client, "itemFulfillment", ful_eid)
        if found is not None:
            records.append(Written("itemFulfillment", found, ful_eid, False, links))
    if ev["status"] in policy.bill_on:
        bill = await _bill(client, ev, refs, order, plan, policy)
        if bill is not None:
            records.append(bill)
    if not records:
        return Skipped(f"order {ev['order_id']}: nothing left to fulfil or bill "
                       f"(seq {ev['sequence']})")
    await _advance(client, ev, order)
    return Posting(tuple(records))


def _billable(order: OrderState, plan: Iterable[FulfilLine]) -> Decimal:
    just = {p.order_line: p.quantity for p in plan}
    return sum((max(ZERO, so.fulfilled + just.get(so.line, ZERO) - so.billed)
                for so in order.lines), ZERO)


async def _bill(client: ReliableClient, ev: OrderRec, refs: OrderRefs, order: OrderState,
                plan: list[FulfilLine], policy: OrderPolicy) -> Written | None:
    bill_eid = bill_external_id(ev)
    links = {"createdFrom": order.id}
    if _billable(order, plan) <= 0:
        found = await find_id(client, policy.bill_type, bill_eid)
        return None if found is None else Written(policy.bill_type, found, bill_eid, False,
                                                  links)
    bill_id, created = await client.transform_or_find(
        "salesOrder", order.id, policy.bill_type, bill_eid, build_bill(ev, refs))
    return Written(policy.bill_type, bill_id, bill_eid, created, links)


async def _return(client: ReliableClient, ev: OrderRec, refs: OrderRefs,
                  order: OrderState) -> Posting | Skipped:
    """The returnAuthorization of what this event returned; the order lines then record
    the cumulative quantity returned (what the next return is measured against)."""
    ra_eid = return_external_id(ev)
    plan = return_plan(ev, refs, order)
    links = {"createdFrom": order.id}
    if not plan:
        found = await find_id(client, "returnAuthorization", ra_eid)
        if found is None:
            return Skipped(f"order {ev['order_id']}: nothing newly returned "
                           f"(seq {ev['sequence']})")
        return Posting((Written("returnAuthorization", found, ra_eid, False, links),))
    ra_id, created = await client.transform_or_find(
        "salesOrder", order.id, "returnAuthorization", ra_eid,
        build_return_authorization(ev, plan, order, refs))
    await client.patch("salesOrder", order.id, {
        "item": {"items": [{"line": p.order_line, F_RETURNED: p.returned} for p in plan]},
        F_SEQ: max(ev["sequence"], order.seq or 0)})
    return Posting((Written("returnAuthorization", ra_id, ra_eid, created, links),))


async def _advance(client: ReliableClient, ev: OrderRec, order: OrderState) -> None:
    """Record the event's sequence on the order (only forwards)."""
    if order.seq is None or ev["sequence"] > order.seq:
        await client.patch("salesOrder", order.id, {F_SEQ: ev["sequence"]})

