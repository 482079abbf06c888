"""Posting a stock window: one inventoryAdjustment per location and window, once by
externalId. Not wired to Kafka yet: the inventory window aggregator will call it (the body
is ``ledger/stock.py``)."""

from __future__ import annotations

from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.ledger.stock import StockWindow, build_inventory_adjustment, window_stamp
from tillbridge.streams.ledger.types import Posting, Skipped, Written


async def post_inventory_adjustment(client: ReliableClient, window: StockWindow, account: str,
                                    subsidiary: str) -> Posting | Skipped:
    """Post the window's adjustment once (a replay finds it by externalId)."""
    body = build_inventory_adjustment(window, account, subsidiary)
    if body is None:
        return Skipped(f"stock window {window.store} {window_stamp(window.window_start)}: "
                       "no net change")
    eid = body["externalId"]
    adj_id, created = await client.create_or_find("inventoryAdjustment", eid, body)
    return Posting((Written("inventoryAdjustment", adj_id, eid, created,
                            {"adjLocation": window.location_id}),))
