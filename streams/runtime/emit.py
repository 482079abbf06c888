"""Produce the agents' outputs with confluent-kafka, delivered before Faust acks the input.

Faust's own ``topic.send`` costs ~100 µs of Python per message (futures, callbacks, the
aiokafka send path) — more than decode + validate together. librdkafka queues a message in
a few µs. The guarantee stays at-least-once: Faust awaits its producer's ``flush()`` right
before it commits offsets, and the app extends that flush to every emitter
(``app._flush_emitters_before_commit``), so an input offset is committed only after all
that was emitted for it is acknowledged by the broker. A message the broker refused is
produced again; if it still cannot be delivered the process exits hard (no commit), so
the input records are read again by the next worker instead of being skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

log = logging.getLogger(__name__)

EXIT_UNDELIVERABLE = 70  # EX_SOFTWARE


class Emitter:
    """A confluent-kafka producer with per-batch delivery accounting."""

    def __init__(self, bootstrap: str, *, linger_ms: int = 2, retries: int = 3,
                 config: dict[str, Any] | None = None) -> None:
        self._producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,  # no duplicates from librdkafka's own retries
            "acks": "all",
            "linger.ms": linger_ms,
            "compression.type": "lz4",
            **(config or {}),
        })
        self._retries = retries
        # Delivery callbacks run on whichever thread polls: the agent's (emit) or the
        # commit's executor thread (flush). Only the failed list is shared, under a lock;
        # no in-flight counter, which two threads could drift — librdkafka's own queue
        # (what flush waits for) is the count that matters.
        self._lock = threading.Lock()
        self._failed: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []

    def emit(self, topic: str, key: bytes | None, value: bytes | None,
             headers: Sequence[tuple[str, bytes]] = ()) -> None:
        hdrs = list(headers)

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                log.warning("delivery to %s failed: %s", topic, err)
                with self._lock:
                    self._failed.append((topic, key, value, hdrs))

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=hdrs,
                                       on_delivery=on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.05)
            except KafkaException as exc:
                # Refused before queueing (e.g. larger than the topic allows). Letting this
                # escape would make Faust ack the input unprocessed; stop without a commit.
                log.critical("cannot produce to %s: %s; exiting so the input is reprocessed",
                             topic, exc)
                os._exit(EXIT_UNDELIVERABLE)
        self._producer.poll(0)

    def _flush_blocking(self) -> None:
        for attempt in range(self._retries + 1):
            remaining = self._producer.flush(30)
            with self._lock:
                failed, self._failed = self._failed, []
            if remaining == 0 and not failed:
                return
            for topic, key, value, hdrs in failed:
                self.emit(topic, key, value, hdrs)
            log.warning("re-producing %d undelivered messages (attempt %d)", len(failed),
                        attempt + 1)
        log.critical("messages could not be delivered; exiting without committing so the "
                     "input is reprocessed")
        os._exit(EXIT_UNDELIVERABLE)

    async def flush(self) -> None:
        """Wait (off the event loop) until everything emitted so far is delivered."""
        # Cheap when nothing is queued: librdkafka returns at once.
        await asyncio.get_running_loop().run_in_executor(None, self._flush_blocking)
