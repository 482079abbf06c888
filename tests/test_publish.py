"""Publishing without a broker: failures must be counted and surfaced, never lost.

Broker round-trips are covered by the integration suite; here the producer
points at a closed port so every delivery report is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tillbridge.connectors.pos.jsonl import JsonLinesError
from tillbridge.connectors.pos.publish import PRODUCER_DEFAULTS, publish_generated, publish_jsonl
from tillbridge.devstack.pos.generator import generate
from tillbridge.devstack.registry import RegistryServer

NO_BROKER = "127.0.0.1:1"
FAST_FAIL = {"message.timeout.ms": 400, "socket.connection.setup.timeout.ms": 1000}


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


def test_producer_defaults_are_safe() -> None:
    assert PRODUCER_DEFAULTS["enable.idempotence"] is True
    assert PRODUCER_DEFAULTS["acks"] == "all"
    assert PRODUCER_DEFAULTS["compression.type"] == "lz4"
    assert 0 < PRODUCER_DEFAULTS["linger.ms"] <= 20


def test_delivery_failures_are_counted_and_reported(registry: RegistryServer) -> None:
    seen: list[int] = []
    stats = publish_generated(
        NO_BROKER,
        registry.url,
        generate(30, seed=1, dirty=0.3),
        progress=seen.append,
        producer_config=FAST_FAIL,
        flush_timeout=10,
    )
    assert stats.produced == 30
    assert stats.delivered == 0
    assert stats.failed == 30
    assert not stats.ok
    assert stats.errors and "pos.sale.v1" in stats.errors[0]
    assert sum(stats.by_kind.values()) == 30 and stats.by_kind["clean"] < 30
    assert seen and seen[-1] == 0


def test_jsonl_with_bad_lines_publishes_nothing(registry: RegistryServer, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"event_type": "sale"}\n')
    with pytest.raises(JsonLinesError) as err:
        publish_jsonl(path, NO_BROKER, registry.url)
    assert err.value.problems[0][0] == 1
