"""Drive the simulator with the third-party ``netsuite`` package (jacobsvante/netsuite).

Runs in the package's OWN virtualenv (it pins ``httpx<0.28``, older than tillbridge's), as
``<venv>/bin/python netsuite_pkg_driver.py``, so it must not import tillbridge. It prints
one JSON report on stdout; ``test_netsuite_pkg_fidelity.py`` asserts on it.

Configuration comes through the package's own loader, ``netsuite.Config.from_env()``
(``NETSUITE_ACCOUNT``, ``NETSUITE_CONSUMER_KEY``/``_SECRET``, ``NETSUITE_TOKEN_ID``/
``_SECRET``), plus ``TILLBRIDGE_SIM_URL`` for where the simulator listens.

Pointing the package at the simulator: ``NetSuiteRestApi`` has no base-URL option. It
derives ``https://{account lower, _ -> -}.suitetalk.api.netsuite.com`` in ``_make_url``
(the ``hostname`` property cannot help: the scheme is hard-wired to https and the
simulator speaks plain http on loopback). So ``SimRestApi`` overrides ``_make_url`` and
nothing else: signing (authlib ``OAuth1Auth``, realm = ``Config.account``, HMAC-SHA256),
headers (``X-NetSuite-PropertyNameValidation: error``), JSON encoding, status handling
and the SuiteQL call are the package's own. ``AUTHLIB_INSECURE_TRANSPORT`` is set
because some authlib releases refuse to sign a non-https URL.

What the package does not do, the driver does with the package's primitives:
``get``/``post``/``patch``/``put`` return ``None`` on 204 and drop the headers, so the
id of a new record is read from ``Location`` via ``request()`` (which returns the raw
``httpx.Response``); SuiteQL paging is followed by offset and once through the
``next`` link (``url=`` override, as the package's own ``token_info`` does).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from importlib.metadata import version
from typing import Any

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from netsuite import Config, NetSuiteRestApi  # noqa: E402
from netsuite.exceptions import NetsuiteAPIRequestError  # noqa: E402

PAGE = 25  # SuiteQL page size; the seed has 72 items, so three pages


class SimRestApi(NetSuiteRestApi):
    """The package's REST client with the simulator's base URL (see module docstring)."""

    def __init__(self, config: Config, base_url: str, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._base_url = base_url.rstrip("/")

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}/services/rest{subpath}"


def error_of(exc: NetsuiteAPIRequestError) -> dict[str, Any]:
    """Status plus the parsed NetSuite envelope, the way a caller of the package gets it."""
    try:
        body = json.loads(exc.response_text)
    except ValueError:
        return {"status": exc.status_code, "raw": exc.response_text[:500]}
    details = body.get("o:errorDetails") or [{}]
    return {"status": exc.status_code, "title": body.get("title"), "type": body.get("type"),
            "body_status": body.get("status"), "code": details[0].get("o:errorCode"),
            "detail": details[0].get("detail"), "path": details[0].get("o:errorPath"),
            "top_code": body.get("o:errorCode")}


async def expect_error(call: Any) -> dict[str, Any]:
    try:
        result = await call
    except NetsuiteAPIRequestError as exc:
        return error_of(exc)
    return {"status": None, "unexpected_success": result}


async def created(api: SimRestApi, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST through ``request()`` so the 204's ``Location`` is visible."""
    resp = await api.request("POST", path, json=body)
    location = resp.headers.get("location", "")
    return {"status": resp.status_code, "location": location, "body": resp.text,
            "id": location.rstrip("/").rsplit("/", 1)[-1] if location else None}


async def records(api: SimRestApi, tag: str) -> dict[str, Any]:
    """Create, read, patch and upsert a customer and a cash sale."""
    out: dict[str, Any] = {}
    cust = await created(api, "/record/v1/customer", {
        "firstName": "Fidelity", "lastName": "Pkg", "isPerson": True,
        "externalId": f"FID-CUST-{tag}", "email": "fidelity@example.com",
        "subsidiary": {"id": "1"}})
    out["customer_create"] = cust
    out["customer_get"] = await api.get(f"/record/v1/customer/{cust['id']}")
    out["customer_get_eid"] = await api.get(f"/record/v1/customer/eid:FID-CUST-{tag}")
    # The package's own post(): None on 204, where a 201 + JSON body would be returned.
    out["post_return"] = await api.post("/record/v1/customer", json={
        "companyName": f"Fidelity Co {tag}"})

    sale_body = {"externalId": f"FID-SALE-{tag}", "entity": {"id": cust["id"]},
                 "location": {"id": "1"}, "paymentOption": {"id": "2"}, "memo": "pkg",
                 "item": {"items": [{"item": {"id": "1001"}, "quantity": 2, "rate": 10},
                                    {"item": {"id": "1002"}, "quantity": 1, "amount": 5.5}]}}
    sale = await created(api, "/record/v1/cashSale", sale_body)
    out["sale_create"] = sale
    out["sale_get"] = await api.get(f"/record/v1/cashSale/{sale['id']}",
                                    params={"expandSubResources": "true"})
    patch = await api.request("PATCH", f"/record/v1/cashSale/{sale['id']}",
                              json={"memo": "patched by netsuite pkg"})
    out["sale_patch"] = {"status": patch.status_code, "location": patch.headers.get("location"),
                         "body": patch.text}
    out["sale_after_patch"] = await api.get(f"/record/v1/cashSale/{sale['id']}")

    eid = f"FID-UPSERT-{tag}"
    first = await api.put(f"/record/v1/customer/eid:{eid}",
                          json={"companyName": "Upsert One", "email": "one@example.com"})
    second_resp = await api.request("PUT", f"/record/v1/customer/eid:{eid}",
                                    json={"email": "two@example.com"})
    out["upsert"] = {"first_return": first, "second_status": second_resp.status_code,
                     "second_body": second_resp.text,
                     "record": await api.get(f"/record/v1/customer/eid:{eid}"),
                     "rows": (await api.suiteql(
                         "SELECT id, email FROM customer WHERE externalid = ?", limit=10,
                         json={"params": [eid]}))["items"]}
    return out


async def suiteql(api: SimRestApi) -> dict[str, Any]:
    """Page through ``item`` by offset; then follow one ``next`` link as given."""
    query = "SELECT id, itemid, isinactive FROM item ORDER BY id"
    pages: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await api.suiteql(query, limit=PAGE, offset=offset)
        pages.append(page)
        if not page.get("hasMore") or len(pages) > 10:
            break
        offset += PAGE
    meta = [{k: p.get(k) for k in ("count", "offset", "totalResults", "hasMore")} |
            {"rels": {link["rel"]: link["href"] for link in p.get("links", [])}}
            for p in pages]
    rows = [row for p in pages for row in p.get("items", [])]
    next_href = meta[0]["rels"].get("next")
    followed = None
    if next_href:
        resp = await api.request("POST", "", url=next_href, json={"q": query},
                                 headers={"Prefer": "transient"})
        followed = {"status": resp.status_code, "body": resp.json()}
    count = await api.suiteql("SELECT COUNT(*) AS n FROM item")
    return {"pages": meta, "rows": rows, "followed_next": followed, "count": count}


async def errors(api: SimRestApi, config: Config, base_url: str) -> dict[str, Any]:
    """Provoke the documented failures and parse them as a package user would."""
    out: dict[str, Any] = {
        "not_found": await expect_error(api.get("/record/v1/customer/999999")),
        "not_found_eid": await expect_error(api.get("/record/v1/cashSale/eid:NO-SUCH-SALE")),
        "invalid_item": await expect_error(api.post("/record/v1/cashSale", json={
            "entity": {"id": "5001"}, "location": {"id": "1"},
            "item": {"items": [{"item": {"id": "9999"}, "quantity": 1, "rate": 1}]}})),
        "unknown_field": await expect_error(api.post("/record/v1/cashSale", json={
            "entity": {"id": "5001"}, "location": {"id": "1"}, "paymentMethod": {"id": "1"},
            "item": {"items": [{"item": {"id": "1001"}}]}})),
        "suiteql_unknown_column": await expect_error(
            api.suiteql("SELECT not_a_real_column FROM transaction")),
        "suiteql_bad_offset": await expect_error(
            api.suiteql("SELECT id FROM item", limit=10, offset=5)),
    }
    dup = {"companyName": "Dup Co", "externalId": "FID-DUP"}
    await api.post("/record/v1/customer", json=dup)
    out["duplicate_external_id"] = await expect_error(api.post("/record/v1/customer", json=dup))

    # Auth: NetSuite accepts HMAC-SHA256 only (HMAC-SHA1 ended in 2023.1), realm must be
    # the account id, and the token secret must match; each is a bare 401 INVALID_LOGIN.
    sha1 = SimRestApi(config, base_url, signature_method="HMAC-SHA1")
    wrong_realm = SimRestApi(config.model_copy(update={"account": "9999999"}), base_url)
    bad_auth = config.auth.model_copy(update={"token_secret": "not-the-secret"})
    wrong_secret = SimRestApi(config.model_copy(update={"auth": bad_auth}), base_url)
    for name, client in (("hmac_sha1", sha1), ("wrong_realm", wrong_realm),
                         ("wrong_token_secret", wrong_secret)):
        out[name] = await expect_error(client.get("/record/v1/customer/5001"))
    return out


async def main() -> dict[str, Any]:
    base_url = os.environ["TILLBRIDGE_SIM_URL"]
    config = Config.from_env()
    api = SimRestApi(config, base_url)
    tag = str(time.time_ns())
    started = time.perf_counter()
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "versions": {name: version(name) for name in ("netsuite", "authlib", "httpx")},
        "realm": config.account,
        # Where the package would go for this account (real NetSuite), for comparison.
        "derived_hostname": NetSuiteRestApi(config).hostname,
        "records": await records(api, tag),
        "suiteql": await suiteql(api),
        "errors": await errors(api, config, base_url),
    }
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), default=str))
