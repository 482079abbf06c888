"""Decode stage: Confluent wire-format Avro bytes to the event dict its topic's schema
names, or a dead letter saying why not (``not_avro``, ``unknown_schema_id``,
``schema_mismatch``). The original bytes stay untouched in the dead letter."""

from __future__ import annotations

from typing import Any

from tillbridge.connectors.kafka.serde import AvroCodec, DecodeError
from tillbridge.streams.stages.deadletter import dead_letter
from tillbridge.streams.stages.messages import Outbound, Source
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection


def decode(codec: AvroCodec, src: Source) -> Any | Outbound:
    """The record's value decoded with its input topic's schema; else its dead letter."""
    try:
        return codec.decode(src.value or b"", src.topic)
    except DecodeError as err:
        reason = ReasonCode(err.reason)  # serde's codes are a subset of the catalogue's
        return dead_letter(src, Rejection(Stage.DECODE, reason, f"decode.{reason}", str(err),
                                          {"length": str(len(src.value or b""))}))
