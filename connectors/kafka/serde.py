"""Confluent wire-format Avro encode/decode for the POS topics.

Wire format: magic byte ``0``, 4-byte big-endian schema id, Avro binary body.

Encoding goes through confluent-kafka's ``AvroSerializer`` (which registers the
schema under the topic's subject on first use, TopicNameStrategy), so what we
produce is byte-for-byte what any Confluent producer would produce.

Decoding is the consumer's hot path (thousands of events/s) and must never
raise anything but :class:`DecodeError`, whatever bytes arrive. It uses
confluent-kafka's ``SchemaRegistryClient`` to fetch writer schemas, but not
``AvroDeserializer``: that class re-derives the subject, checks data-contract
rules and re-expands the reader schema on *every* message. Measured on a ~1 KB
sale: ~160 us/event through ``AvroDeserializer`` against ~100-115 us/event
here, most of which is fastavro building the ~80 ``Decimal`` values. Instead each
(schema id, topic) pair is resolved once into a cached plan -- parsed writer
schema, parsed reader schema, and the verdict of the subject check -- and each
message is then a single fastavro ``schemaless_reader`` call. The test-suite
checks that both paths decode the same bytes to the same values.

For topics listed in :mod:`tillbridge.connectors.kafka.topics` the reader
schema is the current ``schemas/*.avsc`` one, so records written with an older
(compatible) schema come out in today's shape, with new fields defaulted.
Avro ``decimal`` fields come out as :class:`decimal.Decimal`, never float, and
``timestamp-millis`` as timezone-aware UTC :class:`datetime.datetime`.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient, topic_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from tillbridge.connectors.kafka.topics import EVENT_TOPICS, EventTopic
from tillbridge.schemas import load_schema, schema_text
from tillbridge.schemas.compat import backward_problems

MAGIC_BYTE = 0
HEADER_SIZE = 5

Reason = Literal["not_avro", "unknown_schema_id", "schema_mismatch"]


class DecodeError(Exception):
    """A message that cannot be decoded; the only exception :meth:`AvroCodec.decode` raises.

    ``reason`` is one of:

    * ``"not_avro"`` -- empty, shorter than the 5-byte header plus a body, or a
      magic byte other than 0: not Confluent-framed at all;
    * ``"unknown_schema_id"`` -- the registry has no schema with that id;
    * ``"schema_mismatch"`` -- the id exists but the body does not decode with
      it, it was registered for another subject / record type, or it cannot be
      resolved to the topic's current schema.

    ``retryable`` is True only when the registry could not be reached (the
    message itself may be fine): a worker should retry or pause rather than
    dead-letter it. Poison bytes never produce a retryable error.
    """

    def __init__(self, reason: Reason, message: str, *, retryable: bool = False) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: Reason = reason
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to decode one schema id on one topic, decided once and cached."""

    writer: Any  # fastavro-parsed writer schema
    reader: Any  # fastavro-parsed reader schema, or None to read with the writer schema
    error: str | None = None  # set when every message with this id is a schema_mismatch


_TOPICS_BY_NAME: dict[str, EventTopic] = {t.name: t for t in EVENT_TOPICS}


def _full_name(schema: dict[str, Any]) -> str:
    name = schema.get("name", "")
    namespace = schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


class AvroCodec:
    """Encoder factory and decoder for Confluent-framed Avro on the POS topics."""

    def __init__(
        self,
        registry_url: str,
        *,
        client: SchemaRegistryClient | None = None,
        registry_conf: dict[str, Any] | None = None,
        unknown_id_ttl: float = 30.0,
    ) -> None:
        """``registry_conf``: extra ``SchemaRegistryClient`` settings (auth, TLS,
        ``max.retries``...). ``unknown_id_ttl``: seconds an id the registry denied
        is remembered, so a burst of poison messages with one bogus id costs one
        HTTP call."""
        self._client = client or SchemaRegistryClient(
            {**(registry_conf or {}), "url": registry_url}
        )
        self._plans: dict[tuple[int, str], _Plan] = {}
        self._unknown: dict[int, float] = {}
        self._unknown_ttl = unknown_id_ttl
        self._readers: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> SchemaRegistryClient:
        return self._client

    # -- encode ------------------------------------------------------------
    def encoder(self, topic: EventTopic) -> Callable[[dict[str, Any]], bytes]:
        """A function turning one event dict into Confluent-framed Avro for ``topic``.

        The topic's schema is registered under ``topic.subject`` on the first
        call (not here), so building encoders needs no registry round-trip.
        """
        serializer = AvroSerializer(
            self._client,
            schema_text(topic.schema_file),
            conf={
                "auto.register.schemas": True,
                "subject.name.strategy": topic_subject_name_strategy,
            },
        )
        ctx = SerializationContext(topic.name, MessageField.VALUE)

        def encode(event: dict[str, Any]) -> bytes:
            data = serializer(event, ctx)
            assert data is not None  # only None for a None event
            return data

        return encode

    # -- decode ------------------------------------------------------------
    def decode(self, value: bytes, topic: str) -> dict[str, Any]:
        """Decode one Kafka message value from ``topic``; raises only :class:`DecodeError`."""
        try:
            if not isinstance(value, bytes):
                if not isinstance(value, bytearray | memoryview):
                    raise DecodeError("not_avro", f"expected bytes, got {type(value).__name__}")
                value = bytes(value)
            if len(value) <= HEADER_SIZE:
                raise DecodeError(
                    "not_avro", f"{len(value)} bytes; Confluent framing needs at least 6"
                )
            if value[0] != MAGIC_BYTE:
                raise DecodeError("not_avro", f"magic byte {value[0]}, expected 0")
            schema_id = int.from_bytes(value[1:HEADER_SIZE], "big")
            plan = self._plans.get((schema_id, topic))
            if plan is None:
                plan = self._plan(schema_id, topic)
            if plan.error is not None:
                raise DecodeError("schema_mismatch", plan.error)
            buf = io.BytesIO(value)
            buf.seek(HEADER_SIZE)
            record = fastavro.schemaless_reader(buf, plan.writer, plan.reader)
            if buf.tell() != len(value):
                raise DecodeError(
                    "schema_mismatch",
                    f"{len(value) - buf.tell()} bytes left after decoding with schema id "
                    f"{schema_id}",
                )
            if not isinstance(record, dict):
                raise DecodeError("schema_mismatch", "payload is not an Avro record")
            return record
        except DecodeError:
            raise
        except RecursionError as exc:
            raise DecodeError("schema_mismatch", f"nesting too deep: {exc}") from None
        except Exception as exc:  # poison bytes must never escape as anything else
            raise DecodeError(
                "schema_mismatch", f"body does not decode: {type(exc).__name__}: {exc}"
            ) from None

    def _reader_for(self, topic: EventTopic) -> tuple[str, Any]:
        cached = self._readers.get(topic.name)
        if cached is None:
            schema = load_schema(topic.schema_file)
            cached = (_full_name(schema), fastavro.parse_schema(schema))
            self._readers[topic.name] = cached
        return cached

    def _plan(self, schema_id: int, topic: str) -> _Plan:
        denied_at = self._unknown.get(schema_id)
        if denied_at is not None and time.monotonic() - denied_at < self._unknown_ttl:
            raise DecodeError("unknown_schema_id", f"schema id {schema_id} is not registered")
        try:
            registered = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                self._unknown[schema_id] = time.monotonic()
                raise DecodeError(
                    "unknown_schema_id", f"schema id {schema_id} is not registered"
                ) from None
            raise DecodeError(
                "unknown_schema_id",
                f"registry error fetching schema id {schema_id}: {exc}",
                retryable=True,
            ) from None
        except Exception as exc:  # connection refused, timeout, bad JSON ...
            raise DecodeError(
                "unknown_schema_id",
                f"registry unreachable fetching schema id {schema_id}: {exc}",
                retryable=True,
            ) from None
        plan = self._build_plan(schema_id, topic, registered.schema_type, registered.schema_str)
        with self._lock:
            self._plans[(schema_id, topic)] = plan
        return plan

    def _build_plan(
        self, schema_id: int, topic: str, schema_type: str | None, schema_str: str | None
    ) -> _Plan:
        if (schema_type or "AVRO") != "AVRO" or not schema_str:
            return _Plan(None, None, f"schema id {schema_id} is {schema_type}, not Avro")
        try:
            writer_json = json.loads(schema_str)
            writer = fastavro.parse_schema(writer_json)
        except Exception as exc:
            return _Plan(None, None, f"schema id {schema_id} does not parse: {exc}")
        event_topic = _TOPICS_BY_NAME.get(topic)
        if event_topic is None:
            return _Plan(writer, None)  # unknown topic: read as written
        expected_name, reader = self._reader_for(event_topic)
        if not isinstance(writer_json, dict) or _full_name(writer_json) != expected_name:
            got = _full_name(writer_json) if isinstance(writer_json, dict) else "non-record"
            return _Plan(
                None, None, f"schema id {schema_id} is {got}, topic {topic} carries {expected_name}"
            )
        subjects = self._subjects_of(schema_id)
        if subjects is not None and event_topic.subject not in subjects:
            return _Plan(
                None,
                None,
                f"schema id {schema_id} is registered under {subjects}, not {event_topic.subject}",
            )
        if json.loads(schema_text(event_topic.schema_file)) == writer_json:
            return _Plan(writer, None)
        problems = backward_problems(writer_json, load_schema(event_topic.schema_file))
        if problems:
            return _Plan(
                None,
                None,
                f"schema id {schema_id} cannot be read as the current {expected_name}: "
                f"{problems[0]}",
            )
        return _Plan(writer, reader)

    def _subjects_of(self, schema_id: int) -> list[str] | None:
        """Subjects the id is registered under, or None when the registry cannot say."""
        try:
            subjects = self._client.get_subjects_by_schema_id(schema_id)
        except Exception:  # older registries lack the endpoint: skip the check
            return None
        return list(subjects) if isinstance(subjects, list) else None
