"""Integration fixtures: a fresh broker, registry and NetSuite simulator per test.

The broker is the embedded Tansu by default (starts in well under a second, so each test
gets its own and topics never leak between tests). With
``TILLBRIDGE_TEST_BROKER=testcontainers`` the same tests run against Apache Kafka (KRaft) in
Docker via testcontainers, and skip with the reason when Docker is not available.
``KAFKA_BOOTSTRAP_SERVERS`` is ignored here on purpose: tests need a broker of their own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from tillbridge.devstack.stack import Stack, local_stack
from tillbridge.streams.runtime.settings import Settings


def _docker_available() -> tuple[bool, str]:
    try:
        import docker

        docker.from_env().ping()
        return True, ""
    except Exception as exc:  # noqa: BLE001 - any failure means no Docker
        return False, f"Docker is not available ({type(exc).__name__}: {exc})"


@contextlib.contextmanager
def _kafka_container() -> Iterator[str]:
    ok, why = _docker_available()
    if not ok:
        pytest.skip(f"TILLBRIDGE_TEST_BROKER=testcontainers: {why}")
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "SCHEMA_REGISTRY_URL", "NETSUITE_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    base = Settings.from_env(topic_partitions=4)
    with contextlib.ExitStack() as es:
        if os.environ.get("TILLBRIDGE_TEST_BROKER") == "testcontainers":
            base = base.replace(kafka_bootstrap_servers=es.enter_context(
                _kafka_container()))
        yield es.enter_context(local_stack(base))
