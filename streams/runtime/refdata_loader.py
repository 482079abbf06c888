"""Reference data into the pipeline: the first load (the worker handles no record before
it), the scheduled incremental refresh, and the refresh an operator commands over the
control topic (``tillbridge refdata refresh``), which every worker follows.

Each worker keeps its own snapshot rows (``<kind>:<id>`` -> row) and builds a fresh index
from them on every refresh; the pipeline swaps the whole index in at once, so a record
sees one snapshot. A failed refresh keeps the old data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata import sync as refdata_sync
from tillbridge.streams.runtime import control, metrics

log = logging.getLogger(__name__)

Refresh = Callable[..., Awaitable[tuple[dict[str, Any], dict[str, Any]]]]


class RefdataLoader:
    def __init__(self, pipe: Pipeline, *, refresh: Refresh = refdata_sync.refresh,
                 retry_first_s: float = 1.0, retry_max_s: float = 30.0) -> None:
        self.pipe = pipe
        self.snapshot: dict[str, Any] = {}
        self._refresh = refresh
        self._lock = asyncio.Lock()  # one pull at a time; a second request waits its turn
        self._commanded: set[asyncio.Task[bool]] = set()  # the loop holds tasks weakly
        self._retry = (retry_first_s, retry_max_s)

    async def refresh(self, full: bool) -> bool:
        """Pull from NetSuite into this worker's snapshot; True when it worked. Never
        raises: it runs from timers and tasks, where an escaping error stops the worker."""
        mode = "full" if full else "incremental"
        async with self._lock:
            try:
                assert self.pipe.client is not None, "NetSuite client not started"
                writes, meta = await self._refresh(self.pipe.client, self.snapshot, full=full)
                for key, row in writes.items():
                    if row is None:
                        self.snapshot.pop(key, None)
                    else:
                        self.snapshot[key] = row
                self.snapshot[refdata_sync.META] = meta
                ref, _ = refdata_sync.build_index(self.snapshot.items())
                self.pipe.use_refdata(ref, int(meta["version"]))
            except Exception as exc:  # noqa: BLE001 - a failed refresh keeps the old data
                metrics.REFDATA_REFRESHES.labels(mode, "error").inc()
                log.warning("reference data refresh (%s) failed: %s", mode, exc)
                return False
        metrics.REFDATA_REFRESHES.labels(meta["mode"], "ok").inc()
        log.info("reference data v%s (%s): %s rows changed, %s deleted", meta["version"],
                 meta["mode"], meta["written"], meta["deleted"])
        return True

    async def load_until_ready(self) -> None:
        """The first full load, retried with backoff until it works (bad credentials or
        NetSuite down: the worker waits, not ready, rather than dead-letter everything)."""
        delay, most = self._retry
        while not await self.refresh(full=True):
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)

    async def scheduled(self) -> None:
        """Timer body: an incremental refresh, once the first load is in."""
        if self.pipe.ready.is_set():
            await self.refresh(full=False)

    def command(self, loop: asyncio.AbstractEventLoop, doc: dict[str, Any]) -> None:
        """A control command (called on the follower's thread)."""
        if doc.get("command") == control.REFRESH_REFDATA:
            loop.call_soon_threadsafe(self._start_refresh, bool(doc.get("full")))
        else:
            log.warning("ignoring unknown control command %r", doc.get("command"))

    def _start_refresh(self, full: bool) -> None:
        task = asyncio.get_running_loop().create_task(self.refresh(full))
        self._commanded.add(task)
        task.add_done_callback(self._commanded.discard)

    def follow_commands(self, bootstrap: str) -> control.ControlFollower:
        """Start following the control topic; commands run on the calling loop."""
        loop = asyncio.get_running_loop()
        follower = control.ControlFollower(bootstrap, topics.CONTROL,
                                           lambda doc: self.command(loop, doc))
        follower.start()
        return follower
