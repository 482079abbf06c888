"""Backlog drain through NetSuite's async batch jobs: up to 100 creates per request.

A real-time sink spends one request (one concurrency slot for one round trip) per record;
a backlog of thousands of records at 15 slots would take minutes. A batch request adds
up to 100 records of one type as one async job (reference §1.8-1.9), so the cost per
record drops to a few hundredths of a request. Per chunk of <= 100 records:

1. **pre-check** (one SuiteQL query): records that already exist by externalId are not
   sent at all (``created=False``). After a crash or a redelivery, the common case in a
   drain, the replayed records cost nothing but this query.
2. **submit** the rest with ``Prefer: respond-async`` and a deterministic
   ``X-NetSuite-Idempotency-Key`` (``chunk_key``: record type + the chunk's externalIds).
   Submitting is therefore safe to retry: when the answer is lost (timeout after commit)
   the retry is refused with 400 ``IDEMPOTENCY_ERROR`` naming the earlier job, which is
   then followed instead of creating the chunk twice. Met on the first attempt, the key
   belongs to an earlier write (a crashed run): its records count as ``created=False``
   and its failures are asked again one by one (the data they failed on may be fixed).
3. **poll** the job with a jittered, growing delay. Polls take concurrency slots like
   any request, so they start late and slow down; a job still pending at the deadline
   raises ``NetSuiteUnavailable`` (the same chunk resubmitted later finds the same job).
4. **resolve** internal ids with one SuiteQL query. Every record found was created by the
   job. Only the records *not* found need their task's ``result`` (one GET each): there
   NetSuite says why, and the verdict is mapped:

   - ``already exists`` -> looked up (``created=False``); not found under this type means
     the externalId is taken by another record of its group: a permanent error;
   - another 4xx -> permanent, a ``NetSuiteError`` carrying ``o:errorDetails`` for the DLQ;
   - 5xx, or no readable result -> that record goes the single-record way (POST with
     externalId, look-up after any ambiguous failure), which never creates twice.

The job's ``progress`` value is only reported (``on_job``); outcomes come from what
NetSuite holds, so undocumented progress values (reference §8.9) cannot mislead them.
Record types without a known SuiteQL table skip steps 1 and 4 and read every task's result.

Every HTTP step runs under ``ReliableClient.call`` (429 backoff, 5xx/timeout retries, the
circuit breaker), so an outage surfaces as ``NetSuiteUnavailable``, never as a verdict.

Step 3 (polling a job and listing its tasks) lives in ``batch_jobs``: it only follows a
job that exists, with its own pacing concerns, and keeps this module about verdicts.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

from tillbridge.connectors.netsuite.batch_jobs import (
    JobHook,
    JobPoller,
    PollPolicy,
    step,
    task_links,
)
from tillbridge.connectors.netsuite.client import BATCH_MAX_ITEMS, JobRef, id_from_location
from tillbridge.connectors.netsuite.errors import (
    AlreadyExists,
    AuthFailed,
    NetSuiteError,
    RetryableError,
)
from tillbridge.connectors.netsuite.retry import ReliableClient

__all__ = [
    "ENTITY_TABLES",
    "TRANSACTION_TYPES",
    "BatchOutcome",
    "BatchWriter",
    "JobHook",
    "PollPolicy",
    "Record",
    "RecordHook",
    "chunk_key",
    "chunks",
    "id_query",
    "task_links",
]

T = TypeVar("T")
Record = tuple[str, dict[str, Any]]

#: Transaction record types: one SuiteQL table (``transaction``, keyed by ``recordtype``).
TRANSACTION_TYPES = frozenset({
    "cashsale", "cashrefund", "creditmemo", "customerdeposit", "customerpayment",
    "customerrefund", "deposit", "depositapplication", "estimate", "inventoryadjustment",
    "inventorytransfer", "invoice", "itemfulfillment", "itemreceipt", "journalentry",
    "returnauthorization", "salesorder", "transferorder",
})
#: Other record types with their own SuiteQL table carrying ``id`` and ``externalid``.
ENTITY_TABLES = {"customer": "customer"}
_KEY_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "tillbridge:netsuite:batch")


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One input record's verdict. ``created``: this write made it (False: NetSuite already
    held it). ``error`` set means it was not written; ``error.details`` go to the DLQ."""

    external_id: str
    netsuite_id: str | None
    created: bool
    error: NetSuiteError | None = None
    via: Literal["batch", "single"] = "batch"

    @property
    def kind(self) -> Literal["created", "existing", "failed"]:
        if self.error is not None:
            return "failed"
        return "created" if self.created else "existing"


RecordHook = Callable[[BatchOutcome], None]


def chunk_key(record_type: str, external_ids: Sequence[str]) -> str:
    """The idempotency key of a chunk: a UUID (NetSuite asks for one) derived from the record
    type and the externalIds, case-folded as NetSuite compares them."""
    name = "\n".join([record_type, *external_ids]).lower()
    return str(uuid.uuid5(_KEY_NAMESPACE, name))


def chunks(records: Sequence[Record], size: int = BATCH_MAX_ITEMS) -> list[list[int]]:
    """Input positions split into consecutive chunks of at most ``size``."""
    if not 1 <= size <= BATCH_MAX_ITEMS:
        raise ValueError(f"chunk size must be 1..{BATCH_MAX_ITEMS}")
    return [list(range(i, min(i + size, len(records)))) for i in range(0, len(records), size)]


def id_query(record_type: str, external_ids: Sequence[str]) -> tuple[str, list[str]] | None:
    """SuiteQL finding ``id``/``externalid`` of these records, or None for a type without a
    known table (then ids come from task results and ``eid:`` look-ups)."""
    # Values travel as bind parameters; the table name comes from the fixed lists above.
    marks = ", ".join("?" * len(external_ids))
    rt = record_type.lower()
    if rt in TRANSACTION_TYPES:
        where = f"recordtype = ? AND externalid IN ({marks})"
        return f"SELECT id, externalid FROM transaction WHERE {where}", [rt, *external_ids]  # noqa: S608
    table = ENTITY_TABLES.get(rt)
    if table is None:
        return None
    query = f"SELECT id, externalid FROM {table} WHERE externalid IN ({marks})"  # noqa: S608
    return query, list(external_ids)


def _noop_job(state: str) -> None:
    return None


def _noop_record(outcome: BatchOutcome) -> None:
    return None


class BatchWriter:
    """Creates many records of one type through async batch jobs, never one twice."""

    def __init__(
        self,
        client: ReliableClient,
        *,
        chunk_size: int = BATCH_MAX_ITEMS,
        max_jobs: int | None = None,
        poll: PollPolicy | None = None,
        use_suiteql: bool = True,
        on_job: JobHook | None = None,
        on_record: RecordHook | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """``max_jobs`` caps chunks in progress (default: the client's limiter share: a
        chunk holds at most one slot at a time except while reading failed tasks).
        ``use_suiteql=False`` is for roles without SuiteQL permission: no pre-check, and
        every record's outcome is read from its task result (one GET per record)."""
        chunks([], chunk_size)  # validates the size
        self.client = client
        self.chunk_size = chunk_size
        self.max_jobs = max_jobs or client.client.limiter.limit
        self.poll = poll or PollPolicy()
        self.use_suiteql = use_suiteql
        self._on_job = on_job or _noop_job
        self._on_record = on_record or _noop_record
        self._jobs = JobPoller(client, self.poll, on_job=self._on_job, sleep=sleep,
                               clock=clock, rand=rand)

    async def write(self, record_type: str, records: Sequence[Record]) -> list[BatchOutcome]:
        """Create every ``(external_id, body)``; one outcome per record, in input order.

        Raises ``NetSuiteUnavailable`` (outage, throttling budget spent, job not finished
        by the deadline) and ``AuthFailed`` (credentials refused): no record's fault,
        nothing is lost, writing the same records again is safe.
        """
        # A repeated externalId is written once; its repeats report the first's record.
        first: dict[str, int] = {}
        for pos, (external_id, _) in enumerate(records):
            first.setdefault(external_id.lower(), pos)
        unique = [records[pos] for pos in sorted(first.values())]
        gate = asyncio.Semaphore(self.max_jobs)
        written: dict[str, BatchOutcome] = {}

        async def run(positions: list[int]) -> None:
            async with gate:
                done = await self._chunk(record_type, [unique[i] for i in positions])
            for outcome in done:
                written[outcome.external_id.lower()] = outcome

        await _all([run(p) for p in chunks(unique, self.chunk_size)])
        outcomes = []
        for pos, (external_id, _) in enumerate(records):
            outcome = written[external_id.lower()]
            if first[external_id.lower()] != pos:
                outcome = BatchOutcome(external_id, outcome.netsuite_id, False, outcome.error,
                                       outcome.via)
            outcomes.append(outcome)
            self._on_record(outcome)
        return outcomes

    # -- one chunk ------------------------------------------------------------------------

    async def _chunk(self, record_type: str, chunk: list[Record]) -> list[BatchOutcome]:
        eids = [e for e, _ in chunk]
        known = await self._resolve(record_type, eids, required=False)
        out: dict[int, BatchOutcome] = {
            i: BatchOutcome(e, known[e.lower()], False) for i, e in enumerate(eids)
            if e.lower() in known}
        todo = [i for i in range(len(chunk)) if i not in out]
        if not todo:
            self._on_job("skipped")
            return [out[i] for i in range(len(chunk))]
        found = await self._submit_and_collect(record_type, [chunk[i] for i in todo])
        out.update(zip(todo, found, strict=True))
        return [out[i] for i in range(len(chunk))]

    async def _submit_and_collect(self, record_type: str,
                                  sent: list[Record]) -> list[BatchOutcome]:
        ns = self.client.client
        eids = [e for e, _ in sent]
        items = [{**body, "externalId": e} for e, body in sent]
        key = chunk_key(record_type, eids)
        attempts = 0

        async def submit() -> JobRef:
            nonlocal attempts
            attempts += 1
            return await ns.submit_batch(record_type, items, idempotency_key=key)

        try:
            job_ref = await step(self.client, "submit", submit)
        except AuthFailed:
            raise
        except NetSuiteError:
            # The request as a whole was refused: each record gets its own verdict.
            self._on_job("refused")
            return await self._singles(record_type, sent)
        # A key already in use on the first attempt is an earlier write's job; after a
        # lost answer (attempts > 1) it is this write's own submission.
        ours = not job_ref.duplicate or attempts > 1
        self._on_job("duplicate" if job_ref.duplicate else "submitted")
        try:
            job = await self._jobs.wait(job_ref.location)
        except AuthFailed:
            raise
        except NetSuiteError:
            self._on_job("lost")  # e.g. 404: the job is no longer kept
            return await self._singles(record_type, sent)
        self._on_job(str(job.get("progress", "completed")))
        made = await self._resolve(record_type, eids, required=False)
        out: dict[int, BatchOutcome] = {
            i: BatchOutcome(e, made[e.lower()], ours) for i, e in enumerate(eids)
            if e.lower() in made}
        missing = [i for i in range(len(sent)) if i not in out]
        if missing:
            links = await self._jobs.task_links(job_ref.location, len(sent))
            found = await _all([self._from_task(record_type, sent[i], links[i], ours)
                                for i in missing])
            out.update(zip(missing, found, strict=True))
        return [out[i] for i in range(len(sent))]

    async def _from_task(self, record_type: str, record: Record, task: str,
                         ours: bool) -> BatchOutcome:
        """One record the job did not leave in NetSuite (or not yet visible): its result."""
        ns = self.client.client
        external_id, body = record
        status, location, payload = await step(
            self.client, "result", lambda: ns.get_result(task + "/result"))
        if status < 300:
            if location:
                return BatchOutcome(external_id, id_from_location(location), ours)
            return await self._single(record_type, external_id, body)
        err = NetSuiteError.from_response(status, payload, method="POST",
                                          url_path=f"/services/rest/record/v1/{record_type}")
        if isinstance(err, AlreadyExists):
            found = await self._resolve(record_type, [external_id], required=True)
            netsuite_id = found.get(external_id.lower())
            if netsuite_id is not None:
                return BatchOutcome(external_id, netsuite_id, False)
            return BatchOutcome(external_id, None, False, err)  # taken by another type
        if isinstance(err, RetryableError) or not ours:
            # Unknown outcome (or the result itself unreadable), or a verdict from an
            # earlier write's job (what NetSuite checks against may have changed since):
            # ask again for this record alone.
            return await self._single(record_type, external_id, body)
        return BatchOutcome(external_id, None, False, err)

    # -- helpers --------------------------------------------------------------------------

    async def _resolve(self, record_type: str, external_ids: list[str], *,
                       required: bool) -> dict[str, str]:
        """``externalId.lower() -> internal id`` for the records NetSuite holds.

        One SuiteQL query when the type has a known table. Otherwise, or when the query is
        refused (a 4xx: table or column not exposed), ``required`` falls back to one
        ``eid:`` look-up per record and a non-required call returns nothing (then the
        task results say).
        """
        query = id_query(record_type, external_ids) if self.use_suiteql else None
        rows: list[dict[str, Any]] | None = None
        if query is not None:
            q, params = query
            try:
                rows = await step(self.client, "lookup", lambda: self.client.client.suiteql(
                    q, params=params))
            except AuthFailed:
                raise
            except NetSuiteError:
                pass  # refused (table or column not exposed): fall back below
        if rows is not None:
            wanted = {e.lower() for e in external_ids}
            out: dict[str, str] = {}
            for row in rows:
                lowered = {k.lower(): v for k, v in row.items()}
                eid = str(lowered.get("externalid") or "").lower()
                if eid in wanted and lowered.get("id") is not None:
                    out[eid] = str(lowered["id"])
            return out
        if not required:
            return {}
        ids = await _all([step(self.client, "lookup", partial(self.client.find_id, record_type, e))
                          for e in external_ids])
        return {e.lower(): i for e, i in zip(external_ids, ids, strict=True) if i is not None}

    async def _singles(self, record_type: str, records: list[Record]) -> list[BatchOutcome]:
        return await _all([self._single(record_type, e, b) for e, b in records])

    async def _single(self, record_type: str, external_id: str,
                      body: dict[str, Any]) -> BatchOutcome:
        """The single-record idempotent create (``ReliableClient.create_or_find``). Its
        error is the record's verdict, as on the real-time path."""
        try:
            netsuite_id, created = await self.client.create_or_find(record_type, external_id,
                                                                    body)
        except NetSuiteError as err:
            return BatchOutcome(external_id, None, False, err, "single")
        return BatchOutcome(external_id, netsuite_id, created, None, "single")


async def _all(coros: Sequence[Awaitable[T]]) -> list[T]:
    """``gather`` that cancels the siblings when one fails (an outage stops the drain
    promptly) and re-raises that first error unwrapped."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
