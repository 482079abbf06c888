"""confluent-kafka's SchemaRegistryClient against the embedded registry, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from tillbridge.devstack.registry import RegistryServer
from tillbridge.schemas import load_schema, schema_text

SUBJECT = "pos.sale.v1-value"


@pytest.fixture()
def server() -> Iterator[RegistryServer]:
    with RegistryServer() as srv:
        yield srv


@pytest.fixture()
def client(server: RegistryServer) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": server.url})


def fresh(server: RegistryServer) -> SchemaRegistryClient:
    """A client with an empty cache, so every call really goes over HTTP."""
    return SchemaRegistryClient({"url": server.url})


def sale_schema(**extra_field: object) -> Schema:
    schema = load_schema("sale.avsc")
    if extra_field:
        schema["fields"].append(dict(extra_field))
    return Schema(json.dumps(schema), "AVRO")


def code_of(call) -> int:
    with pytest.raises(SchemaRegistryError) as err:
        call()
    return err.value.error_code


def test_register_is_idempotent_and_ids_are_global(server: RegistryServer) -> None:
    schema = Schema(schema_text("sale.avsc"), "AVRO")
    first = fresh(server).register_schema(SUBJECT, schema)
    assert fresh(server).register_schema(SUBJECT, schema) == first
    # whitespace does not make a new schema
    compact = Schema(json.dumps(json.loads(schema_text("sale.avsc"))), "AVRO")
    assert fresh(server).register_schema(SUBJECT, compact) == first
    assert fresh(server).register_schema("other-value", schema) == first
    assert fresh(server).get_versions(SUBJECT) == [1]
    payment = Schema(schema_text("payment.avsc"), "AVRO")
    assert fresh(server).register_schema("pos.payment.v1-value", payment) != first


def test_lookups(server: RegistryServer, client: SchemaRegistryClient) -> None:
    schema_id = client.register_schema(SUBJECT, sale_schema())
    c = fresh(server)
    assert json.loads(c.get_schema(schema_id).schema_str) == load_schema("sale.avsc")
    assert c.get_subjects() == [SUBJECT]
    latest = c.get_latest_version(SUBJECT)
    assert (latest.schema_id, latest.version, latest.subject) == (schema_id, 1, SUBJECT)
    assert c.get_version(SUBJECT, 1).schema_id == schema_id
    found = c.lookup_schema(SUBJECT, sale_schema())
    assert (found.schema_id, found.version) == (schema_id, 1)
    assert c.get_subjects_by_schema_id(schema_id) == [SUBJECT]


def test_versions_evolve_and_incompatible_is_rejected(
    client: SchemaRegistryClient, server: RegistryServer
) -> None:
    client.register_schema(SUBJECT, sale_schema())
    v2 = sale_schema(name="channel_code", type="string", default="POS")
    assert fresh(server).test_compatibility(SUBJECT, v2)
    id2 = fresh(server).register_schema(SUBJECT, v2)
    assert fresh(server).get_versions(SUBJECT) == [1, 2]
    assert fresh(server).get_latest_version(SUBJECT).schema_id == id2
    bad = sale_schema(name="required_new", type="string")
    assert fresh(server).test_compatibility(SUBJECT, bad) is False
    assert fresh(server).test_compatibility(SUBJECT, bad, version=1) is False
    assert code_of(lambda: fresh(server).register_schema(SUBJECT, bad)) == 409
    # with compatibility NONE the same change is accepted
    fresh(server).set_compatibility(SUBJECT, "NONE")
    assert fresh(server).get_compatibility(SUBJECT) == "NONE"
    fresh(server).register_schema(SUBJECT, bad)
    assert fresh(server).get_versions(SUBJECT) == [1, 2, 3]


def test_global_config(client: SchemaRegistryClient) -> None:
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(level="FULL")
    assert client.get_compatibility() == "FULL"
    assert code_of(lambda: client.set_compatibility(level="SOMETIMES")) == 42203


def test_confluent_error_codes(server: RegistryServer, client: SchemaRegistryClient) -> None:
    client.register_schema(SUBJECT, sale_schema())
    assert code_of(lambda: fresh(server).get_schema(404)) == 40403
    assert code_of(lambda: fresh(server).get_latest_version("nope-value")) == 40401
    assert code_of(lambda: fresh(server).get_version(SUBJECT, 7)) == 40402
    other = Schema(schema_text("payment.avsc"), "AVRO")
    assert code_of(lambda: fresh(server).lookup_schema(SUBJECT, other)) == 40403
    assert code_of(lambda: fresh(server).register_schema(SUBJECT, Schema("{", "AVRO"))) == 42201
    response = httpx.get(f"{server.url}/subjects/nope/versions")
    assert response.status_code == 404
    assert response.json() == {"error_code": 40401, "message": "Subject 'nope' not found."}
    response = httpx.get(f"{server.url}/subjects/{SUBJECT}/versions/zero")
    assert response.json()["error_code"] == 42202


def test_delete_subject_soft_then_permanent(
    server: RegistryServer, client: SchemaRegistryClient
) -> None:
    schema_id = client.register_schema(SUBJECT, sale_schema())
    assert code_of(lambda: fresh(server).delete_subject(SUBJECT, permanent=True)) == 40405
    assert fresh(server).delete_subject(SUBJECT) == [1]
    assert fresh(server).get_subjects() == []
    # soft-deleted ids still resolve: old messages in Kafka stay readable
    assert fresh(server).get_schema(schema_id).schema_str
    assert fresh(server).delete_subject(SUBJECT, permanent=True) == [1]
    assert code_of(lambda: fresh(server).get_versions(SUBJECT)) == 40401
    # re-registering the same schema gets the same id again
    assert fresh(server).register_schema(SUBJECT, sale_schema()) == schema_id


def test_persistence_keeps_ids_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    with RegistryServer(path) as srv:
        c = SchemaRegistryClient({"url": srv.url})
        sale_id = c.register_schema(SUBJECT, sale_schema())
        pay_id = c.register_schema("pos.payment.v1-value", Schema(schema_text("payment.avsc")))
        c.set_compatibility(SUBJECT, "FULL")
    assert path.exists()
    with RegistryServer(path) as srv:
        c = SchemaRegistryClient({"url": srv.url})
        assert c.get_schema(pay_id).schema_str == schema_text("payment.avsc")
        assert c.register_schema(SUBJECT, sale_schema()) == sale_id
        assert c.get_compatibility(SUBJECT) == "FULL"
        assert sorted(c.get_subjects()) == ["pos.payment.v1-value", SUBJECT]
        new_id = c.register_schema("pos.return.v1-value", Schema(schema_text("return.avsc")))
        assert new_id not in (sale_id, pay_id)


def test_memory_registries_are_independent() -> None:
    with RegistryServer() as a, RegistryServer() as b:
        assert a.url != b.url
        SchemaRegistryClient({"url": a.url}).register_schema(SUBJECT, sale_schema())
        assert SchemaRegistryClient({"url": b.url}).get_subjects() == []


def test_url_needs_start() -> None:
    server = RegistryServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    try:
        assert httpx.get(f"{server.url}/subjects").json() == []
    finally:
        server.stop()
