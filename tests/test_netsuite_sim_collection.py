"""``GET /record/v1/{type}``: the record collection NetSuite clients list records with
(ids and self links, paged like SuiteQL), through the simulator and the real client."""

from __future__ import annotations

import asyncio

from tests.test_netsuite_sim import CASH_SALE, call, detail
from tillbridge.connectors.netsuite.client import NetSuiteClient
from tillbridge.devstack.netsuite_sim import SimServer


def _create(sim: SimServer, n: int) -> list[str]:
    ids = []
    for i in range(n):
        resp = call(sim, "POST", "/record/v1/cashSale", {**CASH_SALE, "externalId": f"L-{i}"})
        assert resp.status_code == 204
        ids.append(resp.headers["Location"].rsplit("/", 1)[1])
    return ids


def test_collection_pages_ids_with_netsuite_envelope(sim: SimServer) -> None:
    ids = _create(sim, 5)
    first = call(sim, "GET", "/record/v1/cashSale", params={"limit": 2})
    assert first.status_code == 200
    assert first.headers["content-type"].endswith("type=collection")
    page = first.json()
    assert (page["count"], page["hasMore"], page["offset"], page["totalResults"]) == \
        (2, True, 0, 5)
    assert {link["rel"] for link in page["links"]} == {"first", "next", "last", "self"}
    assert [item["id"] for item in page["items"]] == ids[:2]
    assert page["items"][0]["links"][0]["href"].endswith(f"/record/v1/cashSale/{ids[0]}")
    last = call(sim, "GET", "/record/v1/cashSale", params={"limit": 2, "offset": 4}).json()
    assert (last["count"], last["hasMore"], [i["id"] for i in last["items"]]) == \
        (1, False, ids[4:])
    assert "prev" in {link["rel"] for link in last["links"]}
    assert call(sim, "GET", "/record/v1/customer").json()["totalResults"] >= 1, \
        "another type lists its own records"


def test_collection_refuses_bad_paging_and_unmodelled_filters(sim: SimServer) -> None:
    bad = call(sim, "GET", "/record/v1/cashSale", params={"limit": 2, "offset": 3})
    assert bad.status_code == 400 and detail(bad)["o:errorCode"] == "INVALID_PARAMETER"
    q = call(sim, "GET", "/record/v1/cashSale", params={"q": "total GREATER 10"})
    assert q.status_code == 400 and "SuiteQL" in detail(q)["detail"]


def test_client_lists_every_id_across_pages_as_suiteql_sees_them(sim: SimServer) -> None:
    created = _create(sim, 7)

    async def read() -> tuple[list[str], list[str]]:
        async with NetSuiteClient(sim.base_url, sim.credentials) as client:
            listed = await client.list_ids("cashSale", limit=3)
            rows = await client.suiteql("SELECT id FROM transaction WHERE recordtype = ?",
                                        params=["cashsale"])
            return listed, [r["id"] for r in rows]

    listed, queried = asyncio.run(read())
    assert listed == created
    assert sorted(listed) == sorted(queried)
