"""Client-side concurrency governance: never send more requests than this worker's share.

NetSuite governs REST by *in-flight* requests, counted per account and shared by REST, SOAP
and RESTlets of every integration on it (reference §3.4). Going over the limit gets an
immediate 429, not a queue, so the cheapest 429 is the one never sent: each worker holds a
``ConcurrencyLimiter`` and every request it makes (record calls, SuiteQL pages, async job
polls, id look-ups after an upsert) waits for a slot first. Backoff sleeps happen outside
the slot, so a throttled task never blocks a healthy one.

Sizing shares when several workers use one account::

    sum(worker shares) + other integrations' peak + headroom  <=  account limit

- The account limit is tier base + 10 per SuiteCloud Plus licence (dev/partner accounts: 5);
  ``GET /services/rest/system/v1/governanceLimits`` reports it, and an integration record may
  be allocated its own slice (``integrationConcurrencyLimit``): then size against that slice.
- "Other integrations" means everything else on the account: NSPOS (Oracle's POS syncs
  through up to 3 integration users at peak), e-commerce connectors, SuiteScript RESTlets,
  CSV imports over SOAP, BI extracts. Count their peak, not their average.
- Keep at least 1 slot unallocated (NetSuite requires it for integration allocations) and
  leave headroom for operators' ad-hoc calls.
- Give every worker the same share (``fair_share``) and scale workers, not shares: a
  worker that owns more partitions does not need more slots than its share.
- When the sum is still too big the limiter plus 429 backoff keeps things correct, only
  slower: 429s never fail an event, they only cost time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

InFlightHook = Callable[[int, int], None]
"""``on_in_flight(in_flight, limit)``: called whenever a slot is taken or given back."""


def _noop(in_flight: int, limit: int) -> None:
    return None


def fair_share(account_limit: int, workers: int, reserved: int = 1) -> int:
    """Slots per worker: ``(account_limit - reserved) // workers``, at least 1.

    ``reserved`` covers other integrations and the one slot NetSuite keeps unallocated.
    """
    if account_limit < 1 or workers < 1 or reserved < 0:
        raise ValueError("account_limit and workers must be >= 1, reserved >= 0")
    return max(1, (account_limit - reserved) // workers)


class ConcurrencyLimiter:
    """An async semaphore over one worker's NetSuite requests, with an in-flight metric.

    Share one instance between every client object a worker builds (sink, reference data,
    polling) so the cap covers them all.
    """

    def __init__(self, share: int, *, on_in_flight: InFlightHook | None = None) -> None:
        if share < 1:
            raise ValueError("share must be >= 1")
        self._share = share
        self._sem = asyncio.Semaphore(share)
        self._in_flight = 0
        self.peak = 0
        self._hook = on_in_flight or _noop

    def __repr__(self) -> str:
        return f"ConcurrencyLimiter(share={self._share}, in_flight={self._in_flight})"

    @property
    def limit(self) -> int:
        """This worker's share of the account concurrency limit."""
        return self._share

    @property
    def in_flight(self) -> int:
        """Requests currently holding a slot."""
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of one HTTP request."""
        async with self._sem:
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
            self._hook(self._in_flight, self._share)
            try:
                yield
            finally:
                self._in_flight -= 1
                self._hook(self._in_flight, self._share)
