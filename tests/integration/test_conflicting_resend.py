"""A POS transaction id re-sent with other content, end to end: broker, registry, simulator
and the worker in its own process."""

from __future__ import annotations

import asyncio
import copy
import json
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce, sim_stats
from tillbridge.connectors.kafka import topics
from tillbridge.devstack.stack import WorkerProcess
from tillbridge.streams.ledger.sale_records import sale_external_id

pytestmark = pytest.mark.integration


async def _by_external_id(settings: Any, external_id: str) -> dict[str, Any]:
    from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials

    async with NetSuiteClient(settings.netsuite_base_url or "",
                              NetSuiteCredentials.dev()) as client:
        return await client.get("cashSale", f"eid:{external_id}")


def test_identical_resend_is_a_duplicate_and_a_changed_one_is_dead_lettered(stack) -> None:
    """Sale, identical re-send, changed re-send (3 x instead of 2 x the tee): posted,
    duplicate, conflicting_resend in the sink DLQ with the differences. NetSuite, read back by
    externalId, holds the first version: total to the cent, one record created."""
    s = stack.settings
    sale = make_sale(pos_transaction_id="CONF-1")
    changed = copy.deepcopy(sale)
    changed["event_id"] = "00000000-0000-0000-0000-000000000002"
    changed["lines"][0]["quantity"] = D("3")
    changed["lines"][0]["tax_amount"] = changed["tax_total"] = D("5.00")  # 57.97 x 8.625%
    changed["subtotal"], changed["total"] = D("59.97"), D("62.97")
    changed["tenders"][0]["amount"] = D("62.97")
    first, again = encode_sales(s, [sale, sale])
    (other,) = encode_sales(s, [changed])
    out = Outcomes(s)
    with WorkerProcess(s):
        produce(s, [first])
        out.wait(1)
        produce(s, [again, other])
        out.wait(3)
    assert out.summary() == {"result:posted": 1, "result:duplicate": 1,
                             "dlq:conflicting_resend": 1}
    (dead,) = out.dead
    assert dead.topic == topics.dlq_topic("sink")
    assert (dead.key, dead.value) == other, "the re-send's own bytes, for the record"
    diff = json.loads(dead.header("tillbridge.inputs") or "{}")["differences"]
    assert diff["total"] == {"posted": "41.26", "resent": "62.97"}
    assert diff["lines_changed"]["TEE-001"]["resent"].startswith("3 x 19.99")
    assert dead.header("tillbridge.fix")
    record = asyncio.run(_by_external_id(s, sale_external_id(sale)))  # type: ignore[arg-type]
    # NetSuite holds the first receipt, tax included (41.26), not the re-send's.
    assert D(str(record["total"])) == sale["total"] == D("41.26")
    assert sim_stats(s)["records"]["cashSale"]["created"] == 1
    out.close()
