"""The demo's "NetSuite back to the stores" block (issue 12): what a NetSuite user sets up
before the run, and what the availability, signals and order-status topics hold after it,
read back from Kafka.

Before the run a NetSuite user, over REST, counts the first store's shelves nearly empty
(one ``inventoryAdjustment`` leaving 3 of each item's seeded 25) and gives every item there
a reorder point (2) and a preferred stock level (30) (``inventoryItem`` PATCH), so the
day's sales at that store cross the point and some oversell, whatever the run's size.
After the run: the availability topic (keys, records, one sample), the
signals (counts, one oversell warning and one replenishment trigger), and the status of
the demo's omnichannel orders as the order-status topic last gives it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.streams.runtime.settings import Settings

#: Polls every 2 s in the demo (default 60 s), so NetSuite's side shows within the run.
SETTINGS = {"netsuite_poll_s": 2.0}
REORDER_POINT, PREFERRED, LEFT = 2, 30, 3


def prepare(base_url: str, location: str = "1") -> int:
    """A NetSuite user leaves ``LEFT`` of every item stocked at ``location`` and sets its
    reorder point and preferred level there; returns how many items."""
    async def go() -> int:
        async with NetSuiteClient(base_url, NetSuiteCredentials.dev()) as client:
            active = {r["id"] for r in await client.suiteql(
                "SELECT id, matrixtype FROM item WHERE isinactive = 'F' AND "
                "itemtype = 'InvtPart'") if r.get("matrixtype") != "PARENT"}
            rows = [r for r in await client.suiteql(
                "SELECT item, quantityonhand FROM aggregateitemlocation WHERE location = ?",
                params=[location]) if r["item"] in active]
            await client.create("inventoryAdjustment", {
                "account": {"id": "520"}, "adjLocation": {"id": location},
                "externalId": "demo-shelf-count", "memo": "shelf count before the demo",
                "inventory": {"items": [
                    {"item": {"id": str(r["item"])},
                     "adjustQtyBy": LEFT - int(Decimal(r["quantityonhand"]))}
                    for r in rows if Decimal(r["quantityonhand"]) > LEFT]}})
            for row in rows:
                await client.patch("inventoryItem", str(row["item"]), {"locations": {"items": [
                    {"location": {"id": location}, "reorderPoint": REORDER_POINT,
                     "preferredStockLevel": PREFERRED}]}})
            return len(rows)
    return asyncio.run(go())


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.isoformat() if hasattr(value, "isoformat") else value


def gather(s: Settings, order_ids: set[str], wait_s: float = 15.0) -> dict[str, Any]:
    """The block, read back from the three topics (waits up to ``wait_s`` for the status of
    every demo order that NetSuite changed)."""
    codec = AvroCodec(s.schema_registry_url or "")
    with TopicTail(s.kafka_bootstrap_servers or "", [
            topics.AVAILABILITY, topics.AVAILABILITY_SIGNALS, topics.ORDER_STATUS]) as tail:
        deadline = time.monotonic() + wait_s
        seen = -1
        while time.monotonic() < deadline and tail.count(topics.ORDER_STATUS) != seen:
            seen = tail.count(topics.ORDER_STATUS)
            tail.poll(2.0 * SETTINGS["netsuite_poll_s"])  # quiet for two polls: settled
        latest = {r.key: r for r in tail.records[topics.AVAILABILITY] if r.value}
        signals = [json.loads(r.value) for r in tail.records[topics.AVAILABILITY_SIGNALS]
                   if r.value]
        status: dict[str, dict[str, Any]] = {}
        for r in tail.records[topics.ORDER_STATUS]:
            doc = json.loads(r.value or b"{}")
            if doc.get("order_id") in order_ids:
                status[doc["order_id"]] = doc
    sample = next((codec.decode(r.value, topics.AVAILABILITY) for r in latest.values()
                   if r.value), None)
    kinds = collections.Counter(d["type"] for d in signals)
    first = {k: next(d for d in signals if d["type"] == k) for k in kinds}
    by = collections.Counter("tillbridge" if d["by_tillbridge"] else "netsuite"
                             for d in status.values())
    return {"availability": {"keys": len(latest),
                             "records": len(tail.records[topics.AVAILABILITY]),
                             "sample": _plain(sample)},
            "signals": dict(kinds), "oversell": first.get("oversell"),
            "replenishment": first.get("replenishment"),
            "order_status": {"orders": len(status),
                             "by_status": dict(collections.Counter(
                                 d["status"] for d in status.values())),
                             "last_change_by": dict(by),
                             "sample": next(iter(status.values()), None)}}


def rows(block: dict[str, Any]) -> list[tuple[str, str]]:
    """The block as summary-table rows."""
    if not block:
        return []
    avail, orders = block["availability"], block["order_status"]
    out = [("availability topic: items x locations / records",
            f"{avail['keys']} / {avail['records']}")]
    out += [(f"signals: {kind}", str(n)) for kind, n in sorted(block["signals"].items())]
    for kind in ("oversell", "replenishment"):
        doc = block.get(kind)
        if doc:
            what = (f"short {doc['quantity_short']} ({doc['pos_transaction_id']})"
                    if kind == "oversell" else f"suggest {doc['suggested_quantity']}")
            out.append((f"  e.g. {kind} {doc['store_id']} {doc['sku']}", what))
    out += [(f"order status (topic): {status}", str(n))
            for status, n in sorted(orders["by_status"].items())]
    return out
