"""The Confluent API's rules, apart from the state they apply to: error bodies, schema
identity and validation, version numbers and compatibility levels.

Pure functions: :mod:`.store` applies them under its lock. Compatibility is decided by
:mod:`tillbridge.schemas.compat` (fastavro schema resolution over synthetic records).
"""

from __future__ import annotations

import json
from typing import Any

import fastavro

from tillbridge.schemas.compat import backward_problems

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"
MAX_VERSION = 2**31 - 1


class RegistryError(Exception):
    """An API error, rendered as Confluent's ``{"error_code", "message"}`` body."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def canonical(schema: str, schema_type: str, references: list[Any]) -> str:
    """Identity of a schema: whitespace and key order do not matter, content does."""
    return json.dumps(
        [schema_type, json.loads(schema), references], sort_keys=True, separators=(",", ":")
    )


def validate(body: Any) -> tuple[str, str, list[Any]]:
    """A request body -> (schema, schemaType, references); Avro without references only."""
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise RegistryError(422, 42201, "Invalid schema: request needs a 'schema' string")
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type != "AVRO":
        raise RegistryError(422, 42201, f"Invalid schema: schemaType {schema_type} unsupported")
    references = body.get("references") or []
    if references:
        raise RegistryError(422, 42201, "Invalid schema: schema references are not supported")
    try:
        fastavro.parse_schema(json.loads(body["schema"]), _write_hint=False)
    except Exception as exc:  # any parse failure means an invalid schema
        raise RegistryError(422, 42201, f"Invalid schema: {exc}") from exc
    return body["schema"], schema_type, references


def parse_version(version: str) -> int | None:
    """None means latest."""
    if version in ("latest", "-1"):
        return None
    try:
        number = int(version)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_VERSION:
        raise RegistryError(
            422,
            42202,
            f"The specified version '{version}' is not a valid version id. Allowed values "
            'are between [1, 2^31-1] and the string "latest"',
        )
    return number


def compat_messages(schema: str, against: list[str], level: str) -> list[str]:
    """Problems registering ``schema`` given existing versions ``against`` (oldest first)."""
    if level == "NONE" or not against:
        return []
    targets = against if level.endswith("_TRANSITIVE") else against[-1:]
    messages: list[str] = []
    for old in targets:
        if level.startswith(("BACKWARD", "FULL")):
            messages += [f"BACKWARD: {p}" for p in backward_problems(old, schema)]
        if level.startswith(("FORWARD", "FULL")):
            messages += [f"FORWARD: {p}" for p in backward_problems(schema, old)]
    return messages
