"""``TILLBRIDGE_LOG_FORMAT=json``: one JSON object per log line, for log shippers.

Fields: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``, the
ids a call site passes with ``extra=`` (``IDS``: the record's input topic, partition,
offset and key, the stage, reason and rule, the event's POS transaction id, externalId,
order, payment or settlement id, a parked event's id and what it waits for) and ``exc``
(the traceback as one string) when there is one. Only ``IDS`` are copied, so every field
keeps one meaning and one type across lines (a shipper's index maps each field once).

Written by hand rather than with python-json-logger: a fixed field set in a few lines,
and one dependency fewer for the worker image.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from tillbridge.streams.stages.messages import EVENT_IDS

#: Record attributes copied into the JSON object when a call site set them (``extra=``).
IDS = ("topic", "partition", "offset", "key", "stage", "reason", "rule", "attempt",
       *EVENT_IDS, "event_id", "dependency")


class JsonFormatter(logging.Formatter):
    """One object per line; non-ASCII text kept as is; values that are not JSON become str."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        attrs = record.__dict__
        for name in IDS:
            value = attrs.get(name)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def install(fmt: str) -> None:
    """Put the chosen format on every handler of the root logger (Faust replaces the root
    handlers when it starts, so the worker calls this again after that)."""
    if fmt != "json":
        return
    formatter = JsonFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
