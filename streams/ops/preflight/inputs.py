"""Gather what preflight checks: the mappings, a POS catalogue, till traffic, a NetSuite snapshot.

Anything that stops preflight from judging (unreadable file, NetSuite or Kafka unreachable)
raises :class:`PreflightAbort`, which the command turns into exit code 2 -- distinct from
"ran and found gaps" (1), so a deploy pipeline can tell a broken check from a failed one.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tillbridge.connectors.kafka.topics import SALE
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteError, default_base_url
from tillbridge.streams.ops.preflight.model import (
    NetSuiteSnapshot,
    NsItem,
    NsRef,
    PosUsage,
    RolloutConfig,
    TrafficSummary,
    normalise_tier,
)
from tillbridge.streams.refdata.mappings import MappingError, Mappings
from tillbridge.streams.runtime.settings import Settings


class PreflightAbort(Exception):
    """Preflight could not run; the message says what to fix (exit code 2)."""


# -- mappings --------------------------------------------------------------------------------

def load_rollout_config(path: str | Path | None = None) -> RolloutConfig:
    """Mappings file (default: the packaged one) with the optional rollout keys checked."""
    try:
        return RolloutConfig(Mappings.load(path))
    except (AttributeError, TypeError) as exc:
        raise MappingError(f"{path or 'packaged mappings.json'}: malformed mappings: "
                           f"{exc}") from exc


def rollout_config(doc: dict[str, Any], source: str = "<memory>") -> RolloutConfig:
    """Parse ``skus``, ``price_levels`` and ``customer_strategy`` next to the core mappings."""
    try:
        mappings = Mappings.from_dict(doc, source)
    except (AttributeError, TypeError) as exc:
        raise MappingError(f"{source}: malformed mappings: {exc}") from exc
    return RolloutConfig(mappings)


# -- POS catalogue ---------------------------------------------------------------------------

class CatalogueError(ValueError):
    """The catalogue file cannot be read; the message names the file and row."""


def read_catalogue(path: str | Path) -> PosUsage:
    """A POS catalogue export: CSV with a header row, or JSON lines (one object per SKU row).

    Rows may repeat a SKU (one row per price level); ``store_ids`` is semicolon-separated in
    CSV, a list or a semicolon-separated string in JSON lines.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel exports start with a BOM
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read catalogue: {exc.strerror}") from exc
    json_lines = path.suffix.lower() in (".jsonl", ".ndjson", ".json") or text.lstrip(
        ).startswith("{")
    usage = PosUsage()
    rows = _json_rows(text, path) if json_lines else _csv_rows(text, path)
    for where, row in rows:
        _add_catalogue_row(usage, row, where)
    return usage


def _csv_rows(text: str, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "sku" not in header:
        raise CatalogueError(f"{path}: CSV header needs a 'sku' column, got {header}")
    reader.fieldnames = header
    for row in reader:
        yield f"{path}:{reader.line_num}", row


def _json_rows(text: str, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CatalogueError(f"{path}:{n}: not JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise CatalogueError(f"{path}:{n}: expected a JSON object per line")
        yield f"{path}:{n}", {str(k).lower(): v for k, v in row.items()}


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _add_catalogue_row(usage: PosUsage, row: dict[str, Any], where: str) -> None:
    sku = _text(row.get("sku"))
    if not sku:
        raise CatalogueError(f"{where}: row has no sku")
    price = None
    if _text(row.get("price")):
        try:
            price = Decimal(_text(row["price"]))
        except InvalidOperation:
            raise CatalogueError(f"{where}: price {row['price']!r} is not a number") from None
    stores = row.get("store_ids")
    codes = stores if isinstance(stores, list) else _text(stores).split(";")
    codes = [_text(c) for c in codes if _text(c)]
    kwargs = {"tier": normalise_tier(_text(row.get("price_level"))), "price": price,
              "tax_code": _text(row.get("tax_code")) or None,
              "description": _text(row.get("description")) or None}
    usage.use_sku(sku, **kwargs)  # type: ignore[arg-type]
    for code in codes:
        usage.use_sku(sku, store=code, **kwargs)  # type: ignore[arg-type]


# -- till traffic ----------------------------------------------------------------------------

def usage_from_sales(sales: Iterable[dict[str, Any]]) -> PosUsage:
    """What decoded sales use: SKUs per store and tier, tax codes, tenders, split tenders."""
    usage = PosUsage()
    for sale in sales:
        store = _text(sale.get("store_id"))
        usage.stores.add(store)
        for line in sale.get("lines") or []:
            usage.use_sku(_text(line.get("sku")), store=store,
                          tier=normalise_tier(line.get("price_level")),
                          tax_code=line.get("tax_code") or None,
                          description=line.get("description"))
        codes = [_text(t.get("tender_type")) for t in sale.get("tenders") or []]
        for code in codes:
            usage.use_tender(code)
        if len(codes) > 1:
            usage.split_sales += 1
    return usage


def read_traffic(bootstrap: str, registry_url: str, topic: str, max_events: int, *,
                 first_wait_s: float = 8.0, idle_s: float = 1.5, timeout_s: float = 120.0
                 ) -> tuple[PosUsage, TrafficSummary]:
    """Read ``topic`` from the start until ``max_events``, or until it goes quiet.

    Watermarks are not trusted (Tansu reports wrong ones), so "caught up" means no new
    record for ``idle_s`` once reading has started (``first_wait_s`` before the first one).
    """
    from confluent_kafka import KafkaException

    from tillbridge.connectors.kafka.reader import TopicTail
    from tillbridge.connectors.kafka.serde import AvroCodec, DecodeError

    try:
        tail = TopicTail(bootstrap, [topic])
    except KafkaException as exc:
        raise PreflightAbort(f"Kafka at {bootstrap} unreachable: {exc}") from exc
    with tail:
        started = last_new = time.monotonic()
        while tail.count(topic) < max_events:
            now = time.monotonic()
            quiet = first_wait_s if tail.count(topic) == 0 else idle_s
            if now - last_new >= quiet or now - started >= timeout_s:
                break
            try:
                if tail.poll(0.25):
                    last_new = time.monotonic()
            except RuntimeError as exc:
                raise PreflightAbort(str(exc)) from exc
        records = tail.records[topic][:max_events]
    codec = AvroCodec(registry_url)
    sales, undecodable, other = [], 0, 0
    for rec in records:
        try:
            event = codec.decode(rec.value or b"", topic)
        except DecodeError as exc:
            if exc.retryable:
                raise PreflightAbort(f"schema registry {registry_url} unreachable: "
                                     f"{exc.message}") from exc
            undecodable += 1
            continue
        if "lines" in event and "store_id" in event:
            sales.append(event)
        else:
            other += 1
    return usage_from_sales(sales), TrafficSummary(topic, len(sales), undecodable, other)


# -- NetSuite snapshot -----------------------------------------------------------------------

class _Unreadable(Exception):
    """A SuiteQL table (or a column it cannot do without) is not readable on this account."""


_UNKNOWN = re.compile(r"(?:Unknown identifier|Field) '([^']+)'", re.IGNORECASE)


async def _select(client: NetSuiteClient, table: str, columns: Iterable[str],
                  required: Iterable[str], where: str = ""
                  ) -> tuple[list[dict[str, Any]], set[str]]:
    """Rows and the columns this account has: unknown optional columns are dropped and retried.

    Accounts differ (features, custom fields, SuiteTax), so a column the check can live
    without must not sink the whole query.
    """
    cols, must = list(columns), set(required)
    while True:
        try:
            # Table and columns are constants here; values in `where` go through _literal.
            query = f"SELECT {', '.join(cols)} FROM {table}{where}"  # noqa: S608
            rows = await client.suiteql(query)
            return rows, set(cols)
        except NetSuiteError as exc:
            if exc.status != 400:
                raise
            m = _UNKNOWN.search(exc.detail)
            bad = m.group(1).lower() if m else ""
            if bad not in cols or bad in must:
                raise _Unreadable(f"{table}: {exc.detail}") from exc
            cols.remove(bad)


def _active(row: dict[str, Any]) -> bool:
    return row.get("isinactive") != "T"


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _literal(value: str) -> str:
    return value if value.isdigit() else "'" + value.replace("'", "''") + "'"


async def _items(client: NetSuiteClient, ns: NetSuiteSnapshot) -> None:
    rows, cols = await _select(client, "item", ("id", "itemid", "isinactive", "itemtype",
                                                "taxschedule", "baseprice", "matrixtype"),
                               ("id", "itemid"))
    ns.has_taxschedule, ns.has_baseprice = "taxschedule" in cols, "baseprice" in cols
    ns.items = {r["itemid"]: NsItem(r["id"], r["itemid"], _active(r), r.get("itemtype"),
                                    r.get("taxschedule"), _decimal(r.get("baseprice")),
                                    str(r.get("matrixtype", "")).upper() == "PARENT")
                for r in rows}


async def _stocking(client: NetSuiteClient, ns: NetSuiteSnapshot, locations: set[str]) -> None:
    stocked: dict[str, set[str]] = {}
    try:
        for loc in sorted(locations):
            rows, _ = await _select(client, "aggregateitemlocation", ("item", "location"),
                                    ("item", "location"), f" WHERE location = {_literal(loc)}")
            for r in rows:
                stocked.setdefault(r["item"], set()).add(r["location"])
    except _Unreadable:
        ns.stocked = None
        return
    ns.stocked = stocked


async def _refs(client: NetSuiteClient, table: str, name_col: str, extra: tuple[str, ...] = ()
                ) -> dict[str, NsRef]:
    rows, _ = await _select(client, table, ("id", name_col, "isinactive", *extra), ("id",))
    return {r["id"]: NsRef(r["id"], r.get(name_col, ""), _active(r), r.get("subsidiary"))
            for r in rows}


async def _guest(client: NetSuiteClient, ns: NetSuiteSnapshot, guest_id: str) -> None:
    rows, cols = await _select(
        client, "customer", ("id", "entityid", "isinactive", "subsidiary",
                             "custentity_loyalty_id"), ("id",),
        f" WHERE id = {_literal(guest_id)}")
    ns.loyalty_field = "custentity_loyalty_id" in cols
    ns.guest = next((NsRef(r["id"], r.get("entityid", ""), _active(r), r.get("subsidiary"))
                     for r in rows), None)


async def _pricing(client: NetSuiteClient, ns: NetSuiteSnapshot) -> None:
    try:
        levels, _ = await _select(client, "pricelevel", ("id", "name"), ("id", "name"))
        rows, _ = await _select(client, "pricing", ("item", "pricelevel", "unitprice"),
                                ("item", "pricelevel"))
    except _Unreadable:
        return  # not exposed: the price checks warn instead of failing
    ns.price_levels = {r["id"]: r["name"] for r in levels}
    prices: dict[tuple[str, str], Decimal | None] = {}
    for r in rows:
        prices.setdefault((r["item"], r["pricelevel"]), _decimal(r.get("unitprice")))
    ns.prices = prices


async def load_snapshot(client: NetSuiteClient, cfg: RolloutConfig,
                        usage: PosUsage) -> NetSuiteSnapshot:
    """Read only what the checks need; optional tables degrade to "could not verify"."""
    ns = NetSuiteSnapshot()
    try:
        await _items(client, ns)
        ns.locations = await _refs(client, "location", "name", ("subsidiary",))
        try:
            ns.subsidiaries = await _refs(client, "subsidiary", "name")
        except _Unreadable:
            ns.subsidiaries = None
        ns.tax_codes = await _refs(client, "salestaxitem", "itemid")
        ns.payment_methods = await _refs(client, "paymentmethod", "name")
        await _guest(client, ns, cfg.mappings.guest_customer)
        if usage.skus:
            used = {cfg.mappings.stores[s].location for u in usage.skus.values()
                    for s in u.stores if s in cfg.mappings.stores}
            await _stocking(client, ns, used)
            await _pricing(client, ns)
    except _Unreadable as exc:
        raise PreflightAbort(f"NetSuite SuiteQL cannot read {exc}") from exc
    return ns


def _netsuite_abort(exc: NetSuiteError, base_url: str) -> PreflightAbort:
    if exc.status is None:
        return PreflightAbort(f"NetSuite unreachable at {base_url} ({exc.code}); set "
                              "NETSUITE_BASE_URL")
    if exc.auth:
        return PreflightAbort(f"NetSuite refused the credentials ({exc.status} {exc.code}); "
                              "check NETSUITE_* settings and the role's SuiteQL permissions")
    return PreflightAbort(f"NetSuite error: {exc}")


async def fetch_snapshot(settings: Settings, cfg: RolloutConfig,
                         usage: PosUsage) -> tuple[NetSuiteSnapshot, str]:
    """Connect with the configured login (TBA or OAuth 2.0) and read the snapshot."""
    from tillbridge.streams.runtime.auth_config import authenticator

    base_url = settings.netsuite_base_url or default_base_url(settings.netsuite_account_id)
    client = NetSuiteClient(base_url, authenticator(settings, base_url),
                            timeout=settings.netsuite_timeout_s,
                            max_connections=settings.netsuite_max_concurrency)
    try:
        async with client:
            return await load_snapshot(client, cfg, usage), base_url
    except NetSuiteError as exc:
        raise _netsuite_abort(exc, base_url) from exc


# -- everything together ---------------------------------------------------------------------

@dataclass
class Inputs:
    config: RolloutConfig
    usage: PosUsage
    snapshot: NetSuiteSnapshot
    traffic: TrafficSummary | None = None
    sources: dict[str, object] = field(default_factory=dict)


def gather(settings: Settings, *, catalogue: Path | None = None, from_topic: bool = False,
           topic: str | None = None, max_events: int = 10_000,
           mappings: Path | None = None) -> Inputs:
    """Mappings, then POS usage (catalogue and/or traffic), then the NetSuite snapshot."""
    try:
        cfg = load_rollout_config(mappings or settings.mappings_path)
        usage = read_catalogue(catalogue) if catalogue else PosUsage()
    except (MappingError, CatalogueError) as exc:
        raise PreflightAbort(str(exc)) from exc
    sources: dict[str, object] = {
        "mappings": cfg.mappings.source, "mappings_version": cfg.mappings.version,
        "catalogue": str(catalogue) if catalogue else None,
        "catalogue_skus": len(usage.skus)}
    traffic = None
    if from_topic:
        if not settings.kafka_bootstrap_servers or not settings.schema_registry_url:
            raise PreflightAbort("--from-topic needs KAFKA_BOOTSTRAP_SERVERS and "
                                 "SCHEMA_REGISTRY_URL")
        seen, traffic = read_traffic(settings.kafka_bootstrap_servers,
                                     settings.schema_registry_url, topic or SALE.name,
                                     max_events)
        usage.merge(seen)
        sources.update(topic=traffic.topic, events=traffic.events,
                       undecodable=traffic.undecodable)
    snapshot, base_url = asyncio.run(fetch_snapshot(settings, cfg, usage))
    sources.update(netsuite=base_url, skus=len(usage.skus))
    return Inputs(cfg, usage, snapshot, traffic, sources)
