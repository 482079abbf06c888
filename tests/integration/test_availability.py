"""NetSuite back to the stores, end to end on one worker (broker, registry, simulator):

- availability at S001 for TEE-001 moves with each POS sale at once, then converges to
  NetSuite's figures after a poll (read back from the simulator by SuiteQL);
- a reorder-point crossing is signalled once, and an oversell once, with its POS sale;
- an order fulfilled by a NetSuite user reaches the order-status topic once, also across a
  worker restart (which, on Tansu, reads its inputs again).
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import make_sale
from tests.integration.helpers import encode_sales, produce, wait_until
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.devstack.stack import Stack, WorkerProcess
from tillbridge.streams.ledger.sale_records import SOURCE_FIELD

pytestmark = pytest.mark.integration

KEY = b"1/1001"  # location 1 (S001), item 1001 (TEE-001)


def netsuite(stack: Stack, call: str, *args: Any) -> Any:
    """One call as a NetSuite user's integration would make it (REST, signed)."""
    async def go() -> Any:
        async with NetSuiteClient(stack.settings.netsuite_base_url or "",
                                  NetSuiteCredentials.dev()) as client:
            return await getattr(client, call)(*args)
    return asyncio.run(go())


def ns_available(stack: Stack) -> D:
    async def go() -> D:
        async with NetSuiteClient(stack.settings.netsuite_base_url or "",
                                  NetSuiteCredentials.dev()) as client:
            rows = await client.suiteql("SELECT quantityavailable FROM aggregateitemlocation "
                                        "WHERE item = '1001' AND location = '1'")
        return D(rows[0]["quantityavailable"])
    return asyncio.run(go())


def sale(n: int) -> dict[str, Any]:
    return make_sale(pos_transaction_id=f"S001-R01-AV{n:04d}",
                     event_id=f"00000000-0000-0000-0000-{n:012d}")


class Topics:
    def __init__(self, stack: Stack) -> None:
        self.codec = AvroCodec(stack.settings.schema_registry_url or "")
        self.tail = TopicTail(stack.settings.kafka_bootstrap_servers or "",
                              [topics.AVAILABILITY, topics.AVAILABILITY_SIGNALS,
                               topics.ORDER_STATUS])

    def states(self) -> list[dict[str, Any]]:
        self.tail.poll(0.3)
        return [self.codec.decode(r.value, topics.AVAILABILITY)
                for r in self.tail.records[topics.AVAILABILITY] if r.key == KEY and r.value]

    def docs(self, topic: str) -> list[dict[str, Any]]:
        self.tail.poll(0.3)
        return [json.loads(r.value) for r in self.tail.records[topic] if r.value]


def test_availability_signals_and_order_status(stack: Stack) -> None:
    s = stack.settings.replace(netsuite_poll_s=1.5)
    # a NetSuite user sets TEE-001's reorder point at S001 (25 on hand): 20, preferred 40
    netsuite(stack, "patch", "inventoryItem", "1001", {"locations": {"items": [
        {"location": {"id": "1"}, "reorderPoint": 20, "preferredStockLevel": 40}]}})
    worker = WorkerProcess(s).start()
    try:
        seen = Topics(stack)
        wait_until(lambda: any(st["cause"] == "netsuite_read" for st in seen.states()), 30,
                   "the first read")
        produce(s, encode_sales(s, [sale(n) for n in (1, 2, 3)]))  # 2 x TEE-001 each
        wait_until(lambda: [st["available"] for st in seen.states()
                            if st["pos_events"]][-1:] == [D(19)], 30, "sales moving it")
        # converges: NetSuite has the three cashSales, the next read shows 19 with no POS
        # events left over
        wait_until(lambda: seen.states()[-1]["pos_events"] == [] and
                   seen.states()[-1]["available"] == D(19), 30, "a read after the sink")
        assert ns_available(stack) == D(19)
        # a NetSuite user writes 18 off; the next sale (2 units) oversells by 1
        netsuite(stack, "create", "inventoryAdjustment", {
            "account": {"id": "520"}, "adjLocation": {"id": "1"},
            "inventory": {"items": [{"item": {"id": "1001"}, "adjustQtyBy": -18}]}})
        wait_until(lambda: seen.states()[-1]["netsuite_available"] == D(1), 30, "the write-off")
        produce(s, encode_sales(s, [sale(4)]))
        wait_until(lambda: ns_available(stack) == D(-1) and
                   seen.states()[-1]["pos_events"] == [], 30, "the oversold sale posted")
        signals = seen.docs(topics.AVAILABILITY_SIGNALS)
        assert [(d["type"], d["pos_transaction_id"] if d["type"] == "oversell" else d["cause"])
                for d in signals] == [("replenishment", "S001-R01-AV0003"),  # 25-6 < 20
                                      ("oversell", "S001-R01-AV0004")]
        assert D(signals[0]["suggested_quantity"]) == D(21)  # up to the preferred 40
        assert D(signals[1]["quantity_short"]) == D(1)
        # an omnichannel order (as tillbridge creates it), fulfilled by a warehouse user
        so_id = netsuite(stack, "create", "salesOrder", {
            "entity": {"id": "5001"}, "location": {"id": "9"}, "orderStatus": "B",
            "externalId": "pos-ord-WEB-77", "otherRefNum": "WEB-77",
            SOURCE_FIELD: "pos.omnichannel.v1/0/1",
            "item": {"items": [{"item": {"id": "1002"}, "quantity": 1, "rate": 26}]}})
        netsuite(stack, "transform", "salesOrder", so_id, "itemFulfillment",
                 {"inventoryLocation": {"id": "9"}})

        def fulfilled() -> list[dict[str, Any]]:
            return [d for d in seen.docs(topics.ORDER_STATUS)
                    if d["order_id"] == "WEB-77" and d["status"] == "fulfilled"]
        wait_until(lambda: len(fulfilled()) == 1, 30, "the fulfilment on the status topic")
        assert fulfilled()[0]["by_tillbridge"] is False
        assert fulfilled()[0]["order_netsuite_id"] == so_id
        worker.stop()
        worker = WorkerProcess(s).start()  # a new process, same group: reads inputs again
        polls = worker_polls(worker)
        wait_until(lambda: worker_polls(worker) >= polls + 2, 30, "two polls after restart")
        assert len(fulfilled()) == 1
        # the replayed sales did not signal again
        assert len(seen.docs(topics.AVAILABILITY_SIGNALS)) == 2
    finally:
        worker.stop()


def worker_polls(worker: WorkerProcess) -> float:
    from tests.integration.helpers import worker_metric

    value = worker_metric(worker, "tillbridge_order_status_polls_total", outcome="ok")
    return 0.0 if value != value else value
