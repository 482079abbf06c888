"""The results records of a window's members, built together.

A closed window is one NetSuite record shared by hundreds or thousands of events, each of
which still gets its own results record (``flows/sink.py``: one per event, keyed by its POS
id, counted by its source). Built one by one through ``sink.posting_messages`` each repeats
the window's part (the record list, the outcome, the clock) and the counters; here that
part is done once per window and each member adds only its ids, source and event time.
The documents are the same as ``sink.result`` writes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.streams.flows.base import Event, Flow
from tillbridge.streams.ledger.loyalty import LOYALTY_SUMMARISED
from tillbridge.streams.ledger.types import Written
from tillbridge.streams.runtime import metrics
from tillbridge.streams.stages.messages import Outbound, Source

_HEADERS = [("tillbridge.outcome", b"posted")]
#: the C string escaper ``json.dumps`` itself uses (``ensure_ascii``)
_text: Callable[[str], str] = getattr(json.encoder, "encode_basestring_ascii")  # noqa: B009


def _value(v: Any) -> str:
    """One JSON value as ``json.dumps`` writes it; strings and None (nearly every id)
    without setting up an encoder (``json.dumps`` does per call: ~1 µs of ~2)."""
    if v is None:
        return "null"
    if type(v) is str:
        return _text(v)
    return json.dumps(v)


def posted_results(flow: Flow, members: Sequence[tuple[Event, Source]],
                   written: Written) -> list[Outbound]:
    """One ``posted`` results record per member of a window whose record is ``written``
    (the record counted once by the caller, not once per member)."""
    records = [{"record_type": written.record_type, "netsuite_id": written.netsuite_id,
                "external_id": written.external_id, "created": written.created,
                **written.links}]
    result_time = datetime.now(UTC).isoformat(timespec="milliseconds")
    # the window's part, encoded once and spliced into each member's object
    tail = (', "records": ' + json.dumps(records) + ', "result_time": '
            + json.dumps(result_time) + "}").encode()
    now = time.time()
    waited: list[float] | None = [] if written.created else None
    ids_of, event_time = flow.ids, flow.event_time
    summary = written.links.get("summary") == "true"
    outs: list[Outbound] = []
    head = '{"event_type": ' + _text(flow.kind)
    keys: dict[str, str] = {}  # each id's name, escaped once a window
    for event, origin in members:
        ids = ids_of(event)
        when = event_time(event)
        if waited is not None and when is not None:
            waited.append(max(0.0, now - when.timestamp()))
        # the document as json.dumps wrote it (same keys, order and separators), written
        # directly: thousands a window (``bench.lane_profile``)
        parts = [head]
        for k, v in ids.items():
            name = keys.get(k)
            if name is None:
                name = keys[k] = _text(k)
            parts.append(f", {name}: {_value(v)}")
        parts.append(f', "outcome": "posted", "source": '
                     f'{_text(f"{origin.topic}/{origin.partition}/{origin.offset}")}, '
                     f'"event_time": {_value(when.isoformat() if when is not None else None)}')
        if summary and event.get("loyalty_points_earned"):
            parts.append(', "loyalty_skipped": ' + json.dumps(
                {"reason": LOYALTY_SUMMARISED, "points": event["loyalty_points_earned"]}))
        key = str(ids.get("pos_transaction_id") or ids.get("external_id") or "").encode()
        value = "".join(parts).encode() + tail
        out = Outbound(topics.RESULTS, key, value, list(_HEADERS))
        out.written = (written.external_id,)
        outs.append(out)
    if waited:
        metrics.observe_all(metrics.EVENT_TO_RECORD, waited)
    return outs
