"""Async jobs (``Prefer: respond-async``) and batches: job -> tasks -> per-task result.

A job holds one task per record (one for a single request, up to 100 for a batch).
Jobs run on the event loop ``async_delay_ms`` after submission; a poll that arrives
after that moment and finds the job still pending runs it first, so completion never
depends on timer scheduling. Tasks run in order and each succeeds or fails on its own.

Unconfirmed details (reference §8 point 9) and the choices made here:
- progress: task ``pending`` -> ``succeeded`` | ``failed``; job ``pending`` ->
  ``succeeded`` (all tasks), ``failed`` (none) or ``finishedWithErrors`` (some; SOAP's
  name for the mixed case, the only Oracle precedent);
- idempotency keys are remembered until ``/__sim/reset``;
- ``/task`` lists one item per task, each with its own ``self`` link.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import SimError, idempotency_conflict, not_found
from tillbridge.devstack.netsuite_sim.governance import SimConfig
from tillbridge.devstack.netsuite_sim.operations import Operation, Outcome, run
from tillbridge.devstack.netsuite_sim.store import now_utc

ASYNC_PATH = "/services/rest/async/v1/job"


@dataclass
class Task:
    """One record operation of a job and, once run, its outcome."""

    id: str
    op: Operation
    outcome: Outcome | None = None
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def progress(self) -> str:
        if self.outcome is None:
            return "pending"
        return "succeeded" if self.outcome.ok else "failed"


@dataclass
class Job:
    """A submitted async request or batch."""

    id: str
    tasks: list[Task]
    due: float  # time.monotonic() when it may run
    batch: bool
    created: datetime = field(default_factory=now_utc)
    counted: bool = False  # finished-job counter already bumped

    @property
    def completed(self) -> bool:
        return all(t.outcome is not None for t in self.tasks)

    @property
    def progress(self) -> str:
        if not self.completed:
            return "pending"
        ok = sum(1 for t in self.tasks if t.outcome is not None and t.outcome.ok)
        if ok == len(self.tasks):
            return "succeeded"
        return "failed" if ok == 0 else "finishedWithErrors"


class JobQueue:
    """Submitted jobs, idempotency keys and the counters ``/__sim/stats`` shows."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._background: dict[str, asyncio.TimerHandle] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every job and key; timers of forgotten jobs are cancelled."""
        for handle in self._background.values():
            handle.cancel()
        self._background = {}
        self.jobs: dict[str, Job] = {}
        self._keys: dict[str, str] = {}
        self._next = 1
        self.counts: Counter[str] = Counter()

    def submit(self, ops: list[Operation], key: str | None, batch: bool) -> Job:
        """Queue ``ops`` as one job; a reused idempotency key is refused with its job."""
        if key is not None:
            known = self._keys.get(key.lower())
            if known is not None:
                self.counts["idempotency_conflicts"] += 1
                raise idempotency_conflict(location(known))
        delay = self._config.async_delay_ms / 1000
        job = Job(str(self._next), [Task(str(i), op) for i, op in enumerate(ops, start=1)],
                  time.monotonic() + delay, batch)
        self._next += 1
        self.jobs[job.id] = job
        if key is not None:
            self._keys[key.lower()] = job.id
        self.counts["jobs"] += 1
        self.counts["batches" if batch else "single"] += 1
        self.counts["tasks"] += len(ops)
        self._schedule(job, delay)
        return job

    def _schedule(self, job: Job, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (direct use in tests): the first poll runs it
        self._background[job.id] = loop.call_later(delay, self.process, job)

    def process(self, job: Job) -> None:
        """Run every pending task of ``job`` (idempotent)."""
        for task in job.tasks:
            if task.outcome is not None:
                continue
            task.started = now_utc()
            task.outcome = run(task.op)
            task.ended = now_utc()
            self.counts["tasks_succeeded" if task.outcome.ok else "tasks_failed"] += 1
        if job.completed and not job.counted:
            job.counted = True
            self.counts[f"jobs_{job.progress}"] += 1
        handle = self._background.pop(job.id, None)
        if handle is not None:
            handle.cancel()

    def get(self, job_id: str) -> Job:
        """A job, run first if it is due; unknown ids are 404 NONEXISTENT_ID."""
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found()
        if not job.completed and time.monotonic() >= job.due:
            self.process(job)
        return job

    def task(self, job_id: str, task_id: str) -> tuple[Job, Task]:
        job = self.get(job_id)
        for task in job.tasks:
            if task.id == task_id:
                return job, task
        raise not_found()

    def stats(self) -> dict[str, int]:
        """Counters plus how many jobs are still pending right now."""
        pending = sum(1 for j in self.jobs.values() if not j.completed)
        keys = ("jobs", "single", "batches", "tasks", "tasks_succeeded", "tasks_failed",
                "jobs_succeeded", "jobs_failed", "jobs_finishedWithErrors",
                "idempotency_conflicts")
        return {**{k: self.counts[k] for k in keys}, "pending": pending}


def location(job_id: str) -> str:
    # Oracle's sample prints this Location as a path, not an absolute URL (reference §1.8).
    return f"{ASYNC_PATH}/{job_id}"


# -- rendering ------------------------------------------------------------------------------

def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def render_job(job: Job, origin: str) -> dict[str, Any]:
    href = f"{origin}{location(job.id)}"
    return {"links": [{"rel": "self", "href": href}], "completed": job.completed,
            "id": job.id, "progress": job.progress,
            "task": {"links": [{"rel": "self", "href": f"{href}/task"}]}}


def render_tasks(job: Job, origin: str) -> dict[str, Any]:
    href = f"{origin}{location(job.id)}/task"
    items = [{"links": [{"rel": "self", "href": f"{href}/{t.id}"}], "id": t.id}
             for t in job.tasks]
    return {"links": [{"rel": "self", "href": href}], "count": len(items), "items": items,
            "offset": 0, "totalResults": len(items), "hasMore": False}


def render_task(job: Job, task: Task, origin: str) -> dict[str, Any]:
    href = f"{origin}{location(job.id)}/task/{task.id}"
    body: dict[str, Any] = {
        "links": [{"rel": "related", "href": f"{href}/result"}, {"rel": "self", "href": href}],
        "completed": task.outcome is not None, "id": task.id, "progress": task.progress,
    }
    if task.started is not None:
        body["startTime"] = _stamp(task.started)
    if task.ended is not None:
        body["endTime"] = _stamp(task.ended)
    return body


def result(task: Task) -> Outcome:
    """What the synchronous request would have answered (status, Location, body)."""
    if task.outcome is None:
        # Undocumented: asking for a result too early. A 400 naming the state is the
        # least surprising answer; clients should poll the task first anyway.
        raise SimError(400, "INVALID_REQUEST", "The task has not completed yet.")
    return task.outcome
