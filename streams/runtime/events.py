"""A Faust event as the pipeline sees it, and the two things the agents do to events
besides reading them: point Faust's current-event context at one, and hold one back from
being acked.

Kept apart from the agents so they can be driven by fake events in tests: anything with a
``message`` (topic, partition, offset, key, value, headers, ``incref``) will do.
"""

from __future__ import annotations

import weakref
from typing import Any

from faust import streams as faust_streams

from tillbridge.streams.stages.messages import Source


def source(event: Any) -> Source:
    """The record as consumed: coordinates and bytes untouched."""
    msg = event.message
    raw = msg.headers
    headers = list(raw.items()) if isinstance(raw, dict) else list(raw or ())
    return Source(msg.topic, msg.partition, msg.offset, msg.key, msg.value, headers)


def bare_source(event: Any) -> Source:
    """The record without its headers: for a dead letter when ``source`` itself failed
    (a header the client could not hand over), so the bytes still reach the DLQ."""
    msg = event.message
    return Source(msg.topic, msg.partition, msg.offset, msg.key, msg.value, [])


def bind(event: Any) -> None:
    """Make ``event`` Faust's current event in this context: table writes (the dedupe table)
    then land in the changelog partition of that record. Each task gathered by the sink
    runs in its own context copy, so every one binds its own record."""
    faust_streams._current_event.set(weakref.ref(event))


def hold(event: Any) -> None:
    """Keep ``event`` from ever being acked: Faust acks a batch's events when the agent
    moves on, and an event is final-acked (its offset committable) only when its message's
    reference count drops to zero. One extra reference keeps it above zero, so the
    committed offset of its partition stops right before it and the record is read again
    by whoever next owns the partition (after a restart or a rebalance)."""
    event.message.incref()
