"""Simulator fidelity: a real third-party NetSuite client (PyPI ``netsuite``) drives it.

``netsuite`` (jacobsvante/netsuite) signs TBA with authlib and pins ``httpx<0.28``, so it
lives in its own virtualenv, built once and cached in the system temp dir under a key of
the pinned requirements and this Python. ``netsuite_pkg_driver.py`` runs there against a
``SimServer`` and prints a JSON report; the tests below assert that what a real client
sends is accepted and that what it expects comes back: 204 + ``Location`` on create,
string ids, string SuiteQL values over several pages, NetSuite's error envelope, and a
bare 401 ``INVALID_LOGIN`` for every signing mistake.

Skips (with the reason) only when PyPI cannot be reached; any other install failure fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tillbridge.connectors.netsuite.auth import default_base_url
from tillbridge.devstack.netsuite_sim import SimServer

pytestmark = pytest.mark.integration

# Newest ``netsuite`` release (supports 3.11), plus the two libraries that decide what goes
# on the wire (authlib signs, httpx sends), pinned so the run is reproducible.
PACKAGES = ("netsuite==0.12.0", "authlib==1.9.10", "httpx==0.27.2")
DRIVER = Path(__file__).with_name("netsuite_pkg_driver.py")
# pip's words when the index cannot be reached (as opposed to a resolution failure).
NETWORK_MARKERS = (
    "NewConnectionError", "Failed to establish a new connection", "Temporary failure in name "
    "resolution", "Name or service not known", "Network is unreachable", "No route to host",
    "Connection refused", "ConnectTimeoutError", "ReadTimeoutError", "ProxyError",
    "Max retries exceeded", "SSLError", "connection broken by",
)
INVALID_LOGIN = ("Invalid login attempt. For more details, see the Login Audit Trail in the "
                 "NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.")
RFC = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"


# -- the package's own virtualenv -----------------------------------------------------------

def venv_dir() -> Path:
    """Cache location keyed by the pinned requirements and the interpreter building it."""
    key = hashlib.sha256("\n".join((sys.version, *PACKAGES)).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / "tillbridge-fidelity" / f"netsuite-pkg-{key}"


def build_venv(venv: Path) -> None:
    """``python -m venv`` + ``pip install``; skip only when PyPI is unreachable."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                   capture_output=True, timeout=180)
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--no-input", "--timeout", "30", "--retries", "2", *PACKAGES],
        capture_output=True, text=True, timeout=540)
    if proc.returncode == 0:
        return
    shutil.rmtree(venv, ignore_errors=True)
    output = proc.stdout + proc.stderr
    network = [ln.strip() for ln in output.splitlines()
               if any(marker in ln for marker in NETWORK_MARKERS)]
    if network:
        pytest.skip(f"PyPI unreachable, cannot install {' '.join(PACKAGES)}: {network[-1]}")
    pytest.fail(f"pip install {' '.join(PACKAGES)} failed (not a network error):\n"
                f"{output[-4000:]}")


@pytest.fixture(scope="session")
def netsuite_pkg_python() -> Path:
    """The cached venv's python; a file lock keeps parallel sessions from racing."""
    venv = venv_dir()
    venv.parent.mkdir(parents=True, exist_ok=True)
    ready = venv / ".ready"
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            build_venv(venv)
            ready.write_text("\n".join(PACKAGES) + "\n")
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def report(server: SimServer, netsuite_pkg_python: Path) -> Iterator[dict[str, Any]]:
    """Run the driver once against a freshly reset simulator."""
    httpx.post(server.base_url + "/__sim/reset").raise_for_status()
    creds = server.credentials
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETSUITE_")}
    env.update(TILLBRIDGE_SIM_URL=server.base_url, NETSUITE_ACCOUNT=creds.account_id,
               NETSUITE_CONSUMER_KEY=creds.consumer_key,
               NETSUITE_CONSUMER_SECRET=creds.consumer_secret,
               NETSUITE_TOKEN_ID=creds.token_id, NETSUITE_TOKEN_SECRET=creds.token_secret)
    # -I: the driver must see only its own venv (no PYTHONPATH, no tillbridge).
    proc = subprocess.run([str(netsuite_pkg_python), "-I", "-W", "ignore", str(DRIVER)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"driver failed:\n{proc.stderr[-4000:]}"
    yield json.loads(proc.stdout)


def record_href(server: SimServer, record_type: str, record_id: str) -> str:
    return f"{server.base_url}/services/rest/record/v1/{record_type}/{record_id}"


def is_ref(value: Any, record_id: str) -> bool:
    """NetSuite's reference shape: ``{links: [self], id: <string>, refName}``."""
    return (isinstance(value, dict) and value.get("id") == record_id
            and isinstance(value.get("refName"), str)
            and [link["rel"] for link in value.get("links", [])] == ["self"])


# -- tests ------------------------------------------------------------------------------------

def test_driver_ran_the_pinned_package(report: dict[str, Any], server: SimServer) -> None:
    assert report["versions"] == dict(p.split("==") for p in PACKAGES)
    assert report["realm"] == server.credentials.realm
    # The package and tillbridge derive the same account host (sandbox id -> "-sb1").
    assert report["derived_hostname"] == urlsplit(
        default_base_url(server.credentials.account_id)).hostname


def test_create_is_204_with_a_location_the_client_parses(report: dict[str, Any],
                                                          server: SimServer) -> None:
    rec = report["records"]
    store = server.state.store
    for key, record_type in (("customer_create", "customer"), ("sale_create", "cashSale")):
        created = rec[key]
        assert (created["status"], created["body"]) == (204, "")
        assert re.fullmatch(r"\d+", created["id"])
        assert created["location"] == record_href(server, record_type, created["id"])
    customer = store.customer(rec["customer_create"]["id"])
    assert customer is not None and customer.fields["firstName"] == "Fidelity"
    sale = store.transaction(rec["sale_create"]["id"])
    assert sale is not None and sale.type == "cashSale"
    assert sale.external_id == rec["sale_get"]["externalId"]
    # The package's post() returns None only for a bodiless 204 (a 201 would give JSON).
    assert rec["post_return"] is None


def test_get_returns_the_netsuite_record_shape(report: dict[str, Any],
                                               server: SimServer) -> None:
    rec = report["records"]
    cust_id, sale_id = rec["customer_create"]["id"], rec["sale_create"]["id"]
    cust = rec["customer_get"]
    assert cust["id"] == cust_id and rec["customer_get_eid"]["id"] == cust_id
    assert cust["links"] == [{"rel": "self", "href": record_href(server, "customer", cust_id)}]
    assert is_ref(cust["subsidiary"], "1")
    sale = rec["sale_get"]
    assert sale["id"] == sale_id
    assert is_ref(sale["entity"], cust_id) and sale["entity"]["refName"] == "Fidelity Pkg"
    assert is_ref(sale["location"], "1") and is_ref(sale["paymentOption"], "2")
    lines = sale["item"]["items"]
    assert [(ln["line"], ln["item"]["id"], ln["amount"]) for ln in lines] == [
        (1, "1001", 20.0), (2, "1002", 5.5)]
    assert sale["total"] == 25.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sale["createdDate"])


def test_patch_is_204_and_keeps_what_it_omits(report: dict[str, Any],
                                              server: SimServer) -> None:
    rec = report["records"]
    sale_id = rec["sale_create"]["id"]
    assert rec["sale_patch"] == {"status": 204, "body": "",
                                 "location": record_href(server, "cashSale", sale_id)}
    after = rec["sale_after_patch"]
    assert after["memo"] == "patched by netsuite pkg"
    assert after["total"] == 25.5 and after["externalId"] == rec["sale_get"]["externalId"]
    assert server.state.store.transaction(sale_id).fields["memo"] == "patched by netsuite pkg"


def test_put_eid_inserts_then_updates_one_record(report: dict[str, Any],
                                                 server: SimServer) -> None:
    up = report["records"]["upsert"]
    assert up["first_return"] is None  # 204, no body
    assert (up["second_status"], up["second_body"]) == (204, "")
    record = up["record"]
    assert (record["companyName"], record["email"]) == ("Upsert One", "two@example.com")
    assert up["rows"] == [{"links": [], "id": record["id"], "email": "two@example.com"}]
    holders = [r for r in server.state.store.records("entity", "customer")
               if r.external_id == record["externalId"]]
    assert [r.id for r in holders] == [record["id"]]


def test_suiteql_pages_are_followed_with_string_values(report: dict[str, Any],
                                                       server: SimServer) -> None:
    q = report["suiteql"]
    seed_ids = sorted(server.state.store.items, key=int)
    assert len(seed_ids) > 50  # more rows than one page of 25
    assert [(p["count"], p["offset"], p["hasMore"], p["totalResults"]) for p in q["pages"]] == [
        (25, 0, True, len(seed_ids)), (25, 25, True, len(seed_ids)),
        (len(seed_ids) - 50, 50, False, len(seed_ids))]
    for page, following in zip(q["pages"], q["pages"][1:], strict=False):
        assert parse_qs(urlsplit(page["rels"]["next"]).query) == {
            "limit": ["25"], "offset": [str(following["offset"])]}
    assert "next" not in q["pages"][-1]["rels"]
    rows = q["rows"]
    assert [r["id"] for r in rows] == seed_ids
    assert all(r["links"] == [] for r in rows)
    assert all(isinstance(v, str) for r in rows for k, v in r.items() if k != "links")
    assert {r["isinactive"] for r in rows} <= {"T", "F"}
    followed = q["followed_next"]
    assert followed["status"] == 200
    assert followed["body"]["offset"] == 25 and followed["body"]["items"] == rows[25:50]
    assert q["count"]["items"] == [{"links": [], "n": str(len(seed_ids))}]


ERRORS = {
    "not_found": (404, "NONEXISTENT_ID", "Not Found", "#sec10.4.5", None,
                  "Record does not exist."),
    "not_found_eid": (404, "NONEXISTENT_ID", "Not Found", "#sec10.4.5", None,
                      "Record does not exist."),
    "invalid_item": (400, "INVALID_CONTENT", "Bad Request", "#sec10.4.1", "item.items[0].item",
                     "You have entered an Invalid Field Value 9999 for the following field: "
                     "item"),
    "unknown_field": (400, "INVALID_CONTENT", "Bad Request", "#sec10.4.1", "paymentMethod",
                      "paymentMethod"),
    "suiteql_unknown_column": (400, "INVALID_PARAMETER", "Bad Request", "#sec10.4.1", None,
                               "Unknown identifier 'not_a_real_column'. Available identifiers "
                               "are: {transaction=transaction}."),
    "suiteql_bad_offset": (400, "INVALID_PARAMETER", "Bad Request", "#sec10.4.1", None,
                           "offset"),
    "duplicate_external_id": (400, "USER_ERROR", "Bad Request", "#sec10.4.1", None,
                              "Error while accessing a resource. This entity already exists."),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_parse_as_the_real_service_sends_them(report: dict[str, Any], name: str) -> None:
    status, code, title, anchor, path, detail = ERRORS[name]
    err = report["errors"][name]
    assert (err["status"], err["body_status"], err["code"], err["title"]) == (
        status, status, code, title)
    assert err["type"] == RFC + anchor
    assert err["path"] == path
    assert detail in err["detail"]
    assert err["top_code"] is None


@pytest.mark.parametrize("name", ["hmac_sha1", "wrong_realm", "wrong_token_secret"])
def test_signing_mistakes_are_a_bare_invalid_login(report: dict[str, Any], name: str) -> None:
    err = report["errors"][name]
    assert (err["status"], err["code"], err["title"], err["detail"]) == (
        401, "INVALID_LOGIN", "Unauthorized", INVALID_LOGIN)
    assert err["type"] == RFC + "#sec10.4.2"

