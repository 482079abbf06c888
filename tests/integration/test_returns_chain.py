"""Through the real pipeline (broker, registry, worker process, simulator): an online order
picked up in store, then returned at a till, ends as NetSuite's whole chain; and a
shopper's loyalty points, earned on a sale and taken back by its return, add up in
NetSuite's loyalty ledger. Every figure is read back from the simulator (GET, SuiteQL)."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal as D
from typing import Any

import pytest

from tests.factories import make_order, make_return, make_sale
from tests.integration.helpers import Outcomes, encode_sales, produce
from tests.test_online_return import online_return, picked_up, returned_in_store
from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.kafka.serde import AvroCodec
from tillbridge.connectors.netsuite.auth import NetSuiteCredentials
from tillbridge.connectors.netsuite.client import NetSuiteClient, eid
from tillbridge.devstack.stack import WorkerProcess
from tillbridge.streams.ledger.loyalty import BALANCE_QUERY

pytestmark = pytest.mark.integration

CHAIN = ("returnAuthorization", "itemReceipt", "creditMemo", "customerRefund")
RTN = "S001-R04-000900"


def _docs(out: Outcomes) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in out.results]


def _wait(out: Outcomes, done: Any, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.tail.poll(0.3)
        if done(_docs(out)):
            return
    dead = [(r.header("tillbridge.rule"), r.header("tillbridge.inputs")) for r in out.dead]
    raise AssertionError(f"timed out: {out.summary()} {dead}")


async def _read_back(base_url: str) -> dict[str, Any]:
    async with NetSuiteClient(base_url, NetSuiteCredentials.dev()) as c:
        got = {rt: await c.get(rt, eid(x), expand=True) for rt, x in (
            ("salesOrder", "pos-ord-WEB-1001"),
            ("returnAuthorization", f"pos-ra-WEB-1001-S001-{RTN}"),
            ("itemReceipt", f"pos-rcpt-S001-{RTN}"),
            ("creditMemo", f"pos-rtn-S001-{RTN}"),
            ("customerRefund", f"pos-rfd-S001-{RTN}"))}
        # tillbridge's records only (the seed holds customers' credit memos from before)
        got["counts"] = {rt: str(sum(str(r["externalid"]).startswith("pos-") for r in
                                     await c.suiteql("SELECT externalid FROM transaction "
                                                     "WHERE recordtype = ?",
                                                     params=[rt.lower()])))
                         for rt in CHAIN}
        got["refund_row"] = await c.suiteql(
            "SELECT foreigntotal FROM transaction WHERE externalid = ?",
            params=[f"pos-rfd-S001-{RTN}"])
        got["balance"] = await c.suiteql(BALANCE_QUERY, params=["5001"])
    return got


def test_online_return_chain_and_loyalty_through_the_pipeline(stack) -> None:
    s = stack.settings
    shopper = dict(make_order()["customer"])  # LOY100001: NetSuite customer 5001
    sale = make_sale(customer=shopper, loyalty_points_earned=41)
    sale_return = make_return(customer=shopper, loyalty_points_reversed=18)
    online = online_return(loyalty_points_reversed=None)
    omni = AvroCodec(s.schema_registry_url or "").encoder(topics.OMNICHANNEL)
    returns = AvroCodec(s.schema_registry_url or "").encoder(topics.RETURN)
    orders = [*picked_up(), returned_in_store()]
    audit = TopicTail(s.kafka_bootstrap_servers or "", [topics.AUDIT_LOYALTY])
    out = Outcomes(s)
    with WorkerProcess(s):
        produce(s, [(b"WEB-1001", omni(ev)) for ev in orders], topics.OMNICHANNEL.name)
        produce(s, encode_sales(s, [sale]))
        produce(s, [(r["pos_transaction_id"].encode(), returns(r))
                    for r in (sale_return, online)], topics.RETURN.name)
        _wait(out, lambda docs: len({d["source"] for d in docs
                                     if d["outcome"] != "parked"}) == 6)
        # The same till return delivered again: found, nothing written twice.
        produce(s, [(RTN.encode(), returns(online))], topics.RETURN.name)
        _wait(out, lambda docs: len({d["source"] for d in docs
                                     if d["outcome"] != "parked"}) == 7, timeout=20)
    assert not out.dead, out.summary()
    got = asyncio.run(_read_back(s.netsuite_base_url or ""))
    ra, receipt = got["returnAuthorization"], got["itemReceipt"]
    memo, refund = got["creditMemo"], got["customerRefund"]
    assert ra["createdFrom"]["id"] == got["salesOrder"]["id"]
    assert ra["status"]["refName"] == "Refunded"
    assert receipt["createdFrom"]["id"] == ra["id"] and memo["createdFrom"]["id"] == ra["id"]
    assert {ln["location"]["id"] for ln in receipt["item"]["items"]} == {"1"}  # store S001
    assert refund["apply"]["items"][0]["doc"]["id"] == memo["id"]
    paid_back = sum(t["amount"] for t in online["refund_tenders"])
    assert D(str(memo["total"])) == online["refund_total"]
    assert D(str(refund["total"])) == paid_back == D("48.87")
    assert D(got["refund_row"][0]["foreigntotal"]) == paid_back
    assert got["counts"] == {rt: "1" for rt in CHAIN}, "one of each, the re-send included"
    assert D(got["balance"][0]["balance"]) == 41 - 18
    replayed = [d for d in _docs(out)
                if d["event_type"] == "return" and d["pos_transaction_id"] == RTN]
    assert sorted(d["outcome"] for d in replayed) == ["duplicate", "posted"]
    audit.wait_for(lambda t: t.count() >= 2, 10)
    moves = sorted(json.loads(r.value)["points"] for r in audit.records[topics.AUDIT_LOYALTY])
    assert moves == [-18, 41]
    audit.close()
    out.close()
