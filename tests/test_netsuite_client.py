"""NetSuiteClient against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

import httpx
import pytest

from tillbridge.connectors.netsuite import (
    AlreadyExists,
    AuthFailed,
    ConnectionFailed,
    NetSuiteClient,
    NetSuiteError,
    NotFound,
    Rejected,
    Throttled,
)
from tillbridge.devstack.netsuite_sim import SimServer

T = TypeVar("T")
SALE = {
    "entity": {"id": "5001"},
    "location": {"id": "2"},
    "paymentOption": {"id": "1"},
    "item": {"items": [{"item": {"id": "1001"}, "quantity": 2, "rate": 10.0,
                        "taxCode": {"id": "102"}}]},
}




def run(sim: SimServer, use: Callable[[NetSuiteClient], Awaitable[T]], **kwargs: Any) -> T:
    """Run ``use`` with a fresh client (one event loop per test)."""
    credentials = kwargs.pop("credentials", sim.credentials)

    async def main() -> T:
        async with NetSuiteClient(sim.base_url, credentials, **kwargs) as client:
            return await use(client)

    return asyncio.run(main())


def stats(sim: SimServer) -> dict[str, Any]:
    return httpx.get(sim.base_url + "/__sim/stats").json()


def test_create_returns_id_from_location_and_get_reads_it(sim: SimServer) -> None:
    calls: list[tuple[str, str, int | None, float]] = []

    async def use(c: NetSuiteClient) -> tuple[str, dict[str, Any]]:
        new_id = await c.create("cashSale", {**SALE, "externalId": "C-1"})
        return new_id, await c.get("cashSale", new_id, expand=True)

    new_id, record = run(sim, use, on_request=lambda *a: calls.append(a))
    assert new_id.isdigit()
    assert record["id"] == new_id and record["externalId"] == "C-1"
    assert record["total"] == 21.9  # 20.00 + 9.5 % LA tax
    assert record["item"]["items"][0]["taxAmount"] == 1.9
    assert [(c[0], c[1], c[2]) for c in calls] == [("cashSale", "POST", 204),
                                                    ("cashSale", "GET", 200)]
    assert all(c[3] >= 0 for c in calls)


def test_upsert_twice_keeps_one_record_and_resolves_id(sim: SimServer) -> None:
    async def use(c: NetSuiteClient) -> tuple[str | None, str | None, str | None, dict]:
        first = await c.upsert("cashSale", "U-1", SALE)
        second = await c.upsert("cashSale", "U-1", SALE, replace="item")
        lazy = await c.upsert("cashSale", "U-1", SALE, resolve_id=False, replace="item")
        return first, second, lazy, await c.get("cashSale", "eid:U-1", expand=True)

    first, second, lazy, record = run(sim, use)
    assert first is not None and first == second == record["id"]
    assert lazy is None  # no Location by default and resolution was declined
    assert len(record["item"]["items"]) == 1
    assert stats(sim)["records"]["cashSale"]["held"] == 1


def test_upsert_replay_without_replace_appends_lines(sim: SimServer) -> None:
    async def use(c: NetSuiteClient) -> dict[str, Any]:
        await c.upsert("cashSale", "U-2", SALE, resolve_id=False)
        await c.upsert("cashSale", "U-2", SALE, resolve_id=False)
        return await c.get("cashSale", "eid:U-2")

    record = run(sim, use)
    assert record["subtotal"] == 40.0  # NetSuite's merge rule: unkeyed lines are added


def test_upsert_uses_location_when_sent(sim: SimServer) -> None:
    httpx.post(sim.base_url + "/__sim/config", json={"upsert_location": True})
    calls: list[str] = []
    new_id = run(sim, lambda c: c.upsert("cashSale", "U-3", SALE),
                 on_request=lambda t, m, s, d: calls.append(m))
    assert new_id is not None and new_id.isdigit()
    assert calls == ["PUT"]  # no follow-up GET needed


def test_validation_errors_are_permanent_with_error_path(sim: SimServer) -> None:
    bad = {**SALE, "item": {"items": [{"item": {"id": "1015"}, "quantity": 1}]}}  # inactive
    with pytest.raises(NetSuiteError) as info:
        run(sim, lambda c: c.create("cashSale", bad))
    err = info.value
    assert (err.status, err.code, err.error_path) == (400, "INVALID_CONTENT", "item.items[0].item")
    assert err.kind == "permanent" and err.permanent and not err.retryable
    assert type(err) is Rejected and err.label == "permanent"


def test_duplicate_external_id_is_already_exists(sim: SimServer) -> None:
    async def use(c: NetSuiteClient) -> None:
        await c.create("cashSale", {**SALE, "externalId": "D-1"})
        await c.create("cashSale", {**SALE, "externalId": "d-1"})

    with pytest.raises(NetSuiteError) as info:
        run(sim, use)
    assert info.value.code == "USER_ERROR"
    assert info.value.already_exists and info.value.kind == "already_exists"
    assert isinstance(info.value, AlreadyExists)


@pytest.mark.parametrize("field", ["consumer_secret", "token_id", "token_secret"])
def test_wrong_credentials_are_invalid_login(sim: SimServer, field: str) -> None:
    creds = replace(sim.credentials, **{field: "wrong-" + field})
    with pytest.raises(NetSuiteError) as info:
        run(sim, lambda c: c.get("customer", "5001"), credentials=creds)
    err = info.value
    assert (err.status, err.code, err.kind) == (401, "INVALID_LOGIN", "auth")
    assert isinstance(err, AuthFailed)
    assert "wrong-" not in str(err)


def test_concurrency_limit_gives_429_when_too_many_in_flight(sim: SimServer) -> None:
    httpx.post(sim.base_url + "/__sim/config",
               json={"concurrency_limit": 2, "latency_ms": 300}).raise_for_status()

    async def use(c: NetSuiteClient) -> list[Any]:
        calls = [c.get("customer", "5001") for _ in range(6)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = run(sim, use, max_connections=6)
    ok = [r for r in results if isinstance(r, dict)]
    errors = [r for r in results if isinstance(r, NetSuiteError)]
    assert len(ok) == 2 and len(errors) == 4
    for err in errors:
        assert (err.status, err.code, err.title) == (429, "CONCURRENCY_LIMIT_EXCEEDED",
                                                     "Bad Request")
        assert err.detail == "Concurrent request limit exceeded. Request blocked."
        assert err.retryable and isinstance(err, Throttled)
    assert stats(sim)["concurrency"]["peak"] == 2


def test_suiteql_follows_pages(sim: SimServer) -> None:
    calls: list[int | None] = []
    rows = run(sim, lambda c: c.suiteql("SELECT id, itemid FROM item ORDER BY id", limit=10),
               on_request=lambda t, m, s, d: calls.append(s))
    total = len(sim.state.store.items)
    assert len(rows) == total
    assert len(calls) == -(-total // 10)
    assert rows[0] == {"id": "1001", "itemid": "TEE-001"}
    assert len({r["id"] for r in rows}) == total


def test_suiteql_unknown_column_is_invalid_parameter(sim: SimServer) -> None:
    with pytest.raises(NetSuiteError) as info:
        run(sim, lambda c: c.suiteql("SELECT not_a_real_column FROM transaction"))
    assert info.value.code == "INVALID_PARAMETER"
    assert "Unknown identifier" in info.value.detail


def test_patch_and_missing_record(sim: SimServer) -> None:
    async def use(c: NetSuiteClient) -> dict[str, Any]:
        new_id = await c.create("customer", {"firstName": "Ada", "lastName": "L",
                                             "externalId": "CUST-9"})
        await c.patch("customer", "eid:CUST-9", {"email": "ada@example.com"})
        return await c.get("customer", new_id)

    assert run(sim, use)["email"] == "ada@example.com"
    with pytest.raises(NetSuiteError) as info:
        run(sim, lambda c: c.get("customer", "424242"))
    assert (info.value.status, info.value.code) == (404, "NONEXISTENT_ID")
    assert isinstance(info.value, NotFound)


def test_connection_error_is_retryable(sim: SimServer) -> None:
    with pytest.raises(NetSuiteError) as info:  # port 9 (discard): nothing listens there
        asyncio.run(_get_from("http://127.0.0.1:9", sim))
    assert info.value.status is None and info.value.retryable
    assert isinstance(info.value, ConnectionFailed)


async def _get_from(base_url: str, sim: SimServer) -> dict[str, Any]:
    async with NetSuiteClient(base_url, sim.credentials, timeout=2) as client:
        return await client.get("customer", "5001")
