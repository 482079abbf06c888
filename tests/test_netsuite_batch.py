"""Backlog drain through async batch jobs, against the simulator over real HTTP.

The property under test is "never twice": whatever happens to a submission (a repeat of
the same chunk, records that already exist, the answer lost after the commit, a job that
outlives the poll deadline), NetSuite ends up holding each externalId once, and every
input record gets its verdict in input order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from tillbridge.connectors.netsuite import (
    ConcurrencyLimiter,
    NetSuiteClient,
    NetSuiteUnavailable,
    Rejected,
    ReliableClient,
    RetryPolicy,
)
from tillbridge.connectors.netsuite.batch import (
    BatchOutcome,
    BatchWriter,
    PollPolicy,
    chunk_key,
    chunks,
    id_query,
    task_links,
)
from tillbridge.devstack.netsuite_sim import SimServer

T = TypeVar("T")
GOOD = {"item": {"id": "1001"}, "quantity": 2, "rate": 10}
INACTIVE = {"item": {"id": "1007"}, "quantity": 1, "rate": 27.99}  # TEE-007, inactive in seed
CASH_SALE = {"entity": {"id": "5001"}, "location": {"id": "1"}, "paymentOption": {"id": "2"},
             "item": {"items": [GOOD]}}
BAD_SALE = {**CASH_SALE, "item": {"items": [INACTIVE]}}
FAST = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, throttle_base_s=0.01,
                   throttle_max_s=0.05)
QUICK_POLL = PollPolicy(first_s=0.01, factor=2.0, max_s=0.05, deadline_s=10.0)


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(async_delay_ms=5) as sim:
        yield sim


def admin(sim: SimServer, path: str, body: dict[str, Any] | None = None) -> None:
    httpx.post(f"{sim.base_url}/__sim/{path}", json=body).raise_for_status()


def stats(sim: SimServer) -> dict[str, Any]:
    return httpx.get(f"{sim.base_url}/__sim/stats").json()


def held(sim: SimServer, record_type: str = "cashSale") -> int:
    return stats(sim)["records"].get(record_type, {}).get("held", 0)


def run(sim: SimServer, fn: Callable[[NetSuiteClient], Awaitable[T]], *, timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None) -> T:
    async def go() -> T:
        async with NetSuiteClient(sim.base_url, sim.credentials, timeout=timeout,
                                  limiter=ConcurrencyLimiter(5), transport=transport) as ns:
            return await fn(ns)
    return asyncio.run(go())


def write(sim: SimServer, records: list[tuple[str, dict[str, Any]]], *,
          record_type: str = "cashSale", jobs: list[str] | None = None,
          seen: list[BatchOutcome] | None = None, timeout: float = 10.0,
          poll: PollPolicy = QUICK_POLL, use_suiteql: bool = True,
          transport: httpx.AsyncBaseTransport | None = None) -> list[BatchOutcome]:
    async def go(ns: NetSuiteClient) -> list[BatchOutcome]:
        writer = BatchWriter(ReliableClient(ns, FAST), poll=poll, use_suiteql=use_suiteql,
                             on_job=(jobs if jobs is not None else []).append,
                             on_record=(seen if seen is not None else []).append)
        return await writer.write(record_type, records)
    return run(sim, go, timeout=timeout, transport=transport)


def sales(prefix: str, n: int, body: dict[str, Any] = CASH_SALE) -> list[tuple[str, dict]]:
    return [(f"{prefix}-{i:03d}", body) for i in range(n)]


def eid_ids(sim: SimServer, external_ids: list[str]) -> dict[str, str]:
    """What NetSuite holds, read back with one SuiteQL query (also exercises ``IN``)."""
    marks = ", ".join("?" * len(external_ids))
    rows = run(sim, lambda ns: ns.suiteql(
        f"SELECT id, externalid FROM transaction WHERE externalid IN ({marks})",  # noqa: S608
        params=external_ids))
    return {r["externalid"]: r["id"] for r in rows}


# -- pure helpers --------------------------------------------------------------------------

def test_chunk_key_is_a_stable_uuid_per_type_and_ids() -> None:
    key = chunk_key("cashSale", ["pos-sale-a", "pos-sale-b"])
    assert uuid.UUID(key) and key == chunk_key("cashsale", ["POS-SALE-A", "pos-sale-b"])
    assert key != chunk_key("cashSale", ["pos-sale-b", "pos-sale-a"])
    assert key != chunk_key("invoice", ["pos-sale-a", "pos-sale-b"])
    assert [len(c) for c in chunks([("x", {})] * 250)] == [100, 100, 50]
    with pytest.raises(ValueError):
        chunks([], 101)


def test_id_query_and_task_links_shapes() -> None:
    q = id_query("cashSale", ["a", "b"])
    assert q == ("SELECT id, externalid FROM transaction WHERE recordtype = ? AND "
                 "externalid IN (?, ?)", ["cashsale", "a", "b"])
    assert id_query("customer", ["c"]) == (
        "SELECT id, externalid FROM customer WHERE externalid IN (?)", ["c"])
    assert id_query("vendorBill", ["v"]) is None
    # Oracle's sample lists every task's self link in one item; the sim gives one per item.
    oracle = {"items": [{"links": [{"rel": "self", "href": "/j/1/task/1"},
                                   {"rel": "self", "href": "/j/1/task/2"}]}]}
    sim = {"items": [{"links": [{"rel": "self", "href": "/j/1/task/1"}], "id": "1"},
                     {"links": [{"rel": "self", "href": "/j/1/task/2"}], "id": "2"}]}
    assert task_links(oracle) == task_links(sim) == ["/j/1/task/1", "/j/1/task/2"]


def test_submit_batch_refuses_more_than_100_before_sending(sim: SimServer) -> None:
    with pytest.raises(ValueError):
        run(sim, lambda ns: ns.submit_batch("cashSale", [CASH_SALE] * 101))
    assert stats(sim)["requests"]["total"] == 0


# -- the drain -----------------------------------------------------------------------------

def test_drain_writes_each_record_once_and_reports_in_input_order(sim: SimServer) -> None:
    records = sales("D", 250)
    records[7] = ("D-bad-1", BAD_SALE)
    records[160] = ("D-bad-2", BAD_SALE)
    records.append(("D-003", CASH_SALE))  # a repeat inside the input: written once
    jobs: list[str] = []
    seen: list[BatchOutcome] = []
    out = write(sim, records, jobs=jobs, seen=seen)

    assert [o.external_id for o in out] == [e for e, _ in records]
    assert seen == out, "on_record sees every outcome"
    failed = {o.external_id: o.error for o in out if o.error is not None}
    assert set(failed) == {"D-bad-1", "D-bad-2"}
    err = failed["D-bad-1"]
    assert err is not None and err.status == 400 and err.kind == "permanent"
    assert isinstance(err, Rejected), "a task's stored 4xx becomes the same class"
    assert err.details[0]["o:errorPath"] == "item.items[0].item", "o:errorDetails for the DLQ"
    ok = [o for o in out if o.error is None]
    assert all(o.created and o.via == "batch" for o in ok[:-1])
    assert out[-1].netsuite_id == out[3].netsuite_id and not out[-1].created
    truth = eid_ids(sim, [o.external_id for o in ok])
    assert {o.external_id: o.netsuite_id for o in ok} == truth
    assert held(sim) == 248
    st = stats(sim)
    assert st["async"]["batches"] == 3 and st["async"]["tasks"] == 250
    assert sorted(jobs) == sorted(["submitted"] * 3 + ["succeeded", "finishedWithErrors",
                                                       "finishedWithErrors"])
    # pre-check + submit + polls + id query per chunk, + task list and one result per
    # failed record: a few hundredths of a request per record, not one or two.
    requests = st["requests"]["total"] - 1  # eid_ids' query
    assert requests <= 3 * 6 + 2 + 2, st["requests"]


def test_writing_the_same_records_again_creates_nothing(sim: SimServer) -> None:
    records = sales("R", 120)
    first = write(sim, records)
    jobs: list[str] = []
    again = write(sim, records, jobs=jobs)
    assert jobs == ["skipped", "skipped"], "the pre-check finds them: no job at all"
    assert [o.netsuite_id for o in again] == [o.netsuite_id for o in first]
    assert all(o.created for o in first) and not any(o.created for o in again)
    assert held(sim) == 120 and stats(sim)["async"]["jobs"] == 2


def test_chunk_where_some_records_already_exist(sim: SimServer) -> None:
    existing = {"S-001": "", "S-050": ""}
    for eid in existing:
        existing[eid] = run(sim, lambda ns, e=eid: ns.create("cashSale",
                                                             {**CASH_SALE, "externalId": e}))
    # An externalId held by another transaction type: NetSuite's group-wide namespace.
    other = run(sim, lambda ns: ns.create("invoice", {
        "entity": {"id": "5001"}, "location": {"id": "1"}, "item": {"items": [GOOD]},
        "externalId": "S-099"}))
    out = write(sim, sales("S", 100))
    by_id = {o.external_id: o for o in out}
    for eid, ns_id in existing.items():
        assert (by_id[eid].netsuite_id, by_id[eid].created) == (ns_id, False)
    clash = by_id["S-099"]
    assert clash.netsuite_id is None and clash.error is not None
    assert clash.error.already_exists and other
    assert sum(o.created for o in out) == 97
    assert held(sim) == 99 and held(sim, "invoice") == 1
    assert stats(sim)["async"]["tasks"] == 98, "existing records were not even sent"


def test_commit_then_timeout_on_submit_finds_the_committed_job(sim: SimServer) -> None:
    admin(sim, "config", {"commit_then_timeout": 1, "timeout_after_commit_s": 1.5})
    jobs: list[str] = []
    out = write(sim, sales("T", 30), jobs=jobs, timeout=0.4)
    st = stats(sim)
    assert st["faults"]["commit_then_timeout"] == 1, "the submission's answer was lost"
    assert st["async"]["idempotency_conflicts"] == 1, "the retry met the same key"
    assert st["async"]["jobs"] == 1 and held(sim) == 30
    assert jobs == ["duplicate", "succeeded"]
    # The lost answer was this write's own submission: its records count as created.
    assert all(o.created and o.netsuite_id for o in out)


def test_job_outliving_the_deadline_is_found_again_by_its_key(sim: SimServer) -> None:
    admin(sim, "config", {"async_delay_ms": 700})
    patient = PollPolicy(first_s=0.02, factor=2.0, max_s=0.08, deadline_s=0.3)
    jobs: list[str] = []
    with pytest.raises(NetSuiteUnavailable):
        write(sim, sales("P", 40), jobs=jobs, poll=patient)
    assert jobs == ["submitted", "timeout"]
    polls = stats(sim)["requests"]["total"] - 2  # pre-check + submit
    assert 2 <= polls <= 7, "bounded backoff, not a busy poll"
    assert held(sim) == 0, "nothing ran yet"

    jobs.clear()
    out = write(sim, sales("P", 40), jobs=jobs)
    assert jobs == ["duplicate", "succeeded"]
    assert stats(sim)["async"]["jobs"] == 1 and held(sim) == 40
    assert all(o.netsuite_id and not o.created for o in out), "made by the earlier write"


def test_stale_verdict_of_an_earlier_job_is_asked_again(sim: SimServer) -> None:
    """An earlier write's job failed (inactive item); the item is fixed since. Resending
    the chunk meets the old job by key, and its failures are retried one by one."""
    records = sales("F", 3, BAD_SALE)
    first = write(sim, records)
    assert all(o.error is not None and o.error.kind == "permanent" for o in first)
    admin(sim, "items/TEE-007")  # re-activated in NetSuite
    jobs: list[str] = []
    out = write(sim, records, jobs=jobs)
    assert jobs == ["duplicate", "failed"]
    assert all(o.error is None and o.created and o.via == "single" for o in out)
    assert held(sim) == 3 and stats(sim)["async"]["jobs"] == 1


class FlakyResults(httpx.AsyncBaseTransport):
    """Real HTTP to the sim, except the first GET of task 1's result answers 500: the
    client cannot tell that from a task whose stored outcome is a 500 (the sim has none)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.left = 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.left and request.url.path.endswith("/task/1/result"):
            self.left -= 1
            return httpx.Response(500, json={"status": 500, "o:errorDetails": [
                {"detail": "An unexpected error occurred.", "o:errorCode": "UNEXPECTED_ERROR"}]})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_task_results_path_and_unknown_outcome_fallback(sim: SimServer) -> None:
    """Without SuiteQL every outcome comes from its task result; an unreadable result
    sends that record the single-record way, which finds it instead of posting again."""
    run(sim, lambda ns: ns.create("cashSale", {**CASH_SALE, "externalId": "U-002"}))
    records = sales("U", 6)
    records[4] = ("U-bad", BAD_SALE)
    flaky = FlakyResults()
    out = write(sim, records, use_suiteql=False, transport=flaky)
    assert flaky.left == 0
    kinds = [(o.kind, o.via) for o in out]
    assert kinds[0] == ("existing", "single"), "result unreadable -> POST -> found"
    assert kinds[2] == ("existing", "batch"), "already exists -> eid: look-up"
    assert kinds[4] == ("failed", "batch")
    assert [k for i, k in enumerate(kinds) if i in (1, 3, 5)] == [("created", "batch")] * 3
    truth = eid_ids(sim, [e for e, _ in records])
    assert {o.external_id: o.netsuite_id for o in out if o.netsuite_id} == truth
    assert held(sim) == 5


def test_throttling_costs_time_not_records(sim: SimServer) -> None:
    admin(sim, "config", {"concurrency_limit": 1, "latency_ms": 20})
    out = write(sim, sales("Q", 250))
    assert all(o.created for o in out) and held(sim) == 250
    assert stats(sim)["faults"]["concurrency_limit"] > 0, "429s really happened"


def test_outage_raises_unavailable_and_writes_nothing(sim: SimServer) -> None:
    admin(sim, "outage", {"seconds": 30})
    with pytest.raises(NetSuiteUnavailable):
        write(sim, sales("O", 10))
    st = stats(sim)
    assert held(sim) == 0 and st["async"]["jobs"] == 0
    assert st["faults"]["outage"] == FAST.max_attempts, "retried, then gave up on the step"
    httpx.delete(f"{sim.base_url}/__sim/outage").raise_for_status()
