"""Confluent-framed Avro encode/decode against the embedded registry (real HTTP)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.serde import AvroCodec, DecodeError
from tillbridge.devstack.pos.generator import generate
from tillbridge.devstack.registry import RegistryServer
from tillbridge.schemas import load_schema, schema_text
from tillbridge.schemas.compat import sample_records

SALE = topics.SALE


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


@pytest.fixture(scope="module")
def codec(registry: RegistryServer) -> AvroCodec:
    return AvroCodec(registry.url)


@pytest.fixture(scope="module")
def sales() -> list[dict]:
    return [e.value for e in generate(50, seed=7)]


def _money_fields(sale: dict) -> list:
    values = [sale["subtotal"], sale["discount_total"], sale["tax_total"], sale["total"]]
    for line in sale["lines"]:
        values += [line["unit_price"], line["tax_amount"], line["quantity"], line["tax_rate"]]
        values += [d["amount"] for d in line["discounts"]]
    values += [t["amount"] for t in sale["tenders"]]
    return values


def test_sale_round_trip_keeps_decimal_money(codec: AvroCodec, sales: list[dict]) -> None:
    encode = codec.encoder(SALE)
    for sale in sales:
        data = encode(sale)
        assert data[0] == 0 and len(data) > 5
        decoded = codec.decode(data, SALE.name)
        assert decoded == sale
        assert all(type(v) is Decimal for v in _money_fields(decoded))
        assert isinstance(decoded["completed_at"], datetime)
        assert decoded["completed_at"].tzinfo is not None


def test_schema_registered_under_topic_subject(codec: AvroCodec, sales: list[dict]) -> None:
    codec.encoder(SALE)(sales[0])
    latest = codec.client.get_latest_version(SALE.subject)
    assert json.loads(latest.schema.schema_str) == json.loads(schema_text(SALE.schema_file))


@pytest.mark.parametrize("topic", topics.EVENT_TOPICS, ids=lambda t: t.name)
def test_every_event_family_round_trips(codec: AvroCodec, topic: topics.EventTopic) -> None:
    encode = codec.encoder(topic)
    for record in sample_records(load_schema(topic.schema_file)):
        decoded = codec.decode(encode(record), topic.name)
        buf = io.BytesIO()
        fastavro.schemaless_writer(
            buf, fastavro.parse_schema(load_schema(topic.schema_file)), decoded
        )  # decoded form is writable again
        assert set(decoded) == set(record)


def test_matches_confluent_avro_deserializer(codec: AvroCodec, sales: list[dict]) -> None:
    encode = codec.encoder(SALE)
    reference = AvroDeserializer(codec.client, conf={"subject.name.strategy.type": "TOPIC"})
    ctx = SerializationContext(SALE.name, MessageField.VALUE)
    for sale in sales[:10]:
        data = encode(sale)
        assert codec.decode(data, SALE.name) == reference(data, ctx)


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00", b"\x00\x00\x00\x00\x01", b"\x01\x00\x00\x00\x01abc", b'{"total": "1.00"}'],
)
def test_not_avro(codec: AvroCodec, value: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        codec.decode(value, SALE.name)
    assert err.value.reason == "not_avro"
    assert not err.value.retryable


def test_non_bytes_value_is_not_avro(codec: AvroCodec) -> None:
    with pytest.raises(DecodeError) as err:
        codec.decode(None, SALE.name)  # type: ignore[arg-type]
    assert err.value.reason == "not_avro"


def test_unknown_schema_id(codec: AvroCodec) -> None:
    for schema_id in (0, 999_999, 2**32 - 1):
        with pytest.raises(DecodeError) as err:
            codec.decode(b"\x00" + schema_id.to_bytes(4, "big") + b"\x02xx", SALE.name)
        assert err.value.reason == "unknown_schema_id"
        assert not err.value.retryable


def test_schema_of_another_topic_is_a_mismatch(codec: AvroCodec) -> None:
    record = sample_records(load_schema("payment.avsc"))[1]
    data = codec.encoder(topics.PAYMENT)(record)
    assert codec.decode(data, topics.PAYMENT.name)["payment_id"] == record["payment_id"]
    with pytest.raises(DecodeError) as err:
        codec.decode(data, SALE.name)
    assert err.value.reason == "schema_mismatch"


def test_truncated_and_padded_bodies_are_mismatches(codec: AvroCodec, sales: list[dict]) -> None:
    data = codec.encoder(SALE)(sales[0])
    for bad in (data[:-3], data[:8], data + b"\x00\x00"):
        with pytest.raises(DecodeError) as err:
            codec.decode(bad, SALE.name)
        assert err.value.reason == "schema_mismatch", bad


def test_unreachable_registry_is_retryable(sales: list[dict]) -> None:
    with RegistryServer() as server:
        url = server.url
        data = AvroCodec(url).encoder(SALE)(sales[0])
    dead = AvroCodec(url, registry_conf={"max.retries": 0})
    with pytest.raises(DecodeError) as err:
        dead.decode(data, SALE.name)
    assert err.value.reason == "unknown_schema_id"
    assert err.value.retryable


def test_older_writer_schema_is_read_in_current_shape(
    registry: RegistryServer, sales: list[dict]
) -> None:
    """A v2 registered without `currency` still decodes, with the current default filled."""
    old = load_schema("sale.avsc")
    old["fields"] = [f for f in old["fields"] if f["name"] != "currency"]
    codec = AvroCodec(registry.url)
    codec.encoder(SALE)(sales[0])  # make sure v1 exists
    old_id = codec.client.register_schema(SALE.subject, Schema(_dumps(old), "AVRO"))
    sale = {k: v for k, v in sales[1].items() if k != "currency"}
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(old), sale)
    data = b"\x00" + old_id.to_bytes(4, "big") + buf.getvalue()
    decoded = codec.decode(data, SALE.name)
    assert decoded["currency"] == "USD"
    assert decoded["total"] == sales[1]["total"]


def _dumps(schema: dict) -> str:
    return json.dumps(schema)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_decode_error(codec: AvroCodec, value: bytes) -> None:
    try:
        codec.decode(value, SALE.name)
    except DecodeError as err:
        assert err.reason in ("not_avro", "unknown_schema_id", "schema_mismatch")


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=400), topic=st.sampled_from([t.name for t in topics.EVENT_TOPICS]))
def test_random_bodies_behind_a_valid_header_only_raise_decode_error(
    codec: AvroCodec, sales: list[dict], body: bytes, topic: str
) -> None:
    header = codec.encoder(SALE)(sales[0])[:5]
    try:
        result = codec.decode(header + body, topic)
    except DecodeError as err:
        assert err.reason in ("not_avro", "unknown_schema_id", "schema_mismatch")
    else:
        assert isinstance(result, dict)


def _one_kb_sale(encode, sales: list[dict]) -> bytes:
    """Encode the biggest generated sale, grown line by line to about 1 KB."""
    sale = max(sales, key=lambda s: len(s["lines"]))
    sale = dict(sale, lines=list(sale["lines"]))
    data = encode(sale)
    while len(data) < 1000:
        sale["lines"].append(dict(sale["lines"][-1], line_no=len(sale["lines"]) + 1))
        data = encode(sale)
    return data
