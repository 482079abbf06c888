"""Produce the agents' outputs with confluent-kafka, delivered before Faust acks the input.

Faust's own ``topic.send`` costs ~100 µs of Python per message (futures, callbacks, the
aiokafka send path) — more than decode + validate together. librdkafka queues a message in
a few µs. The guarantee stays at-least-once: Faust awaits its producer's ``flush()`` right
before it commits offsets, and ``commit.flush_emitters_before_commit`` extends that flush to
every emitter, so an input offset is committed only after all that was emitted for it is
acknowledged by the broker. A message the broker refused is produced again; if it still
cannot be delivered the process exits hard (no commit), so the input records are read again
by the next worker instead of being skipped.

Two ways a produce can fail *before* queueing, neither of which blocks the event loop:

- librdkafka's local queue is full: ``emit`` returns False and queues nothing; the caller
  awaits ``room()`` and emits again (``send`` does both). The common case stays one
  synchronous call.
- librdkafka refuses the message itself (e.g. larger than the topic allows): ``emit`` raises
  ``ProduceRefused``; the agents' guard turns it into a dead letter of the original record.

Size is checked before producing (key + value + headers against ``max_bytes``, the smallest
limit the DLQ topics and broker declare), so an oversized record never depends on a broker
error. An oversized output raises ``ProduceRefused`` (the guard dead-letters its input); an
oversized *dead letter* is produced in its ``payload_too_large`` form instead (coordinates,
size, SHA-256, first bytes), as is a dead letter librdkafka or the broker refuses anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, Protocol, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import DEFAULT_MAX_MESSAGE_BYTES, max_message_bytes
from tillbridge.streams.runtime import health, metrics
from tillbridge.streams.stages.deadletter import (
    is_dead_letter,
    record_size,
    shrinkable,
    too_large,
)
from tillbridge.streams.stages.messages import Outbound

log = logging.getLogger(__name__)

EXIT_UNDELIVERABLE = 70  # EX_SOFTWARE
#: How long one ``room()`` waits for librdkafka to hand queued messages to the broker.
ROOM_WAIT_S = 0.01

#: Room kept below the declared limit for the record batch's own framing.
FRAMING_MARGIN = 1024
#: librdkafka's own ceiling on one message: high, because the size check here is the gate.
LIBRDKAFKA_MAX_BYTES = 64 * 1024 * 1024
_SIZE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE})

Headers = list[tuple[str, bytes]]
_Pending = tuple[str, bytes | None, bytes | None, Headers]


def broker_limit(bootstrap: str) -> int:
    """The record size every DLQ topic and the broker accept (``describe_configs`` at
    start; a safe default when the cluster does not answer, as Tansu may not)."""
    limit, source = max_message_bytes(bootstrap, [topics.dlq_topic(s) for s in
                                                  topics.DLQ_STAGES])
    log.info("records larger than %d bytes are dead-lettered as payload_too_large (%s)",
             limit, source)
    return limit


class ProduceRefused(Exception):
    """librdkafka refused one message before queueing it: that outcome cannot be produced
    as it is (retrying the same bytes gives the same answer)."""

    def __init__(self, topic: str, error: KafkaException) -> None:
        super().__init__(f"cannot produce to {topic}: {error}")
        self.topic = topic
        self.error = error


class RecordTooLarge(ProduceRefused):
    """An output larger than the topic accepts, found before producing it."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        super().__init__(topic, KafkaException(KafkaError(
            KafkaError.MSG_SIZE_TOO_LARGE, f"{size} bytes > {limit} bytes")))
        self.size = size


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` the emitter uses (a fake in tests)."""

    def produce(self, topic: str, value: bytes | None = ..., key: bytes | None = ...,
                headers: Any = ..., on_delivery: Any = ...) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...


class EmitterLike(Protocol):
    """What the agents use of an emitter (a recording fake in tests)."""

    def emit(self, topic: str, key: bytes | None, value: bytes | None,
             headers: Headers | None = None) -> bool: ...

    async def room(self) -> None: ...

    async def send(self, out: Outbound) -> None: ...

    async def flush(self) -> None: ...


class Emitter:
    """A confluent-kafka producer with per-batch delivery accounting."""

    def __init__(self, bootstrap: str, *, linger_ms: int = 2, retries: int = 3,
                 config: dict[str, Any] | None = None,
                 producer: ProducerLike | None = None,
                 max_bytes: int | None = None) -> None:
        learn = max_bytes is None and producer is None
        self._set_limit(max_bytes or DEFAULT_MAX_MESSAGE_BYTES)
        self._producer: ProducerLike = producer if producer is not None else cast(
            ProducerLike, Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,  # no duplicates from librdkafka's own retries
            "acks": "all",
            "linger.ms": linger_ms,
            "compression.type": "lz4",
            # our own size check (``max_bytes``) is the gate; librdkafka's must not refuse
            # what the broker accepts, whatever limit is learnt later
            "message.max.bytes": max(self.max_bytes + FRAMING_MARGIN, LIBRDKAFKA_MAX_BYTES),
            # broker-wide errors mark the broker down for /ready; librdkafka's log lines go
            # through Python logging (and its repeat filter) instead of stderr
            "error_cb": health.on_kafka_error,
            "logger": logging.getLogger("librdkafka.producer"),
            **(config or {}),
        }))
        if learn:
            # asked off the caller's thread: a broker that is down (or slow to answer
            # describe_configs) must not hold up the worker's start; the default applies
            # until the answer comes
            threading.Thread(target=lambda: self._set_limit(broker_limit(bootstrap)),
                             name="dlq-size-limit", daemon=True).start()
        self._retries = retries
        # Delivery callbacks run on whichever thread polls: the agent's (emit) or the
        # commit's executor thread (flush). Only the failed list is shared, under a lock;
        # no in-flight counter, which two threads could drift — librdkafka's own queue
        # (what flush waits for) is the count that matters.
        self._lock = threading.Lock()
        self._failed: list[_Pending] = []

    def _set_limit(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._fits = max_bytes - FRAMING_MARGIN

    def emit(self, topic: str, key: bytes | None, value: bytes | None,
             headers: Headers | None = None) -> bool:
        """Queue one message. False: librdkafka's queue is full and nothing was queued
        (await ``room()``, then emit again). Raises ``ProduceRefused`` when librdkafka
        refuses the message itself."""
        hdrs = headers or []
        if record_size(key, value, hdrs) > self._fits:  # a few len()s on bytes in hand
            out = Outbound(topic, key, value, hdrs)
            if not is_dead_letter(out):
                raise RecordTooLarge(topic, record_size(key, value, hdrs), self._fits)
            small = too_large(out, self._fits)
            topic, key, value, hdrs = small.topic, small.key, small.value, small.headers

        # The delivery report does not carry the headers back; the closure keeps them
        # for a re-produce.
        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                return
            log.warning("delivery to %s failed: %s", topic, err)
            pending: _Pending = (topic, key, value, hdrs)
            if err.code() in _SIZE_ERRORS:  # the broker's limit is below what it declared
                dl = Outbound(topic, key, value, hdrs)
                if shrinkable(dl):
                    small = too_large(dl, self._fits)
                    pending = (small.topic, small.key, small.value, small.headers)
            with self._lock:
                self._failed.append(pending)

        try:
            self._producer.produce(topic, value=value, key=key, headers=hdrs,
                                   on_delivery=on_delivery)
        except BufferError:
            return False
        except KafkaException as exc:
            out = Outbound(topic, key, value, hdrs)
            if shrinkable(out):  # refused anyway (a limit lower than declared): shrink once
                small = too_large(out, self._fits)
                return self.emit(small.topic, small.key, small.value, small.headers)
            raise ProduceRefused(topic, exc) from exc
        self._producer.poll(0)
        return True

    async def room(self) -> None:
        """Wait, without blocking the loop, for librdkafka's queue to make room: delivery
        reports are served (which frees their slots) and the broker gets time to answer."""
        metrics.EMIT_QUEUE_FULL_WAITS.inc()
        self._producer.poll(0)
        await asyncio.sleep(ROOM_WAIT_S)

    async def send(self, out: Outbound) -> None:
        """``emit`` that waits for room when the queue is full (the sink's and the guard's
        way: they produce a handful of messages per NetSuite call, not per µs)."""
        while not self.emit(out.topic, out.key, out.value, out.headers):
            await self.room()

    def _flush_blocking(self) -> None:
        for attempt in range(self._retries + 1):
            remaining = self._producer.flush(30)
            with self._lock:
                failed, self._failed = self._failed, []
            if remaining == 0 and not failed:
                return
            lost = [p for p in failed if not self._requeue(p)]
            if lost:
                break
            log.warning("re-producing %d undelivered messages (attempt %d)", len(failed),
                        attempt + 1)
        log.critical("messages could not be delivered; exiting without committing so the "
                     "input is reprocessed")
        os._exit(EXIT_UNDELIVERABLE)

    def _requeue(self, pending: _Pending) -> bool:
        """Produce an undelivered message again (on the flush's executor thread, where
        waiting for queue room may block). False when librdkafka refuses it now."""
        topic, key, value, hdrs = pending
        try:
            while not self.emit(topic, key, value, hdrs):
                self._producer.poll(0.05)
        except ProduceRefused as exc:  # it was accepted once: not expected
            log.critical("undelivered message not accepted again: %s", exc)
            return False
        return True

    async def flush(self) -> None:
        """Wait (off the event loop) until everything emitted so far is delivered."""
        # Cheap when nothing is queued: librdkafka returns at once.
        await asyncio.get_running_loop().run_in_executor(None, self._flush_blocking)
