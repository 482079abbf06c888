"""What `tillbridge reconcile` reads: the POS events of the day on the input topics, the
results topic and the dead letters (each read to its end by reading, not by watermarks),
then NetSuite's side by SuiteQL. Turns them into ``DayInputs`` for the pure comparison.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import Record
from tillbridge.connectors.kafka.serde import AvroCodec, DecodeError
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteError, default_base_url
from tillbridge.streams.ops.dlq.kafka_backend import read_to_end, to_dead_letter
from tillbridge.streams.reconcile import netsuite_side, pos_side
from tillbridge.streams.reconcile.compare import DayInputs, Register
from tillbridge.streams.reconcile.model import PosTxn
from tillbridge.streams.runtime.settings import Settings

POS_TOPICS = (topics.SALE.name, topics.RETURN.name, topics.SETTLEMENT.name)


class CannotRun(Exception):
    """Reconciliation could not read one side (exit 2)."""


@dataclass
class Gathered:
    day: DayInputs
    stores: list[str]
    sources: dict[str, Any] = field(default_factory=dict)


@dataclass
class _PosDay:
    events: list[PosTxn] = field(default_factory=list)
    journals: dict[Register, list[PosTxn]] = field(default_factory=dict)
    tenders: dict[Register, Any] = field(default_factory=dict)


def _in_scope(doc: dict[str, Any], business_date: str, store: str | None) -> bool:
    return doc.get("business_date") == business_date and (store is None or
                                                          doc.get("store_id") == store)


def pos_day(records: Iterable[Record], codec: AvroCodec, business_date: str,
            store: str | None) -> tuple[_PosDay, int]:
    """The day's receipts and register closes; the count of undecodable records skipped
    (they are dead-lettered by the worker and show up from the DLQ side)."""
    out, bad = _PosDay(), 0
    for rec in records:
        try:
            doc = codec.decode(rec.value or b"", rec.topic)
        except DecodeError:
            bad += 1
            continue
        if not _in_scope(doc, business_date, store):
            continue
        if rec.topic == topics.SALE.name:
            out.events.append(pos_side.sale_txn(doc))  # type: ignore[arg-type]
        elif rec.topic == topics.RETURN.name:
            out.events.append(pos_side.return_txn(doc))  # type: ignore[arg-type]
        elif doc.get("report_type") == "Z":
            reg = (doc["store_id"], doc["register_id"])
            lines = pos_side.journal(doc)  # type: ignore[arg-type]
            if lines:
                out.journals[reg] = lines
            out.tenders[reg] = pos_side.zreport_tenders(doc)  # type: ignore[arg-type]
    # the same receipt read twice (a POS resend) is one receipt
    out.events = list({(e.kind, e.txn_id): e for e in out.events}.values())
    return out, bad


def traces(records: Iterable[Record], codec: AvroCodec, txns: set[str]
           ) -> tuple[list[dict[str, Any]], list[pos_side.DeadLetterTrace]]:
    """Results records and dead letters of the receipts in ``txns``."""
    results, letters = [], []
    for rec in records:
        if rec.topic == topics.RESULTS:
            try:
                doc = json.loads(rec.value or b"{}")
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("pos_transaction_id") in txns:
                results.append(doc)
            continue
        letter = to_dead_letter(rec, codec)
        txn = letter.transaction_id
        if txn in txns:
            letters.append(pos_side.DeadLetterTrace(txn, letter.reason, letter.stage,
                                                    letter.id))
    return results, letters


async def read_netsuite(settings: Settings, business_date: str, stores: Sequence[str]
                        ) -> tuple[list[Any], int, str]:
    from tillbridge.streams.runtime.auth_config import authenticator

    base_url = settings.netsuite_base_url or default_base_url(settings.netsuite_account_id)
    requests = 0

    def count(_type: str, _method: str, _status: int | None, _seconds: float) -> None:
        nonlocal requests
        requests += 1

    # One slot: the pages are read one after another, so reconciling never takes more
    # than one request of the account's concurrency limit away from the workers.
    client = NetSuiteClient(base_url, authenticator(settings, base_url),
                            timeout=settings.netsuite_timeout_s, max_connections=1,
                            on_request=count)
    try:
        async with client:
            txns, _rows = await netsuite_side.read_day(client, business_date, stores)
    except NetSuiteError as exc:
        raise CannotRun(f"NetSuite at {base_url}: {exc}") from exc
    return txns, requests, base_url


def gather(settings: Settings, business_date: str, store: str | None,
           timeout_s: float = 60.0) -> Gathered:
    """Both sides of one business day (optionally one store)."""
    if not settings.kafka_bootstrap_servers or not settings.schema_registry_url:
        raise CannotRun("set KAFKA_BOOTSTRAP_SERVERS and SCHEMA_REGISTRY_URL")
    codec = AvroCodec(settings.schema_registry_url)
    try:
        pos_records = read_to_end(settings.kafka_bootstrap_servers, POS_TOPICS,
                                  timeout=timeout_s)
        trace_records = read_to_end(settings.kafka_bootstrap_servers,
                                    [topics.RESULTS, *topics.DLQ_TOPICS], timeout=timeout_s)
    except (TimeoutError, RuntimeError) as exc:
        raise CannotRun(f"Kafka: {exc}") from exc
    pos, undecodable = pos_day(pos_records, codec, business_date, store)
    txns = {e.txn_id for e in pos.events} | {t.txn_id for j in pos.journals.values()
                                              for t in j}
    results, letters = traces(trace_records, codec, txns)
    stores = sorted({store} if store else {e.store_id for e in pos.events} |
                    {reg[0] for reg in pos.tenders})
    netsuite, requests, base_url = asyncio.run(read_netsuite(settings, business_date, stores))
    day = DayInputs(business_date, pos.events, netsuite, pos_side.states(results, letters),
                    pos.journals, pos.tenders)
    return Gathered(day, stores, {"netsuite": base_url, "netsuite_rows": len(netsuite),
                                  "netsuite_requests": requests,
                                  "pos_events": len(pos.events),
                                  "register_closes": len(pos.tenders),
                                  "undecodable_skipped": undecodable,
                                  "results_read": len(results),
                                  "dead_letters_read": len(letters)})
