"""Sink benchmarks, no Kafka: real-time posting vs backlog drain at NetSuite's pace.

The simulator runs with the account's concurrency limit (15 in flight) and a fixed 200 ms
per request, so no client can do better than 15 / 0.2 s = 75 requests/s. Both parts run
the worker's real code (``SalePoster``, ``BatchWriter``) over real HTTP:

- real-time: enriched POS sales posted one by one (customer upsert when new, cashSale
  create) by enough concurrent tasks to keep every slot busy; ``sink ratio`` is the
  achieved requests/s over the 75/s ceiling (target >= 0.9), with no sale failed by 429;
- drain: as many other sales' cashSales through async batch jobs (<= 100 per request);
  ``drain ratio`` is records/s over the same 75/s (target >= 10).

A chunk of 100 costs four requests in a row (pre-check query, submit, poll, id query), so
a drain is latency-bound (>= 0.8 s per wave of up to 15 chunks) until more than 15 chunks
are in flight, and request-bound after that (75 / 4 chunks/s = 1875 records/s, ratio 25).
The default size, 1400 sales (14 chunks), is one full wave. The simulator runs as its own
process, as in the other benches, so it does not share a GIL with the code measured.

Benches measure and print; they do not assert.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tillbridge.connectors.netsuite import (
    ConcurrencyLimiter,
    NetSuiteClient,
    NetSuiteCredentials,
    ReliableClient,
)
from tillbridge.connectors.netsuite.aio import AiohttpTransport
from tillbridge.connectors.netsuite.batch import BatchWriter, PollPolicy
from tillbridge.connectors.netsuite.errors import NetSuiteUnavailable
from tillbridge.devstack.pos.generator import generate
from tillbridge.devstack.stack import SimProcess
from tillbridge.streams.flows.sale_writer import Posted, SalePoster
from tillbridge.streams.ledger.sale_records import build_cash_sale, sale_external_id
from tillbridge.streams.ledger.tenders import plan_tenders
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.enrich import Enrichment, enrich_sale
from tillbridge.streams.stages.records import SaleRec

LIMIT = 15
LATENCY_MS = 200.0
CEILING = LIMIT / (LATENCY_MS / 1000)  # requests/s any client can get through
POSTERS = 2 * LIMIT  # more tasks than slots: one's CPU work overlaps the others' waits
DEFAULT_SALES = 1400


@dataclass
class Realtime:
    sales: int
    posted: int
    rejected: int
    failed_429: int  # sales that ended in a 429 (rejection or NetSuiteUnavailable)
    responses_429: int  # 429 answers seen (each one retried)
    requests: int  # answered requests other than 429
    seconds: float
    peak_in_flight: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def ratio(self) -> float:
        return self.rate / CEILING


@dataclass
class Drain:
    records: int
    created: int
    failed: int
    requests: int
    responses_429: int
    seconds: float
    jobs: Counter[str]
    held: int
    async_delay_ms: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def ratio(self) -> float:
        return self.rate / CEILING


class _Count:
    """``on_request`` hook: answers by status (None: no answer)."""

    def __init__(self) -> None:
        self.by_status: Counter[int | None] = Counter()

    def __call__(self, record_type: str, method: str, status: int | None, seconds: float) -> None:
        self.by_status[status] += 1

    @property
    def answered(self) -> int:
        return sum(n for s, n in self.by_status.items() if s is not None and s != 429)


@dataclass(frozen=True)
class Sim:
    """The simulator process as the bench sees it (its own process: no shared GIL)."""

    base_url: str
    credentials: NetSuiteCredentials


def _admin(sim: Sim, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = httpx.post(f"{sim.base_url}/__sim/{path}", json=body)
    resp.raise_for_status()
    return resp.json() if resp.content else {}


def _stats(sim: Sim) -> dict[str, Any]:
    return httpx.get(f"{sim.base_url}/__sim/stats").json()


def _pace(sim: Sim) -> None:
    """NetSuite's pace: set after reference data is loaded (a reset restores latency 0)."""
    _admin(sim, "config", {"concurrency_limit": LIMIT, "latency_ms": LATENCY_MS})


def _client(sim: Sim, count: _Count) -> NetSuiteClient:
    """As the worker builds it: one limiter of the worker's share, aiohttp transport."""
    return NetSuiteClient(sim.base_url, sim.credentials, limiter=ConcurrencyLimiter(LIMIT),
                          on_request=count,
                          transport=AiohttpTransport(max_connections=LIMIT, timeout=30.0))


async def _reference(sim: Sim) -> ReferenceData:
    async with NetSuiteClient(sim.base_url, sim.credentials) as ns:
        ref = ReferenceData()
        await ref.load(ns)
    return ref


def _enriched(n: int, seed: int, maps: Mappings,
              ref: ReferenceData) -> list[tuple[SaleRec, Enrichment]]:
    out: list[tuple[SaleRec, Enrichment]] = []
    for event in generate(n, seed=seed, dirty=0.0):
        sale: SaleRec = event.value  # type: ignore[assignment]
        enr = enrich_sale(sale, maps, ref)
        if isinstance(enr, Enrichment):
            out.append((sale, enr))
    return out


def _one_record(sale: SaleRec) -> bool:
    plan = plan_tenders(sale)
    return plan.record_type == "cashSale" and not plan.gift


async def realtime(sim: Sim, work: list[tuple[SaleRec, Enrichment]],
                   maps: Mappings) -> Realtime:
    count = _Count()
    outcomes: Counter[str] = Counter()
    queue: Iterator[tuple[SaleRec, Enrichment]] = iter(work)
    async with _client(sim, count) as ns:
        poster = SalePoster(ReliableClient(ns), discount_item=maps.discount_item)

        async def post_all() -> None:
            for sale, enr in queue:  # a shared iterator: each sale is taken once
                try:
                    result = await poster.post(sale, enr)
                except NetSuiteUnavailable:
                    outcomes["failed_429"] += 1
                    continue
                if isinstance(result, Posted):
                    outcomes["posted"] += 1
                else:
                    rejection, _ = result
                    outcomes["rejected"] += 1
                    if rejection.inputs.get("status") == "429":
                        outcomes["failed_429"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(post_all() for _ in range(POSTERS)))
        seconds = time.perf_counter() - started
        peak = ns.limiter.peak
    return Realtime(len(work), outcomes["posted"], outcomes["rejected"], outcomes["failed_429"],
                    count.by_status[429], count.answered, seconds, peak)


async def drain(sim: Sim, work: list[tuple[SaleRec, Enrichment]],
                maps: Mappings) -> Drain:
    # Existing customers only (the guest for a new shopper): a drain posts transactions;
    # one-tender sales only (split tenders and gift cards need look-ups: single requests).
    records = [(sale_external_id(sale),
                build_cash_sale(sale, enr, enr.customer.id or maps.guest_customer,
                                maps.discount_item))
               for sale, enr in work if _one_record(sale)]
    count = _Count()
    jobs: Counter[str] = Counter()
    async with _client(sim, count) as ns:
        writer = BatchWriter(ReliableClient(ns), poll=PollPolicy(first_s=0.05, max_s=1.0),
                             on_job=lambda state: jobs.update([state]))
        started = time.perf_counter()
        outcomes = await writer.write("cashSale", records)
        seconds = time.perf_counter() - started
    st = _stats(sim)
    return Drain(len(records), sum(o.created for o in outcomes),
                 sum(o.error is not None for o in outcomes), count.answered,
                 count.by_status[429], seconds, jobs,
                 st["records"].get("cashSale", {}).get("held", 0),
                 st["config"]["async_delay_ms"])


def run(n: int = DEFAULT_SALES) -> tuple[Realtime, Drain]:
    """Both parts on one simulator; prints the figures and the two ratio lines."""
    maps = Mappings.load()
    settings = Settings.from_env(kafka_bootstrap_servers=None, schema_registry_url=None,
                                 netsuite_base_url=None)
    proc = SimProcess(settings)
    try:
        sim = Sim(proc.base_url, NetSuiteCredentials(
            settings.netsuite_account_id, settings.netsuite_consumer_key,
            settings.netsuite_consumer_secret, settings.netsuite_token_id,
            settings.netsuite_token_secret))
        ref = asyncio.run(_reference(sim))
        live = _enriched(n, 21, maps, ref)
        backlog = _enriched(n, 22, maps, ref)
        _pace(sim)
        rt = asyncio.run(realtime(sim, live, maps))
        print(f"sink real-time ({LIMIT} in flight, {LATENCY_MS:.0f} ms/request, ceiling "
              f"{CEILING:.0f} requests/s): {rt.sales} POS sales in {rt.seconds:.1f} s, "
              f"{rt.posted} posted, {rt.rejected} rejected, peak in flight {rt.peak_in_flight}")
        print(f"  requests/s: {rt.rate:.1f}")
        print(f"  requests per POS sale: {rt.requests / rt.sales:.2f}")
        print(f"  events failed by 429: {rt.failed_429} ({rt.responses_429} 429 answers, "
              "each retried)")
        print(f"sink ratio: {rt.ratio:.2f}")
        _admin(sim, "reset")
        _pace(sim)
        dr = asyncio.run(drain(sim, backlog, maps))
        jobs = ", ".join(f"{k} {v}" for k, v in sorted(dr.jobs.items()))
        print(f"drain (async batch jobs of <= 100, same {LIMIT} in flight and "
              f"{LATENCY_MS:.0f} ms/request): {dr.records} cashSales in {dr.seconds:.2f} s, "
              f"{dr.created} created, {dr.failed} failed, {dr.held} held by NetSuite; "
              f"jobs: {jobs}")
        print(f"  records/s: {dr.rate:.0f}; requests: {dr.requests} "
              f"({dr.requests / dr.records:.3f} per record), {dr.responses_429} 429 answers")
        print(f"  simulator: {LATENCY_MS:.0f} ms on every HTTP request (submit, poll, SuiteQL, "
              "task read), none per record; a job's tasks all run")
        print(f"  {dr.async_delay_ms:.0f} ms after submission. NetSuite's REST async processors "
              "take time per record,")
        print("  so this ratio is the request-budget bound (one wave of chunks here), not a "
              "forecast for a real account.")
        print(f"drain ratio: {dr.ratio:.1f}")
    finally:
        proc.stop()
    return rt, dr


if __name__ == "__main__":
    run()
