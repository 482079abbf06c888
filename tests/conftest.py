"""Shared fixtures: the NetSuite simulator over real HTTP, reset between tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tillbridge.devstack.netsuite_sim import SimServer


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer() as sim:
        yield sim


@pytest.fixture
def sim(server: SimServer) -> Iterator[SimServer]:
    httpx.post(server.base_url + "/__sim/reset").raise_for_status()
    yield server
