"""The simulator at the HTTP level: status codes, headers and bodies as NetSuite sends them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tillbridge.connectors.netsuite.auth import TbaSigner
from tillbridge.devstack.netsuite_sim import SimServer, create_app

REST = "/services/rest"
CASH_SALE = {
    "entity": {"id": "5001"},
    "location": {"id": "1"},
    "paymentOption": {"id": "2"},
    "item": {"items": [{"item": {"id": "1001"}, "quantity": 3, "rate": 24.5},
                       {"item": {"id": "1002"}, "quantity": 1, "amount": 26}]},
}


def call(sim: SimServer, method: str, path: str, json: Any = None,
         headers: dict[str, str] | None = None, params: dict[str, Any] | None = None
         ) -> httpx.Response:
    request = httpx.Request(method, sim.base_url + REST + path, json=json, params=params,
                            headers=headers)
    request.headers["Authorization"] = TbaSigner(sim.credentials).authorization(
        method, str(request.url))
    with httpx.Client() as client:
        return client.send(request)


def detail(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) >= {"type", "title", "status", "o:errorDetails"}
    assert body["status"] == resp.status_code
    return body["o:errorDetails"][0]


def test_create_is_204_with_location_and_get_has_netsuite_shape(sim: SimServer) -> None:
    resp = call(sim, "POST", "/record/v1/cashSale", {**CASH_SALE, "externalId": "POS-1"})
    assert resp.status_code == 204
    assert resp.content == b""
    location = resp.headers["Location"]
    assert location.startswith(sim.base_url + REST + "/record/v1/cashSale/")
    new_id = location.rsplit("/", 1)[1]

    got = call(sim, "GET", f"/record/v1/cashSale/{new_id}")
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/vnd.oracle.resource+json; type=singular"
    body = got.json()
    assert body["id"] == new_id
    assert body["entity"]["id"] == "5001"
    assert body["entity"]["refName"] == "Sam Garcia"
    assert body["entity"]["links"][0]["href"].endswith("/record/v1/customer/5001")
    assert body["item"] == {"links": [{"rel": "self", "href": location + "/item"}]}
    assert body["total"] == 3 * 24.5 + 26

    expanded = call(sim, "GET", "/record/v1/cashSale/eid:pos-1",
                    params={"expandSubResources": "true"}).json()
    lines = expanded["item"]["items"]
    assert [ln["amount"] for ln in lines] == [73.5, 26.0]
    assert lines[0]["item"]["refName"] == "TEE-001"


def test_unknown_and_inactive_items_are_invalid_content(sim: SimServer) -> None:
    for bad in ("999999", "1007"):  # 1007 is TEE-007, inactive in the seed
        body = {**CASH_SALE, "item": {"items": [CASH_SALE["item"]["items"][0],
                                                 {"item": {"id": bad}, "quantity": 1}]}}
        resp = call(sim, "POST", "/record/v1/cashSale", body)
        assert resp.status_code == 400
        d = detail(resp)
        assert d["o:errorCode"] == "INVALID_CONTENT"
        assert d["o:errorPath"] == "item.items[1].item"
        assert bad in d["detail"]


@pytest.mark.parametrize(
    ("change", "path"),
    [({"entity": {"id": "1"}}, "entity"), ({"location": {"id": "77"}}, "location"),
     ({"paymentOption": {"id": "99"}}, "paymentOption"),
     ({"paymentMethod": {"id": "2"}}, "paymentMethod")],
)
def test_header_references_are_validated(sim: SimServer, change: dict[str, Any],
                                         path: str) -> None:
    resp = call(sim, "POST", "/record/v1/cashSale", {**CASH_SALE, **change})
    assert resp.status_code == 400
    assert detail(resp)["o:errorPath"] == path


def test_duplicate_external_id_is_user_error_across_transaction_types(sim: SimServer) -> None:
    assert call(sim, "POST", "/record/v1/cashSale",
                {**CASH_SALE, "externalId": "dup-1"}).status_code == 204
    resp = call(sim, "POST", "/record/v1/cashsale", {**CASH_SALE, "externalId": "DUP-1"})
    assert resp.status_code == 400
    d = detail(resp)
    assert d["o:errorCode"] == "USER_ERROR"
    assert d["detail"] == "Error while accessing a resource. This entity already exists."
    # Customers are another group: the same external id is free there.
    assert call(sim, "POST", "/record/v1/customer",
                {"externalId": "dup-1", "firstName": "A", "lastName": "B"}).status_code == 204


def test_upsert_put_eid_creates_then_updates(sim: SimServer) -> None:
    first = call(sim, "PUT", "/record/v1/cashSale/eid:U-1", CASH_SALE)
    assert first.status_code == 204
    assert "Location" not in first.headers
    second = call(sim, "PUT", "/record/v1/cashSale/eid:u-1", {"memo": "again"},
                  params={"replace": "item"})
    assert second.status_code == 204
    stats = httpx.get(sim.base_url + "/__sim/stats").json()["records"]["cashSale"]
    assert stats == {"created": 1, "updated": 1, "deleted": 0, "held": 1}
    assert call(sim, "GET", "/record/v1/cashSale/eid:U-1").json()["memo"] == "again"
    assert call(sim, "PUT", "/record/v1/cashSale/123", CASH_SALE).status_code == 400


def test_patch_delete_and_404(sim: SimServer) -> None:
    new_id = call(sim, "POST", "/record/v1/cashSale", CASH_SALE).headers["Location"].rsplit(
        "/", 1)[1]
    resp = call(sim, "PATCH", f"/record/v1/cashSale/{new_id}",
                {"item": {"items": [{"line": 1, "quantity": 1}]}})
    assert resp.status_code == 204
    assert call(sim, "GET", f"/record/v1/cashSale/{new_id}").json()["subtotal"] == 24.5 + 26
    assert call(sim, "DELETE", f"/record/v1/cashSale/{new_id}").status_code == 204
    resp = call(sim, "GET", f"/record/v1/cashSale/{new_id}")
    assert resp.status_code == 404
    assert detail(resp) == {"detail": "Record does not exist.", "o:errorCode": "NONEXISTENT_ID"}
    # A customer id is not a cash sale id.
    assert call(sim, "GET", "/record/v1/cashSale/5001").status_code == 404


def test_auth_failures_are_invalid_login(sim: SimServer) -> None:
    url = sim.base_url + REST + "/record/v1/customer/5001"
    assert httpx.get(url).status_code == 401
    header = TbaSigner(sim.credentials).authorization("GET", url)
    assert httpx.get(url, headers={"Authorization": header}).status_code == 200
    replay = httpx.get(url, headers={"Authorization": header})
    assert replay.status_code == 401
    assert detail(replay)["o:errorCode"] == "INVALID_LOGIN"


def test_suiteql_paging_strings_and_links(sim: SimServer) -> None:
    q = {"q": "SELECT id, itemid, isinactive FROM item ORDER BY id"}
    total = len(sim.state.store.items)
    seen: list[dict[str, Any]] = []
    offset = 0
    while True:
        resp = call(sim, "POST", "/query/v1/suiteql", q, headers={"Prefer": "transient"},
                    params={"limit": 10, "offset": offset})
        assert resp.status_code == 200
        page = resp.json()
        assert page["offset"] == offset
        assert page["totalResults"] == total
        assert page["count"] == len(page["items"])
        seen.extend(page["items"])
        if not page["hasMore"]:
            break
        offset += 10
    assert offset == (total - 1) // 10 * 10 and len(seen) == total
    assert [r["id"] for r in seen] == sorted(sim.state.store.items, key=int)
    assert all(row["links"] == [] for row in seen)
    assert all(isinstance(v, str) for row in seen for k, v in row.items() if k != "links")
    assert seen[6] == {"links": [], "id": "1007", "itemid": "TEE-007", "isinactive": "T"}

    count = call(sim, "POST", "/query/v1/suiteql",
                 {"q": "SELECT COUNT(*) AS n FROM item WHERE isinactive = 'T'"},
                 headers={"Prefer": "transient"}).json()
    assert count["items"] == [{"links": [], "n": "8"}]


@pytest.mark.parametrize(
    ("query", "params"),
    [("SELECT nope FROM item", {}), ("SELECT * FROM nosuchtable", {}),
     ("SELECT id FROM item", {"limit": 10, "offset": 5}),
     ("SELECT id FROM item", {"limit": 2000})],
)
def test_suiteql_rejections(sim: SimServer, query: str, params: dict[str, int]) -> None:
    resp = call(sim, "POST", "/query/v1/suiteql", {"q": query},
                headers={"Prefer": "transient"}, params=params)
    assert resp.status_code == 400
    assert detail(resp)["o:errorCode"] == "INVALID_PARAMETER"


def test_suiteql_sees_created_transactions(sim: SimServer) -> None:
    call(sim, "POST", "/record/v1/cashSale", {**CASH_SALE, "externalId": "Q-1"})
    rows = call(sim, "POST", "/query/v1/suiteql",
                {"q": "SELECT id, type, externalid FROM transaction WHERE externalid = ?",
                 "params": ["Q-1"]}, headers={"Prefer": "transient"}).json()["items"]
    assert len(rows) == 1 and rows[0]["type"] == "CashSale"


def test_suiteql_line_columns_a_mainline_row_lacks_read_as_null(sim: SimServer) -> None:
    sale = call(sim, "POST", "/record/v1/cashSale", CASH_SALE).headers["Location"]
    rows = call(sim, "POST", "/query/v1/suiteql",
                {"q": "SELECT id, item FROM transactionline WHERE transaction = ? ORDER BY id",
                 "params": [sale.rsplit("/", 1)[1]]}, headers={"Prefer": "transient"})
    assert rows.status_code == 200, rows.text
    assert rows.json()["items"] == [
        {"links": [], "id": "0"}, {"links": [], "id": "1", "item": "1001"},
        {"links": [], "id": "2", "item": "1002"}]


def test_admin_item_deactivate_and_reactivate(sim: SimServer) -> None:
    admin = sim.base_url + "/__sim/items/TEE-001"
    assert httpx.post(admin + "/deactivate").json()["isinactive"] is True
    assert call(sim, "POST", "/record/v1/cashSale", CASH_SALE).status_code == 400
    assert httpx.post(admin).json()["isinactive"] is False
    assert call(sim, "POST", "/record/v1/cashSale", CASH_SALE).status_code == 204
    new = httpx.post(sim.base_url + "/__sim/items/NEW-SKU", json={"basePrice": "5.00"}).json()
    assert new["itemid"] == "NEW-SKU" and new["id"] not in ("1001",)


def test_stats_count_requests_by_status(sim: SimServer) -> None:
    call(sim, "GET", "/record/v1/customer/5001")
    call(sim, "GET", "/record/v1/customer/1")
    by_status = httpx.get(sim.base_url + "/__sim/stats").json()["requests"]["by_status"]
    assert by_status == {"200": 1, "404": 1}


def test_create_app_is_an_asgi_app_with_its_own_state() -> None:
    app = create_app(concurrency_limit=3, latency_ms=5)
    assert app.state.sim.config.concurrency_limit == 3
    assert app.state.sim.store.items["1001"]["itemid"] == "TEE-001"


def test_store_index_is_rebuilt_only_by_writes_it_reads() -> None:
    """A derived index declared over customer payments survives cashSale writes (so a steady
    stream of sales does not rebuild it per request) and is rebuilt by a payment write."""
    from tillbridge.devstack.netsuite_sim.store import Record, Store, load_seed

    store, builds = Store(load_seed()), []

    def build(s: Store) -> int:
        builds.append(1)
        return len(s.records("transaction", "customerPayment"))

    deps = [("transaction", "customerPayment")]
    assert store.index("payments", build, deps) == 0
    store.put(Record("cashSale", store.new_id("transaction"), {}), "transaction")
    assert store.index("payments", build, deps) == 0 and len(builds) == 1
    store.put(Record("customerPayment", store.new_id("transaction"), {}), "transaction")
    assert store.index("payments", build, deps) == 1 and len(builds) == 2
    assert len(store.records("transaction")) == len(store.records("transaction", "cashSale")) \
        + 1 + len(store.records("transaction", "creditMemo"))


def test_store_views_kept_by_writes_equal_a_full_rebuild() -> None:
    """``records`` and ``view`` (applied amounts, stock moved) catch up on the ids written
    since their last read instead of rebuilding; after random creates, rewrites (amounts
    and type changed), deletes and reads in between, each must equal what a view built
    from scratch over the same records gives."""
    import random
    from decimal import Decimal

    from tillbridge.devstack.netsuite_sim.stock import stock_moves
    from tillbridge.devstack.netsuite_sim.store import Record, Store, load_seed
    from tillbridge.devstack.netsuite_sim.txn import _applications

    rng, store = random.Random(7), Store(load_seed())
    ids: list[str] = []

    def applied(s: Store) -> dict[str, dict[str, list[Decimal]]]:
        view = s.view(("applied-test",), "transaction", "customerPayment",
                      lambda r: _applications(r, "apply"))
        return {str(k): dict(v) for k, v in view.buckets.items()}

    for step in range(400):
        roll = rng.random()
        if roll < 0.5 or not ids:
            rid = store.new_id("transaction")
            ids.append(rid)
        else:
            rid = rng.choice(ids)
        if roll > 0.9 and store.transaction(rid) is not None:
            store.delete("transaction", store.transaction(rid))  # type: ignore[arg-type]
        else:
            kind = rng.choice(("cashSale", "customerPayment", "invoice"))
            lines = [{"doc": {"id": str(rng.randint(1, 5))}, "amount": rng.randint(1, 9),
                      "apply": rng.random() > 0.2} for _ in range(rng.randint(0, 3))]
            items = [{"item": {"id": rng.choice(("1001", "1002"))}, "location": {"id": "1"},
                      "quantity": rng.randint(1, 4)} for _ in range(rng.randint(0, 2))]
            store.put(Record(kind, rid, {"apply": {"items": lines}, "item": {"items": items}}),
                      "transaction")
        if step % 7 == 0:  # read in between, so the views catch up part by part
            applied(store), store.records("transaction"), store.records("transaction", "invoice")
            stock_moves(store)
    fresh = Store(load_seed())
    fresh._records = store._records
    fresh._changed = store._changed
    assert applied(store) == applied(fresh) and applied(store)
    assert stock_moves(store) == stock_moves(fresh) and stock_moves(store)
    for kind in (None, "cashSale", "customerPayment", "invoice", "creditMemo"):
        got = [r.id for r in store.records("transaction", kind)]
        assert got == [r.id for r in fresh.records("transaction", kind)]
        assert got == sorted(got, key=lambda i: (len(i), i)) and len(set(got)) == len(got)


def test_suiteql_key_lookups_answer_as_a_full_scan_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``id``/``externalid`` IN and ``transaction`` = read only the named records (an
    index, as NetSuite has); the rows must be those a scan of every transaction gives."""
    from tillbridge.devstack.netsuite_sim import suiteql
    from tillbridge.devstack.netsuite_sim.store import Record, Store, load_seed

    store = Store(load_seed())
    made = []
    for n in range(30):
        rid = store.new_id("transaction")
        store.put(Record("cashSale", rid, {"externalId": f"pos-sale-{n}", "total": 10.5 + n,
                                           "item": {"items": [{"line": 1, "quantity": 2.0,
                                                               "amount": 10.5 + n}]}}),
                  "transaction")
        made.append(rid)

    queries = [
        f"SELECT id, externalid, foreigntotal FROM transaction WHERE id IN ({made[3]}, "
        f"{made[0]}, 999999999)",
        "SELECT id FROM transaction WHERE externalid IN ('pos-sale-7', 'POS-SALE-8', 'nope')",
        "SELECT id FROM transaction WHERE externalid = 'pos-sale-12'",
        f"SELECT transaction, id, quantity, netamount FROM transactionline "
        f"WHERE transaction = '{made[5]}' AND mainline = 'F'",
    ]
    answers = [suiteql.run(q)(store) for q in queries]
    for name in ("transaction", "transactionline"):  # the same tables without their keys
        table = suiteql.TABLES[name]
        monkeypatch.setitem(suiteql.TABLES, name, suiteql.Table(table.columns, table.rows))
    assert answers == [suiteql.run(q)(store) for q in queries]
    assert [r["id"] for r in answers[0]] == [made[0], made[3]]
    assert [r["id"] for r in answers[1]] == [made[7]]  # SuiteQL's = is exact
    assert answers[3] == [{"transaction": made[5], "id": "1", "quantity": "2",
                           "netamount": "15.5"}]
