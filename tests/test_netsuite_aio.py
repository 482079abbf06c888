"""The aiohttp transport behind NetSuiteClient, over real HTTP against the simulator."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.aio import AiohttpTransport
from tillbridge.connectors.netsuite.errors import (
    AlreadyExists,
    ConnectionFailed,
    NetSuiteError,
    NotFound,
    TimedOut,
)
from tillbridge.devstack.broker import free_port
from tillbridge.devstack.netsuite_sim import SimServer


@pytest.fixture(scope="module")
def sim():
    with SimServer() as server:
        yield server


def _client(base_url: str, timeout: float = 5.0) -> NetSuiteClient:
    return NetSuiteClient(base_url, NetSuiteCredentials.dev(), timeout=timeout,
                          transport=AiohttpTransport(max_connections=4, timeout=timeout))


def test_create_get_suiteql_and_errors_behave_as_with_httpcore(sim) -> None:
    async def run() -> None:
        async with _client(sim.base_url) as client:
            body = {"externalId": "aio-1", "firstName": "A", "lastName": "B",
                    "isPerson": True, "subsidiary": {"id": "1"}}
            new_id = await client.create("customer", body)
            got = await client.get("customer", new_id)
            assert got["externalId"] == "aio-1" and got["id"] == new_id
            rows = await client.suiteql("SELECT id, itemid FROM item", limit=10)
            assert len(rows) > 10, "paging followed"
            with pytest.raises(NetSuiteError) as info:
                await client.get("customer", "999999999")
            assert info.value.status == 404 and info.value.code == "NONEXISTENT_ID"
            assert isinstance(info.value, NotFound)
            with pytest.raises(NetSuiteError) as dup:
                await client.create("customer", body)
            assert dup.value.already_exists
            assert isinstance(dup.value, AlreadyExists)

    asyncio.run(run())


def test_timeout_and_refused_connection_map_to_retryable_errors(sim) -> None:
    async def run() -> None:
        httpx.post(f"{sim.base_url}/__sim/config", json={"latency_ms": 1500})
        try:
            async with _client(sim.base_url, timeout=0.3) as client:
                with pytest.raises(NetSuiteError) as slow:
                    await client.get("customer", "4999")
                assert slow.value.code == "TIMEOUT" and slow.value.retryable
                assert isinstance(slow.value, TimedOut)
        finally:
            httpx.post(f"{sim.base_url}/__sim/config", json={"latency_ms": 0})
        async with _client(f"http://127.0.0.1:{free_port()}") as client:
            with pytest.raises(NetSuiteError) as refused:
                await client.get("customer", "4999")
            assert refused.value.code == "CONNECTION_ERROR" and refused.value.retryable
            assert isinstance(refused.value, ConnectionFailed)

    asyncio.run(run())
