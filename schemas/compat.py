"""Backward-compatibility check by schema resolution.

BACKWARD compatible means: a consumer using the *new* schema can read every
record written with the *old* one. Rather than re-implementing the Avro spec's
resolution rules, we let fastavro do what a consumer will do at run time: write
synthetic records with the old schema and read them with the new one. The
samples are built so that every union branch, every enum symbol and both empty
and non-empty arrays/maps are exercised, because fastavro resolves those parts
lazily (only when a value actually takes that path).

Used by the embedded schema registry (``POST /compatibility/...`` and on
register) and by the schema test-suite.
"""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import fastavro

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _full_name(name: str, namespace: str | None) -> str:
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


class _SampleBuilder:
    """Builds the i-th synthetic value of a schema (deterministic, no randomness)."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def width(self, schema: Any, namespace: str | None = None, seen: set[str] | None = None) -> int:
        """How many samples are needed to visit every union branch and enum symbol."""
        seen = set() if seen is None else seen
        if isinstance(schema, list):
            return max([len(schema)] + [self.width(s, namespace, seen) for s in schema])
        if isinstance(schema, str):
            return 1
        kind = schema.get("type")
        if isinstance(kind, dict | list):
            return self.width(kind, namespace, seen)
        if kind in ("record", "error"):
            full = _full_name(schema["name"], schema.get("namespace", namespace))
            if full in seen:
                return 1
            seen.add(full)
            ns = full.rpartition(".")[0] or None
            return max([1] + [self.width(f["type"], ns, seen) for f in schema.get("fields", [])])
        if kind == "enum":
            return len(schema.get("symbols", [])) or 1
        if kind == "array":
            return max(2, self.width(schema["items"], namespace, seen))
        if kind == "map":
            return max(2, self.width(schema["values"], namespace, seen))
        return 1

    def value(self, schema: Any, i: int, namespace: str | None = None, depth: int = 0) -> Any:
        if isinstance(schema, list):
            branches = schema
            if depth > 8 and "null" in branches:
                return None
            return self.value(branches[i % len(branches)], i, namespace, depth + 1)
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self._primitive(schema, None, i)
            ref = self.named.get(_full_name(schema, namespace)) or self.named.get(schema)
            if ref is None:
                raise ValueError(f"unknown named type {schema!r}")
            return self.value(ref, i, namespace, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, dict | list):
            return self.value(kind, i, namespace, depth + 1)
        if kind in ("record", "error"):
            full = _full_name(schema["name"], schema.get("namespace", namespace))
            self.named[full] = schema
            ns = full.rpartition(".")[0] or None
            return {
                f["name"]: self.value(f["type"], i, ns, depth + 1) for f in schema.get("fields", [])
            }
        if kind == "enum":
            full = _full_name(schema["name"], schema.get("namespace", namespace))
            self.named[full] = schema
            symbols = schema["symbols"]
            return symbols[i % len(symbols)]
        if kind == "fixed":
            full = _full_name(schema["name"], schema.get("namespace", namespace))
            self.named[full] = schema
            return bytes(schema["size"])
        if kind == "array":
            count = 0 if i % 2 == 0 or depth > 8 else 2
            return [self.value(schema["items"], i + k, namespace, depth + 1) for k in range(count)]
        if kind == "map":
            count = 0 if i % 2 == 0 or depth > 8 else 2
            return {
                f"k{k}": self.value(schema["values"], i + k, namespace, depth + 1)
                for k in range(count)
            }
        return self._primitive(kind, schema, i)

    @staticmethod
    def _primitive(kind: str, schema: dict[str, Any] | None, i: int) -> Any:
        logical = (schema or {}).get("logicalType")
        if kind == "null":
            return None
        if kind == "boolean":
            return i % 2 == 1
        if kind in ("int", "long"):
            return i + 1
        if kind in ("float", "double"):
            return float(i) + 0.5
        if kind == "bytes":
            if logical == "decimal":
                scale = int((schema or {}).get("scale", 0))
                return Decimal(i + 1).scaleb(-scale) if scale else Decimal(i + 1)
            return bytes([i % 256])
        if kind == "string":
            return f"s{i}"
        raise ValueError(f"unsupported Avro type {kind!r}")


def _as_dict(schema: str | dict[str, Any] | list[Any]) -> Any:
    return json.loads(schema) if isinstance(schema, str) else schema


def backward_problems(
    old: str | dict[str, Any] | list[Any], new: str | dict[str, Any] | list[Any]
) -> list[str]:
    """Reasons why data written with ``old`` cannot be read with ``new`` (empty = compatible)."""
    try:
        old_json, new_json = _as_dict(old), _as_dict(new)
    except ValueError as exc:
        return [f"schema is not valid JSON: {exc}"]
    try:
        writer = fastavro.parse_schema(old_json, _write_hint=False)
    except Exception as exc:  # any parse failure is a verdict, not a crash
        return [f"old schema does not parse: {exc}"]
    try:
        reader = fastavro.parse_schema(new_json, _write_hint=False)
    except Exception as exc:
        return [f"new schema does not parse: {exc}"]
    try:
        records = sample_records(old_json)
    except Exception as exc:
        return [f"cannot build sample data for the old schema: {exc}"]
    problems: list[str] = []
    for record in records:
        try:
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, writer, record)
            buf.seek(0)
            fastavro.schemaless_reader(buf, writer, reader)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if message not in problems:
                problems.append(message)
    return problems


def is_backward_compatible(
    old: str | dict[str, Any] | list[Any], new: str | dict[str, Any] | list[Any]
) -> bool:
    """True when a reader with schema ``new`` can read data written with ``old``."""
    return not backward_problems(old, new)


def sample_records(schema: str | dict[str, Any]) -> list[Any]:
    """Synthetic values covering every union branch and enum symbol of ``schema``.

    Deterministic; used by the compatibility check and handy for round-trip tests.
    """
    schema_json = _as_dict(schema)
    builder = _SampleBuilder()
    return [builder.value(schema_json, i) for i in range(builder.width(schema_json) + 1)]
