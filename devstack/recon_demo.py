"""The settlement and reconciliation block of the demo (and of its integration test): a
business day for a clean and a dirty store (``devstack/pos/recon_day.py``) goes through a
running worker, register closes and all; one posted sale is then changed by hand in
NetSuite; then ``tillbridge reconcile`` runs per store. Every figure is read back: the
deposits and journals from NetSuite, the differences from the reconciliation."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteError
from tillbridge.connectors.netsuite.client import eid
from tillbridge.connectors.pos.publish import publish_generated
from tillbridge.devstack.pos.recon_day import CLEAN, DIRTY, ReconDay, build_day, hand_change
from tillbridge.streams.ledger.ids import sale_id
from tillbridge.streams.ops.reconcile.command import run as reconcile
from tillbridge.streams.runtime.auth_config import authenticator
from tillbridge.streams.runtime.settings import Settings


def _client(settings: Settings) -> NetSuiteClient:
    base = settings.netsuite_base_url or ""
    return NetSuiteClient(base, authenticator(settings, base))


def _outcomes(tail: TopicTail, kind: str) -> dict[str, dict[str, Any]]:
    """Latest results record per id of one event type."""
    out = {}
    for rec in tail.records[topics.RESULTS]:
        doc = json.loads(rec.value or b"{}")
        if doc.get("event_type") == kind:
            out[str(doc.get("pos_transaction_id") or doc.get("settlement_id"))] = doc
    return out


def _wait(tail: TopicTail, kind: str, ids: set[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail.poll(0.3)
        got = _outcomes(tail, kind)
        if ids <= set(got):
            return got
    raise TimeoutError(f"{kind}: no outcome for {sorted(ids - set(_outcomes(tail, kind)))}")


def _publish(settings: Settings, events: list[Any]) -> None:
    stats = publish_generated(settings.kafka_bootstrap_servers or "",
                              settings.schema_registry_url or "", events)
    if not stats.ok:
        raise RuntimeError(f"publishing failed: {stats.errors}")


async def _change_by_hand(settings: Settings, store: str, txn: str) -> dict[str, str]:
    async with _client(settings) as client:
        record = await client.get("cashSale", eid(sale_id(store, txn)), expand=True)
        await client.patch("cashSale", str(record["id"]), hand_change(record))
        after = await client.get("cashSale", str(record["id"]))
    return {"before": _money(record["total"]), "after": _money(after["total"])}


async def _banked(settings: Settings, closes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per register close: its deposit and over/short journal as NetSuite holds them."""
    out = []
    async with _client(settings) as client:
        for close in closes:
            row: dict[str, Any] = {"store_id": close["store_id"],
                                   "register_id": close["register_id"],
                                   "settlement_id": close["settlement_id"]}
            for kind, rtype, ext in (("deposit", "deposit", "dep"),
                                     ("journal", "journalEntry", "je")):
                try:
                    rec = await client.get(rtype, eid(f"pos-{ext}-{close['store_id']}-"
                                                      f"{close['settlement_id']}"),
                                           expand=True)
                except NetSuiteError:
                    continue
                if kind == "deposit":
                    row["deposit_total"] = _money(rec["total"])
                else:
                    lines = rec.get("line", {}).get("items", [])
                    row["over_short"] = _money(sum((Decimal(str(ln.get("debit") or 0))
                                                    for ln in lines), Decimal(0)))
            out.append(row)
    return out


def _money(value: object) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01")))


def run_day(settings: Settings, day: ReconDay | None = None,
            timeout: float = 60.0) -> dict[str, Any]:
    """Publish the day, let the worker settle it, change one sale by hand, reconcile."""
    day = day or build_day()
    tail = TopicTail(settings.kafka_bootstrap_servers or "", [topics.RESULTS])
    try:
        _publish(settings, [*day.sales, *day.returns])
        sales = {str(e.value["pos_transaction_id"]) for e in day.sales
                 if isinstance(e.value, dict)}
        _wait(tail, "sale", sales, timeout)
        _wait(tail, "return", {day.injected["wrong_refund"]}, timeout)
        _publish(settings, day.closes)
        closes = _wait(tail, "settlement", {c["settlement_id"] for c in day.closes_json},
                       timeout)
    finally:
        tail.close()
    changed = asyncio.run(_change_by_hand(settings, DIRTY, day.injected["changed_in_netsuite"]))
    recon = {}
    for store in (CLEAN, DIRTY):
        code, reports, summary = reconcile(day.business_date, store, settings)
        recon[store] = {"exit_code": code, "balanced": summary["balanced"],
                        "drift_count": summary["drift_count"],
                        "drift_amount": summary["drift_amount"],
                        "differences": [d for r in reports for d in r.to_json()["drifts"]]}
    return {"business_date": day.business_date, "injected": day.injected,
            "changed_in_netsuite": changed,
            "settlements": {k: {"outcome": v["outcome"],
                                "waiting_for": v.get("waiting_for")}
                            for k, v in sorted(closes.items())},
            "banked": asyncio.run(_banked(settings, day.closes_json)),
            "reconciliation": recon}
