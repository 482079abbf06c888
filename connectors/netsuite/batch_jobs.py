"""Following a submitted async batch job: polling, task listing, and the step wrapper.

Apart from ``batch`` (the writer: chunking, pre-check, submission, verdicts) because this
part only talks to a job that already exists and has its own concerns: polls take
concurrency slots like any request, so they start late, slow down and are jittered so
chunks submitted together do not poll in lock-step; and a job's task listing comes in
two shapes (reference §1.9). The writer needs none of that detail, only "wait for this
job" and "the task hrefs in input order".

``step`` lives here because both sides use it: every HTTP step of the batch machinery
runs under the retry policy, and a retryable failure that outlasts it means NetSuite is
not answering, which is no record's fault (``NetSuiteUnavailable``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tillbridge.connectors.netsuite.errors import (
    AuthFailed,
    NetSuiteError,
    NetSuiteUnavailable,
    RetryableError,
)
from tillbridge.connectors.netsuite.retry import ReliableClient

T = TypeVar("T")
JobHook = Callable[[str], None]
"""``on_job(state)``: ``submitted``, ``duplicate`` (an earlier job with the same key was
found), the job's final ``progress`` (``succeeded``, ``finishedWithErrors``, ``failed``...),
``skipped`` (every record already existed), ``refused`` / ``lost`` (submission refused or
job unreadable: the chunk went the single-record way), ``timeout``."""


@dataclass(frozen=True)
class PollPolicy:
    """Job polling: first poll after ``first_s``, then ``* factor`` up to ``max_s`` (each
    delay jittered +-25% so chunks submitted together do not poll in lock-step)."""

    first_s: float = 1.0
    factor: float = 2.0
    max_s: float = 10.0
    deadline_s: float = 900.0  # then NetSuiteUnavailable: resubmitting finds the same job


def task_links(listing: dict[str, Any]) -> list[str]:
    """Task hrefs in order from a ``/task`` listing: one ``self`` link per task, whether
    each item carries its own (the simulator) or one item carries them all (Oracle's
    sample, reference §1.9)."""
    return [link["href"] for item in listing.get("items", [])
            for link in item.get("links", []) if link.get("rel") == "self"]


async def step(client: ReliableClient, name: str, op: Callable[[], Awaitable[T]]) -> T:
    """One HTTP step of the batch machinery under the retry policy. A ``RetryableError``
    that outlasts it means NetSuite is not answering, which is no record's fault:
    ``NetSuiteUnavailable``. ``AuthFailed`` and ``Rejected`` are raised as they are."""
    try:
        return await client.call(op)
    except RetryableError as err:
        raise NetSuiteUnavailable(f"batch {name}: {err}", client.policy.max_delay_s) from err


def _noop_job(state: str) -> None:
    return None


class JobPoller:
    """Waits for one async job to complete and lists its tasks, under the retry policy."""

    def __init__(
        self,
        client: ReliableClient,
        poll: PollPolicy | None = None,
        *,
        on_job: JobHook | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.poll = poll or PollPolicy()
        self._on_job = on_job or _noop_job
        self._sleep = sleep
        self._clock = clock
        self._rand = rand

    async def wait(self, location: str) -> dict[str, Any]:
        """Poll the job until ``completed``; NetSuiteUnavailable after the deadline."""
        ns = self.client.client
        started = self._clock()
        delay = self.poll.first_s
        while True:
            await self._sleep(delay * (0.75 + 0.5 * self._rand()))
            job = await step(self.client, "poll", lambda: ns.get_json(location))
            if job.get("completed") is True:
                return job
            if self._clock() - started >= self.poll.deadline_s:
                self._on_job("timeout")
                raise NetSuiteUnavailable(f"async job {location} still pending",
                                          self.poll.max_s)
            delay = min(self.poll.max_s, delay * self.poll.factor)

    async def task_links(self, location: str, count: int) -> list[str]:
        """Task hrefs by position; ``{job}/task/{n}`` when the listing does not line up or
        cannot be read."""
        ns = self.client.client
        try:
            links = task_links(await step(self.client, "tasks",
                                          lambda: ns.get_json(location + "/task")))
        except AuthFailed:
            raise
        except NetSuiteError:
            links = []
        if len(links) != count:
            links = [f"{location}/task/{n}" for n in range(1, count + 1)]
        return links
