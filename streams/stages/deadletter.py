"""Dead-letter stage: the original key/value bytes, untouched, plus headers that say what,
where, which rule and what to do.

Header names follow Kafka Connect's ``__connect.errors.*`` where one fits, so existing DLQ
tooling reads them; the rest are ``tillbridge.*``. A replayed record that fails again keeps
its first-failure time and bumps the attempt count.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from tillbridge.connectors.kafka import topics
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages.messages import Headers, Outbound, Source, log_ids
from tillbridge.streams.stages.reasons import CATALOGUE, ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection

log = logging.getLogger(__name__)

H_TOPIC = "__connect.errors.topic"
H_PARTITION = "__connect.errors.partition"
H_OFFSET = "__connect.errors.offset"
H_STAGE = "__connect.errors.stage"
H_CLASS = "__connect.errors.class.name"
H_EXC_CLASS = "__connect.errors.exception.class.name"
H_EXC_MESSAGE = "__connect.errors.exception.message"
H_REASON = "tillbridge.reason"
H_RULE = "tillbridge.rule"
H_INPUTS = "tillbridge.inputs"
H_FIX = "tillbridge.fix"
H_ATTEMPTS = "tillbridge.attempts"
H_FIRST = "tillbridge.first_failure"
H_LAST = "tillbridge.last_failure"
H_NS_DETAILS = "tillbridge.netsuite.error_details"
H_ORIG_SIZE = "tillbridge.original.size"
H_ORIG_SHA256 = "tillbridge.original.sha256"
H_ORIG_REASON = "tillbridge.original.reason"

#: Bytes of the original value (and at most of its key) a ``payload_too_large`` letter keeps.
HEAD_BYTES = 1024

#: Headers this module writes; stripped from a replayed record before new ones are added.
_OURS = {H_TOPIC, H_PARTITION, H_OFFSET, H_STAGE, H_CLASS, H_EXC_CLASS, H_EXC_MESSAGE, H_REASON,
         H_RULE, H_INPUTS, H_FIX, H_ATTEMPTS, H_FIRST, H_LAST, H_NS_DETAILS, H_ORIG_SIZE,
         H_ORIG_SHA256, H_ORIG_REASON}


def header(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> str | None:
    """Last value of a header as text (Kafka allows repeats; the newest wins)."""
    value = None
    for key, raw in headers or ():
        if key == name and raw is not None:
            value = raw.decode("utf-8", "replace")
    return value


def dlq_headers(
    rejection: Rejection,
    *,
    topic: str,
    partition: int,
    offset: int,
    original: Sequence[tuple[str, bytes | None]] | None = None,
    exc: BaseException | None = None,
    executing: str = "",
    netsuite_details: object | None = None,
    now: datetime | None = None,
    step: str | None = None,
) -> Headers:
    """Headers for one dead-lettered record; ``original`` headers are kept, ours replaced."""
    stamp = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").encode()
    attempts = int(header(original, H_ATTEMPTS) or 0) + 1
    first = header(original, H_FIRST)
    kept: Headers = [(k, v) for k, v in (original or ()) if k not in _OURS and v is not None]
    out: Headers = kept + [
        (H_TOPIC, topic.encode()),
        (H_PARTITION, str(partition).encode()),
        (H_OFFSET, str(offset).encode()),
        (H_STAGE, (step or rejection.stage).encode()),
        (H_CLASS, (executing or f"tillbridge.streams.{rejection.stage}").encode()),
        (H_EXC_CLASS, (type(exc).__name__ if exc else "Rejection").encode()),
        (H_EXC_MESSAGE, rejection.message.encode()),
        (H_REASON, rejection.reason.encode()),
        (H_RULE, rejection.rule.encode()),
        (H_INPUTS, json.dumps(rejection.inputs, sort_keys=True, default=str).encode()),
        (H_FIX, CATALOGUE[rejection.reason].fix.encode()),
        (H_ATTEMPTS, str(attempts).encode()),
        (H_FIRST, first.encode() if first else stamp),
        (H_LAST, stamp),
    ]
    if netsuite_details is not None:
        out.append((H_NS_DETAILS, json.dumps(netsuite_details, default=str).encode()))
    return out


def dead_letter(src: Source, rej: Rejection, *, exc: BaseException | None = None,
                details: object | None = None, step: str | None = None,
                event_ids: Mapping[str, object] | None = None) -> Outbound:
    """The DLQ message for a record: original bytes, source coordinates, reason headers.
    ``step``: the runtime step that failed when it is not a pipeline stage (emit, drain,
    release, expire): shown in ``__connect.errors.stage``, in the stage's DLQ.
    ``event_ids``: what the flow knows of the event (``Flow.ids``), for the log line."""
    metrics.DEAD_LETTERED.labels(src.topic, rej.stage, rej.reason).inc()
    _log_dead_letter(src, rej, step, event_ids)
    return Outbound(topics.dlq_topic(rej.stage), src.key, src.value,
                    dlq_headers(rej, topic=src.topic, partition=src.partition, offset=src.offset,
                                original=src.headers, exc=exc, netsuite_details=details,
                                step=step))


def _log_dead_letter(src: Source, rej: Rejection, step: str | None = None,
                     event_ids: Mapping[str, object] | None = None) -> None:
    """One info line per dead letter, with the record's ids (JSON logs: fields). Below
    info (the default is warn) nothing is built: the metric and the DLQ record say it."""
    if log.isEnabledFor(logging.INFO):
        log.info("%s[%s]@%s dead-lettered: %s at %s (%s)", src.topic, src.partition,
                 src.offset, rej.reason, step or rej.stage, rej.rule,
                 extra=log_ids(src, event_ids, stage=str(step or rej.stage),
                               reason=str(rej.reason), rule=rej.rule))


def internal_error(src: Source, stage: Stage | str, exc: BaseException) -> Outbound:
    """The dead letter for a record tillbridge itself failed on (a bug, not bad input).

    ``stage`` is a pipeline stage, or a runtime step that is none (emit, drain, release,
    expire, settle): such a failure goes to the sink's DLQ, the step named in its headers."""
    step = str(stage)
    known = step in {s.value for s in Stage}
    rej = Rejection(stage if known else Stage.SINK, ReasonCode.INTERNAL_ERROR,
                    f"{step}.unexpected", f"{type(exc).__name__}: {exc}"[:500], {})
    return dead_letter(src, rej, exc=exc, step=None if known else step)


def record_size(key: bytes | None, value: bytes | None,
                headers: Sequence[tuple[str, bytes | None]] | None) -> int:
    """Bytes a record carries (key + value + header names and values): what a broker's
    ``max.message.bytes`` is measured against, less the batch framing (callers keep a margin)."""
    size = (len(key) if key else 0) + (len(value) if value else 0)
    for name, raw in headers or ():
        size += len(name) + (len(raw) if raw else 0)
    return size


def is_dead_letter(out: Outbound) -> bool:
    """A dead letter carries its input's coordinates (the one thing a shrunk form needs)."""
    return header(out.headers, H_OFFSET) is not None


def shrinkable(out: Outbound) -> bool:
    """A dead letter not yet in its ``payload_too_large`` form (that form is shrunk once)."""
    return is_dead_letter(out) and header(out.headers, H_REASON) != ReasonCode.PAYLOAD_TOO_LARGE


def too_large(out: Outbound, limit: int, *, now: datetime | None = None) -> Outbound:
    """The ``payload_too_large`` form of a dead letter that cannot be stored whole.

    Kept: the input's coordinates (to fetch the original from its topic), its size and
    SHA-256 (to check what was fetched), the first ``HEAD_BYTES`` of value and key, and
    the reason it was dead-lettered for. The original's headers are dropped (they may be
    what is too large); the letter goes to the decode DLQ, this reason's stage."""
    value = out.value or b""
    size = record_size(out.key, out.value, out.headers)
    first_reason = header(out.headers, H_REASON) or ""
    topic = header(out.headers, H_TOPIC) or ""
    partition = int(header(out.headers, H_PARTITION) or -1)
    offset = int(header(out.headers, H_OFFSET) or -1)
    digest = hashlib.sha256(value).hexdigest()
    inputs = {"size": size, "value_size": len(value), "key_size": len(out.key or b""),
              "limit": limit, "sha256": digest, "original_reason": first_reason}
    rej = Rejection(Stage.DECODE, ReasonCode.PAYLOAD_TOO_LARGE, "decode.max_message_bytes",
                    f"record of {size} bytes is larger than the {limit} bytes the DLQ accepts; "
                    f"fetch it from {topic}[{partition}]@{offset}", inputs)
    metrics.DEAD_LETTERED.labels(topic, rej.stage, rej.reason).inc()
    _log_dead_letter(Source(topic, partition, offset, out.key, None, []), rej)
    headers = dlq_headers(rej, topic=topic, partition=partition, offset=offset, now=now)
    headers += [(H_ORIG_SIZE, str(len(value)).encode()), (H_ORIG_SHA256, digest.encode()),
                (H_ORIG_REASON, first_reason.encode())]
    key = out.key[:HEAD_BYTES] if out.key is not None else None
    return Outbound(topics.dlq_topic(Stage.DECODE), key, value[:HEAD_BYTES], headers)
