"""POS events written by hand as JSON lines, turned into Avro-ready values.

Why: replaying a captured till transaction or a support case should not need
Python. One JSON object per line, in the schema's own field names, plus an
``event_type`` naming the schema (``sale``, ``payment``, ``return``, ...):

* money / quantities / tax rates (Avro ``decimal``) as strings such as ``"12.50"``
  (ints are accepted; floats are refused because they cannot hold cents exactly);
* timestamps as ISO-8601 with an offset (``2025-03-03T15:00:00Z``) or epoch millis;
* optional fields may be left out (schema defaults apply); a missing
  ``event_id`` is filled with a random UUID; unknown fields are errors, so a
  typo does not silently drop data.

Blank lines and lines starting with ``#`` are skipped. Errors name the line.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tillbridge.connectors.kafka.topics import BY_EVENT_TYPE
from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.schemas import load_schema

_KEY_FIELDS = (
    "pos_transaction_id",
    "order_id",
    "movement_id",
    "settlement_id",
    "loyalty_id",
    "customer_id",
    "event_id",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JsonLinesError(ValueError):
    """One or more bad input lines; ``problems`` holds ``(line_no, message)`` pairs."""

    def __init__(self, problems: list[tuple[int, str]], source: str = "<input>") -> None:
        self.problems = problems
        self.source = source
        shown = "\n".join(f"{source}:{n}: {msg}" for n, msg in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(shown + more)


class _Bad(ValueError):
    """A conversion problem at a field path (internal)."""


class _Converter:
    """Converts JSON values to what fastavro writes, driven by one Avro schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.named: dict[str, Any] = {}
        self._register(schema, None)  # so references resolve even inside empty arrays

    def convert(self, value: Any, schema: Any, path: str, ns: str | None = None) -> Any:
        if isinstance(schema, list):
            return self._union(value, schema, path, ns)
        if isinstance(schema, str):
            named = self.named.get(schema) or self.named.get(f"{ns}.{schema}")
            if named is not None:
                return self.convert(value, named, path, ns)
            return self._primitive(value, schema, None, path)
        kind = schema["type"]
        if isinstance(kind, dict | list):
            return self.convert(value, kind, path, ns)
        if kind == "record":
            return self._record(value, schema, path, ns)
        if kind == "array":
            if not isinstance(value, list):
                raise _Bad(f"{path}: expected a JSON array")
            return [
                self.convert(v, schema["items"], f"{path}[{i}]", ns) for i, v in enumerate(value)
            ]
        if kind == "map":
            if not isinstance(value, dict):
                raise _Bad(f"{path}: expected a JSON object")
            return {
                k: self.convert(v, schema["values"], f"{path}.{k}", ns) for k, v in value.items()
            }
        if kind == "enum":
            self._name(schema, ns)
            if value not in schema["symbols"]:
                raise _Bad(f"{path}: {value!r} is not one of {schema['symbols']}")
            return value
        return self._primitive(value, kind, schema, path)

    def _name(self, schema: dict[str, Any], ns: str | None) -> str | None:
        name = schema["name"]
        namespace = schema.get("namespace", ns)
        full = name if "." in name or not namespace else f"{namespace}.{name}"
        self.named[full] = schema
        return full.rpartition(".")[0] or None

    def _record(self, value: Any, schema: dict[str, Any], path: str, ns: str | None) -> Any:
        inner_ns = self._name(schema, ns)
        if not isinstance(value, dict):
            raise _Bad(f"{path or 'event'}: expected a JSON object")
        names = {f["name"] for f in schema["fields"]}
        unknown = sorted(set(value) - names)
        if unknown:
            raise _Bad(f"{path or 'event'}: unknown field(s) {unknown}")
        out = {}
        for field in schema["fields"]:
            name, sub = field["name"], f"{path}.{field['name']}" if path else field["name"]
            if name in value:
                out[name] = self.convert(value[name], field["type"], sub, inner_ns)
            elif "default" in field:
                out[name] = field["default"]
            else:
                raise _Bad(f"{sub}: required field missing")
        return out

    def _register(self, schema: Any, ns: str | None) -> None:
        """Record every named type defined in ``schema`` (types may be referenced before use)."""
        if isinstance(schema, list):
            for s in schema:
                self._register(s, ns)
        elif isinstance(schema, dict):
            kind = schema.get("type")
            if kind in ("record", "enum", "fixed"):
                inner = self._name(schema, ns)
                for f in schema.get("fields", []):
                    self._register(f["type"], inner)
            elif kind == "array":
                self._register(schema["items"], ns)
            elif kind == "map":
                self._register(schema["values"], ns)
            elif isinstance(kind, dict | list):
                self._register(kind, ns)

    def _union(self, value: Any, branches: list[Any], path: str, ns: str | None) -> Any:
        if value is None:
            if "null" in branches:
                return None
            raise _Bad(f"{path}: null is not allowed")
        problems = []
        for branch in branches:
            if branch == "null":
                continue
            try:
                return self.convert(value, branch, path, ns)
            except _Bad as exc:
                problems.append(str(exc))
        raise _Bad(problems[0] if len(problems) == 1 else f"{path}: no union branch fits {value!r}")

    @staticmethod
    def _primitive(value: Any, kind: str, schema: dict[str, Any] | None, path: str) -> Any:
        logical = (schema or {}).get("logicalType")
        if kind == "bytes" and logical == "decimal":
            return _decimal(value, int((schema or {}).get("scale", 0)), path)
        if kind == "long" and logical == "timestamp-millis":
            return _timestamp(value, path)
        if kind == "string":
            if not isinstance(value, str):
                raise _Bad(f"{path}: expected a string, got {value!r}")
            return value
        if kind in ("int", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise _Bad(f"{path}: expected an integer, got {value!r}")
            return value
        if kind == "boolean":
            if not isinstance(value, bool):
                raise _Bad(f"{path}: expected true/false, got {value!r}")
            return value
        if kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _Bad(f"{path}: expected a number, got {value!r}")
            return float(value)
        if kind == "null":
            if value is not None:
                raise _Bad(f"{path}: expected null")
            return None
        if kind == "bytes":
            if not isinstance(value, str):
                raise _Bad(f"{path}: expected a string for bytes")
            return value.encode("latin-1")
        raise _Bad(f"{path}: unsupported Avro type {kind!r}")


def _decimal(value: Any, scale: int, path: str) -> Decimal:
    if isinstance(value, bool | float):
        raise _Bad(f'{path}: give decimals as strings like "12.50", not {value!r}')
    if not isinstance(value, str | int):
        raise _Bad(f"{path}: expected a decimal string, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Bad(f"{path}: {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise _Bad(f"{path}: {value!r} is not a finite number")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > scale:
        raise _Bad(f"{path}: {value!r} has more than {scale} decimal places")
    return number.quantize(Decimal(1).scaleb(-scale))


def _timestamp(value: Any, path: str) -> datetime:
    if isinstance(value, bool):
        raise _Bad(f"{path}: expected a timestamp, got {value!r}")
    if isinstance(value, int):
        return _EPOCH + timedelta(milliseconds=value)
    if not isinstance(value, str):
        raise _Bad(f"{path}: expected ISO-8601 text or epoch millis, got {value!r}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _Bad(f"{path}: {value!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise _Bad(f"{path}: {value!r} has no UTC offset (add Z or +hh:mm)")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _key(event: dict[str, Any]) -> bytes:
    for name in _KEY_FIELDS:
        if event.get(name):
            return str(event[name]).encode()
    return b""


def parse_line(text: str) -> GeneratedEvent:
    """Convert one JSON line; raises ValueError with a field path on bad input."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    event_type = obj.pop("event_type", None)
    topic = BY_EVENT_TYPE.get(event_type) if isinstance(event_type, str) else None
    if topic is None:
        raise ValueError(
            f"event_type {event_type!r} unknown; expected one of {sorted(BY_EVENT_TYPE)}"
        )
    obj.setdefault("event_id", str(uuid.uuid4()))
    schema = load_schema(topic.schema_file)
    try:
        value = _Converter(schema).convert(obj, schema, "")
    except _Bad as exc:
        raise ValueError(f"{event_type}: {exc}") from None
    return GeneratedEvent(_key(value), value, topic)


def parse_jsonl(lines: Iterable[str], source: str = "<input>") -> Iterator[GeneratedEvent]:
    """Yield events of JSON lines; stops at the first bad line with :class:`JsonLinesError`."""
    for line_no, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            yield parse_line(text)
        except ValueError as exc:
            raise JsonLinesError([(line_no, str(exc))], source) from None


def read_jsonl(path: str | Path) -> list[GeneratedEvent]:
    """All events of a JSON-lines file, or one :class:`JsonLinesError` listing every bad line."""
    events: list[GeneratedEvent] = []
    problems: list[tuple[int, str]] = []
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                problems.append((line_no, f"not UTF-8 text (byte {exc.start + 1})"))
                continue
            if not text or text.startswith("#"):
                continue
            try:
                events.append(parse_line(text))
            except ValueError as exc:
                problems.append((line_no, str(exc)))
    if problems:
        raise JsonLinesError(problems, str(path))
    return events
