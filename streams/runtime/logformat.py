"""``TILLBRIDGE_LOG_FORMAT=json``: one JSON object per log line, for log shippers.

Fields: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``, the
record ids a call site passes with ``extra=`` (``IDS``: topic, partition, offset, POS
transaction, event id, externalId, stage, reason) and ``exc`` (the traceback) when there is
one. Written by hand rather than with python-json-logger: twenty lines, a fixed field set
and no dependency for a worker image to carry.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

#: Record attributes copied into the JSON object when a call site set them (``extra=``).
IDS = ("topic", "partition", "offset", "pos_transaction_id", "event_id", "external_id",
       "stage", "reason", "attempt")


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
        for name in IDS:
            value = record.__dict__.get(name)
            if value is not None:
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False, default=str)


def install(fmt: str) -> None:
    """Put the chosen format on every handler of the root logger (Faust replaces the root
    handlers when it starts, so the worker calls this again after that)."""
    if fmt != "json":
        return
    formatter = JsonFormatter()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
