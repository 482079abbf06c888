"""The inventory flow: store movements posted through a window, not per record.

Ingest checks a movement (its store maps to a location, its reason is known, its SKU is a
NetSuite item stocked there) and routes it to the window agent under its store, the window
key. SALE and RETURN movements are routed too but skipped there: the cashSale and the
cashRefund already move the stock (``ledger/stock.py``). Every other movement joins its
location's window; a closed window becomes one ``inventoryAdjustment`` (``window_body``),
posted once by its externalId (``post_window``): NetSuite already holding that externalId
with the same net lines is the same window again (a replay), with other lines a conflict,
never posted over.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, cast

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.flows.base import Event, Flow, Lookups
from tillbridge.streams.ledger.stock import (
    BOOKED_REASONS,
    POSTED_REASONS,
    StockLine,
    StockWindow,
    body_lines,
    build_inventory_adjustment,
    window_stamp,
)
from tillbridge.streams.ledger.types import Outcome, Posting, Skipped, Written
from tillbridge.streams.stages import enrich
from tillbridge.streams.stages.business_day import business_date, zone
from tillbridge.streams.stages.messages import RawHeaders
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection, SaleLineRec

H_STOCK = "tillbridge.stock"  # hop header: {"location", "subsidiary", "item"} as JSON
DEFAULT_ADJUSTMENT_ACCOUNT = "520"  # the sandbox's Inventory Shrinkage


def adjustment_account(lookups: Lookups) -> str:
    """``inventory_adjustment_account`` of the mappings, else ``write_off_account``."""
    doc = lookups.mappings.document
    return str(doc.get("inventory_adjustment_account") or doc.get("write_off_account")
               or DEFAULT_ADJUSTMENT_ACCOUNT)


class InventoryFlow(Flow):
    """``windowed``: the window agent (``runtime/windows.py``) posts it, not the sink."""

    kind: ClassVar[str] = "inventory"
    topic: ClassVar[str] = topics.INVENTORY.name
    windowed: ClassVar[bool] = True

    def resolve(self, event: Event, lookups: Lookups) -> dict[str, str] | Rejection:
        reason = event["reason"]
        if reason not in POSTED_REASONS | BOOKED_REASONS:
            return Rejection(Stage.VALIDATE, ReasonCode.UNKNOWN_MOVEMENT_REASON,
                             "movement.reason", f"movement {event['movement_id']}: reason "
                             f"{reason!r} is not a known movement type",
                             {"reason": reason, "known": ",".join(
                                 sorted(POSTED_REASONS | BOOKED_REASONS))})
        store = enrich.resolve_store(event["store_id"], lookups.mappings)
        if isinstance(store, Rejection):
            return store
        refs = {"location": store.location, "subsidiary": store.subsidiary, "item": ""}
        if reason in BOOKED_REASONS:
            return refs  # skipped at the window agent: its SKU is the sale's business
        line = cast(SaleLineRec, {"sku": event["sku"], "line_no": 1})
        item = enrich.resolve_item(line, store.location, lookups.mappings, lookups.refdata)
        if isinstance(item, Rejection):
            return item
        return {**refs, "item": item}

    def route_key(self, event: Event) -> bytes:
        return self.window_key(event).encode()

    def hop_headers(self, event: Event, refs: Any) -> list[tuple[str, bytes]]:
        return [(H_STOCK, json.dumps(refs, sort_keys=True).encode())]

    def sink_refs(self, event: Event, headers: RawHeaders, lookups: Lookups) -> Any:
        """What ingest resolved: a window's lines keep the ids they were checked with."""
        raw = next((v for k, v in reversed(headers) if k == H_STOCK and v is not None), None)
        return json.loads(raw) if raw is not None else self.resolve(event, lookups)

    def ids(self, event: Event) -> dict[str, Any]:
        return {"movement_id": event["movement_id"], "store_id": event["store_id"],
                "pos_transaction_id": event.get("pos_transaction_id"),
                "reason": event["reason"]}

    # -- the window side -------------------------------------------------------------------
    def window_key(self, event: Event) -> str:
        return str(event["store_id"])

    def member_id(self, event: Event) -> str:
        return str(event["movement_id"])

    def skip(self, event: Event) -> Skipped | None:
        if event["reason"] in BOOKED_REASONS:
            return Skipped(f"{event['reason']} movement: its "
                           f"{'cashSale' if event['reason'] == 'SALE' else 'cashRefund'} "
                           "moves the stock in NetSuite")
        return None

    def window_body(self, key: str, start: datetime, end: datetime,
                    members: Sequence[tuple[Event, Any, datetime, bool]],
                    lookups: Lookups) -> dict[str, Any] | None:
        """One adjustment for a location's window: a line per item and reason; a late
        movement's line memo names it with its original event time."""
        lines: list[StockLine] = []
        location = subsidiary = ""
        for event, refs, when, late in members:
            location, subsidiary = refs["location"], refs["subsidiary"]
            memo = f"late {event['movement_id']} at {when.isoformat()}" if late else ""
            lines.append(StockLine(refs["item"], event["quantity_delta"], event["reason"],
                                   memo))
        window = StockWindow(key, location, start, end, tuple(lines), len(members))
        return build_inventory_adjustment(window, adjustment_account(lookups), subsidiary,
                                          store_day(lookups, key, start))


def store_day(lookups: Lookups, store: str, moment: datetime) -> str | None:
    """The store's business date of a window's start (its zone and cut-off, as a sale's
    tranDate); None for a key that is no mapped store (the UTC date then)."""
    mapping = lookups.mappings.stores.get(store)
    if mapping is None:
        return None
    return business_date(moment, zone(mapping.timezone), mapping.business_day_cutoff).isoformat()


async def post_window(client: ReliableClient, body: dict[str, Any]) -> Written | Rejection:
    """Post a window's adjustment once. NetSuite already holding its externalId: the same
    net lines is this window again (``created`` False); other lines a ``window_conflict``,
    never re-posted."""
    eid = body["externalId"]
    adj_id, created = await client.create_or_find("inventoryAdjustment", eid, body)
    written = Written("inventoryAdjustment", adj_id, eid, created,
                      {"adjLocation": body["adjLocation"]["id"]})
    if created:
        return written
    held = await netsuite_lines(client, adj_id)
    ours = body_lines(body)
    if held == ours:
        return written
    return Rejection(Stage.SINK, ReasonCode.WINDOW_CONFLICT, "window.same_content",
                     f"NetSuite inventoryAdjustment {adj_id} ({eid}) holds other lines than "
                     "this window", {"external_id": eid, "netsuite_id": adj_id,
                                     "netsuite_lines": json.dumps(held),
                                     "window_lines": json.dumps(ours)})


async def netsuite_lines(client: ReliableClient, adj_id: str) -> list[tuple[str, str]]:
    """(item, net quantity) of an adjustment as NetSuite holds it (SuiteQL)."""
    rows = await client.suiteql(
        "SELECT item, quantity FROM transactionline WHERE transaction = ? AND mainline = 'F'",
        params=[adj_id])
    lines = [{"item": {"id": r["item"]}, "adjustQtyBy": r["quantity"]}
             for r in rows if r.get("item") is not None and r.get("quantity") is not None]
    return body_lines({"inventory": {"items": lines}})


async def post_inventory_adjustment(client: ReliableClient, window: StockWindow, account: str,
                                    subsidiary: str) -> Outcome:
    """Post one window's adjustment once (a replay finds it by externalId)."""
    body = build_inventory_adjustment(window, account, subsidiary)
    if body is None:
        return Skipped(f"stock window {window.store} {window_stamp(window.window_start)}: "
                       "no net change")
    eid = body["externalId"]
    adj_id, created = await client.create_or_find("inventoryAdjustment", eid, body)
    return Posting((Written("inventoryAdjustment", adj_id, eid, created,
                            {"adjLocation": window.location_id}),))
