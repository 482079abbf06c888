"""Client-side reliability: concurrency governance, retry policy, breaker, OAuth 2.0 M2M.

Governance, 429 storms, already-exists and stale-nonce 401s run against the simulator over
real HTTP (its concurrency gate, ``latency_ms`` and TBA nonce check exist today). Faults
the simulator cannot inject yet (5xx outages, commit-then-hang, an OAuth 2.0 token
endpoint) use a tiny starlette app served by uvicorn or an ``httpx.MockTransport``; each
test says which.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx
import pytest
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tillbridge.connectors.netsuite import (
    BreakerState,
    CircuitBreaker,
    ConcurrencyLimiter,
    NetSuiteClient,
    NetSuiteCredentials,
    NetSuiteError,
    NetSuiteUnavailable,
    OAuth2ClientCredentials,
    OAuth2Credentials,
    ReliableClient,
    RetryPolicy,
    TbaSigner,
    classify,
    fair_share,
)
from tillbridge.connectors.netsuite.oauth2 import ASSERTION_TYPE, TOKEN_PATH, load_private_key
from tillbridge.devstack.netsuite_sim import SimServer

BASE = "https://tstdrv1234567-sb1.suitetalk.api.netsuite.com"
CUSTOMER = {"firstName": "Pat", "lastName": "Lee", "subsidiary": {"id": "1"}}


# -- helpers ------------------------------------------------------------------------------

class FakeTime:
    """Deterministic clock + sleep: sleeping advances the clock and records the delay."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


def envelope(status: int, code: str, detail: str) -> dict[str, Any]:
    return {"type": "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html",
            "title": "error", "status": status,
            "o:errorDetails": [{"detail": detail, "o:errorCode": code}]}


def sim_stats(sim: SimServer) -> dict[str, Any]:
    return httpx.get(sim.base_url + "/__sim/stats").json()


def sim_config(sim: SimServer, **values: Any) -> None:
    httpx.post(sim.base_url + "/__sim/config", json=values).raise_for_status()




@contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """uvicorn on a free port in a thread (real sockets, so client timeouts really fire)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def mock_client(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> NetSuiteClient:
    return NetSuiteClient(BASE, NetSuiteCredentials.dev(),
                          transport=httpx.MockTransport(handler), **kwargs)


# -- classification and sizing -----------------------------------------------------------

def test_classify_reuses_kind_and_splits_retryable() -> None:
    cases = {
        NetSuiteError(429, "CONCURRENCY_LIMIT_EXCEEDED"): "throttled",
        NetSuiteError(500, "UNEXPECTED_ERROR"): "server_error",
        NetSuiteError(None, "TIMEOUT"): "timeout",
        NetSuiteError(None, "CONNECTION_ERROR"): "connection",
        NetSuiteError(401, "INVALID_LOGIN"): "auth",
        NetSuiteError(400, "USER_ERROR", detail="This entity already exists."): "already_exists",
        NetSuiteError(400, "INVALID_CONTENT"): "permanent",
    }
    assert {err.code + str(err.status): classify(err) for err in cases} == \
        {err.code + str(err.status): want for err, want in cases.items()}


def test_fair_share_leaves_room_for_other_integrations() -> None:
    # Enterprise (20) + 1 SuiteCloud Plus = 30; NSPOS 3 users + 1 unallocated reserved.
    assert fair_share(30, workers=4, reserved=4) == 6
    assert fair_share(5, workers=8) == 1  # dev account: never below one slot
    with pytest.raises(ValueError):
        fair_share(0, workers=1)


# -- governance (simulator, real HTTP) ---------------------------------------------------

def test_limiter_caps_all_requests_at_the_share(sim: SimServer) -> None:
    """Creates, SuiteQL pages and look-ups share one cap; the sim's own peak proves it."""
    sim_config(sim, concurrency_limit=50, latency_ms=25)
    seen: list[tuple[int, int]] = []
    limiter = ConcurrencyLimiter(3, on_in_flight=lambda n, limit: seen.append((n, limit)))

    async def main() -> list[Any]:
        # max_connections well above the share: the limiter, not the pool, must hold the cap.
        async with NetSuiteClient(sim.base_url, sim.credentials, max_connections=30,
                                  limiter=limiter) as client:
            rc = ReliableClient(client)
            writes = [rc.create_idempotent("customer", f"LIM-{i}", CUSTOMER) for i in range(12)]
            reads = [rc.suiteql("SELECT id FROM item") for _ in range(6)]
            return await asyncio.gather(*writes, *reads)

    results = asyncio.run(main())
    stats = sim_stats(sim)
    assert len(set(results[:12])) == 12
    assert stats["concurrency"]["peak"] <= 3
    assert limiter.peak == 3, "the cap was actually reached, so the test can tell"
    assert max(n for n, _ in seen) == 3 and {limit for _, limit in seen} == {3}
    assert seen[-1] == (0, 3)
    assert "429" not in stats["requests"]["by_status"]


def test_429_storm_ends_with_every_event_posted(sim: SimServer) -> None:
    """Sim limit 2 < client share 8: 429s galore, yet no event fails (max_attempts=1 shows
    that 429s do not spend an event's failure attempts)."""
    sim_config(sim, concurrency_limit=2, latency_ms=20)
    throttled: list[int] = []
    retries: list[tuple[str, float]] = []
    policy = RetryPolicy(max_attempts=1, throttle_base_s=0.005, throttle_max_s=0.1,
                         throttle_budget_s=30)

    async def main() -> list[Any]:
        async with NetSuiteClient(sim.base_url, sim.credentials,
                                  limiter=ConcurrencyLimiter(8)) as client:
            rc = ReliableClient(client, policy, on_throttled=lambda: throttled.append(1),
                                on_retry=lambda r, d: retries.append((r, d)))
            jobs = [rc.create_idempotent("customer", f"STORM-{i}", CUSTOMER) for i in range(30)]
            return await asyncio.gather(*jobs, return_exceptions=True)

    results = asyncio.run(main())
    failed = [r for r in results if isinstance(r, BaseException)]
    stats = sim_stats(sim)
    assert failed == []
    assert len(set(results)) == 30
    assert stats["records"]["customer"]["created"] == 30
    assert stats["requests"]["by_status"].get("429", 0) > 0, "the storm really happened"
    assert len(throttled) == stats["requests"]["by_status"]["429"]
    assert {r for r, _ in retries} == {"throttled"}
    assert stats["concurrency"]["peak"] <= 2


def test_already_exists_on_create_returns_the_existing_id(sim: SimServer) -> None:
    async def main() -> tuple[str, str]:
        async with NetSuiteClient(sim.base_url, sim.credentials) as client:
            first = await client.create("customer", {**CUSTOMER, "externalId": "AE-1"})
            again = await ReliableClient(client).create_idempotent("customer", "AE-1", CUSTOMER)
            return first, again

    first, again = asyncio.run(main())
    assert first == again
    assert sim_stats(sim)["records"]["customer"]["created"] == 1


def test_already_exists_under_another_type_is_raised() -> None:
    """MockTransport: the externalId is taken by another type of the same group (the sim
    models one type per group), so the eid look-up 404s: raise, no retry loop."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "POST":
            return httpx.Response(400, json=envelope(
                400, "USER_ERROR", "Error while accessing a resource. This entity already exists."))
        return httpx.Response(404, json=envelope(404, "NONEXISTENT_ID", "Record does not exist."))

    async def main() -> None:
        async with mock_client(handler) as client:
            await ReliableClient(client).create_idempotent("invoice", "AE-2", {"memo": "m"})

    with pytest.raises(NetSuiteError) as info:
        asyncio.run(main())
    assert info.value.kind == "already_exists"
    assert calls == ["POST", "GET"]


# -- backoff (MockTransport: exact control of 429 sequences) ------------------------------

def test_throttle_backoff_is_jittered_bounded_and_desynchronised() -> None:
    """Two tasks throttled together draw different, growing-but-capped delays."""
    ft = FakeTime()
    left: dict[str, int] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.url.path
        left[key] = left.get(key, 6) - 1
        if left[key] >= 0:
            return httpx.Response(429, json=envelope(429, "CONCURRENCY_LIMIT_EXCEEDED", "busy"))
        return httpx.Response(200, json={"id": key.rsplit("/", 1)[-1]})

    delays: dict[str, list[float]] = {"a": [], "b": []}
    policy = RetryPolicy(max_attempts=1, throttle_base_s=0.1, throttle_max_s=1.0)

    async def main() -> list[dict[str, Any]]:
        async with mock_client(handler) as client:
            rc = ReliableClient(client, policy, clock=ft.clock, sleep=ft.sleep,
                                rand=random.Random(42).random,
                                on_retry=lambda r, d: delays[_task_name()].append(d))
            return await asyncio.gather(asyncio.create_task(rc.get("customer", "a"), name="a"),
                                        asyncio.create_task(rc.get("customer", "b"), name="b"))

    assert [r["id"] for r in asyncio.run(main())] == ["a", "b"]
    for seq in delays.values():
        assert len(seq) == 6
        caps = [min(1.0, 0.1 * 2**n) for n in range(6)]
        assert all(0 <= d < cap for d, cap in zip(seq, caps, strict=True)), (seq, caps)
        assert len(set(seq)) == 6, "jittered: no two delays equal"
    assert delays["a"] != delays["b"], "tasks must not retry in lock-step"


def _task_name() -> str:
    task = asyncio.current_task()
    assert task is not None
    return task.get_name()


def test_throttle_budget_is_time_bounded_and_means_wait() -> None:
    ft = FakeTime()
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, json=envelope(429, "CONCURRENCY_LIMIT_EXCEEDED", "busy"))

    policy = RetryPolicy(max_attempts=1, throttle_base_s=0.5, throttle_max_s=2.0,
                         throttle_budget_s=20.0)

    async def main() -> ReliableClient:
        async with mock_client(handler) as client:
            rc = ReliableClient(client, policy, clock=ft.clock, sleep=ft.sleep,
                                rand=random.Random(3).random)
            with pytest.raises(NetSuiteUnavailable) as info:
                await rc.get("customer", "1")
            assert info.value.retry_after > 0
            return rc

    rc = asyncio.run(main())
    assert sum(ft.sleeps) <= 20.0 + 1e-6
    assert max(ft.sleeps) <= 2.0
    assert len(calls) > 10, "far more than max_attempts=1: 429s are not event failures"
    assert rc.breaker.state is BreakerState.CLOSED, "throttling is not an outage"


def test_server_errors_use_attempts_with_bounded_jitter() -> None:
    """Spent attempts on a record NetSuite keeps failing while it answers other calls:
    the record is the problem (NetSuiteError, dead-lettered)."""
    ft = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/customer/2"):
            return httpx.Response(200, json={"id": "2"})
        return httpx.Response(500, json=envelope(500, "UNEXPECTED_ERROR", "boom"))

    policy = RetryPolicy(max_attempts=4, base_delay_s=1.0, max_delay_s=3.0)

    async def main() -> None:
        async with mock_client(handler) as client:
            rc = ReliableClient(client, policy, breaker=CircuitBreaker(100), clock=ft.clock,
                                sleep=ft.sleep, rand=random.Random(5).random)

            async def sleep_and_see_others(delay: float) -> None:
                await rc.client.get("customer", "2")  # other traffic succeeds meanwhile
                rc.breaker.record_success()
                await ft.sleep(delay)

            rc._sleep = sleep_and_see_others
            await rc.get("customer", "1")

    with pytest.raises(NetSuiteError) as info:
        asyncio.run(main())
    assert info.value.status == 500
    assert len(ft.sleeps) == 3 and all(0 <= d < cap for d, cap in
                                       zip(ft.sleeps, [1.0, 2.0, 3.0], strict=True))


def test_spent_attempts_with_nothing_answered_mean_unavailable() -> None:
    """Same failures, but NetSuite answered nothing meanwhile: an outage, so the caller
    is told to wait (NetSuiteUnavailable), never to dead-letter."""
    ft = FakeTime()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json=envelope(503, "UNEXPECTED_ERROR", "down"))

    async def main() -> None:
        async with mock_client(handler) as client:
            rc = ReliableClient(client, RetryPolicy(max_attempts=3),
                                breaker=CircuitBreaker(100), clock=ft.clock, sleep=ft.sleep)
            await rc.get("customer", "1")

    with pytest.raises(NetSuiteUnavailable):
        asyncio.run(main())
    assert len(ft.sleeps) == 2


# -- ambiguous timeout: commit, then hang (local starlette app over real HTTP) ------------

def commit_then_hang_app(hang_s: float) -> tuple[Starlette, dict[str, Any]]:
    """The first POST stores the record and then answers too late for the client.

    Deliberately does *not* reject a duplicate externalId: the test must prove the client
    never sends a second create, not lean on the server's duplicate check.
    """
    state: dict[str, Any] = {"records": [], "posts": 0, "gets": 0}

    async def create(request: Request) -> Response:
        body = json.loads(await request.body())
        state["posts"] += 1
        new_id = str(100 + len(state["records"]))
        state["records"].append({"id": new_id, "externalId": body["externalId"]})
        if state["posts"] == 1:
            await asyncio.sleep(hang_s)
        return Response(status_code=204,
                        headers={"Location": f"{request.url}/{new_id}"})

    async def read(request: Request) -> Response:
        state["gets"] += 1
        slot = request.path_params["id"]
        want = unquote(slot[4:]) if slot.startswith("eid:") else None
        for rec in state["records"]:
            if rec["externalId"] == want or rec["id"] == slot:
                return JSONResponse(rec)
        return JSONResponse(envelope(404, "NONEXISTENT_ID", "Record does not exist."), 404)

    routes = [Route("/services/rest/record/v1/{type}", create, methods=["POST"]),
              Route("/services/rest/record/v1/{type}/{id}", read, methods=["GET"])]
    return Starlette(routes=routes), state


def test_ambiguous_timeout_after_commit_creates_exactly_one_record() -> None:
    app, state = commit_then_hang_app(hang_s=0.8)
    retries: list[str] = []

    async def main(base: str) -> str:
        async with NetSuiteClient(base, NetSuiteCredentials.dev(), timeout=0.2) as client:
            rc = ReliableClient(client, RetryPolicy(base_delay_s=0.01),
                                on_retry=lambda r, d: retries.append(r))
            return await rc.create_idempotent("cashSale", "pos-sale-S1-42", {"memo": "x"})

    with serve(app) as base:
        new_id = asyncio.run(main(base))
    assert [r["externalId"] for r in state["records"]] == ["pos-sale-S1-42"]
    assert new_id == state["records"][0]["id"]
    assert state["posts"] == 1, "looked up by externalId instead of creating again"
    assert state["gets"] >= 1
    assert retries == ["timeout"]


# -- circuit breaker (MockTransport: the sim has no outage fault yet) ---------------------

def outage_handler(flags: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        flags["requests"] += 1
        if flags["down"]:
            return httpx.Response(503, json=envelope(503, "UNEXPECTED_ERROR", "down"))
        return httpx.Response(200, json={"id": "1"})

    return handler


def test_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    ft = FakeTime()
    flags = {"down": True, "requests": 0}
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(3, cooldown_s=10.0, jitter=0.5, clock=ft.clock,
                             rand=random.Random(9).random,
                             on_state_change=lambda o, n: changes.append((o.value, n.value)))

    async def main() -> None:
        async with mock_client(outage_handler(flags)) as client:
            rc = ReliableClient(client, RetryPolicy(max_attempts=1), breaker=breaker,
                                clock=ft.clock, sleep=ft.sleep)
            for _ in range(3):
                with pytest.raises(NetSuiteUnavailable):
                    await rc.get("customer", "1")
            assert breaker.state is BreakerState.OPEN
            with pytest.raises(NetSuiteUnavailable) as info:
                await rc.get("customer", "1")
            assert flags["requests"] == 3, "open: fails fast without a request"
            assert 10.0 <= info.value.retry_after <= 15.0
            # Cool-down (jittered) passes; the probe fails -> open again.
            ft.now += breaker.seconds_until_probe()
            with pytest.raises(NetSuiteUnavailable):
                await rc.get("customer", "1")
            assert breaker.state is BreakerState.OPEN
            # Next cool-down; NetSuite is back; the probe closes the breaker.
            flags["down"] = False
            ft.now += breaker.seconds_until_probe()
            assert (await rc.get("customer", "1"))["id"] == "1"
            assert breaker.state is BreakerState.CLOSED
            await rc.get("customer", "1")

    asyncio.run(main())
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"),
                       ("open", "half_open"), ("half_open", "closed")]
    assert flags["requests"] == 6


def test_breaker_admits_a_single_probe() -> None:
    ft = FakeTime()
    gate: dict[str, asyncio.Event] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        await gate["event"].wait()
        return httpx.Response(200, json={"id": "1"})

    breaker = CircuitBreaker(1, cooldown_s=1.0, jitter=0.0, clock=ft.clock)

    async def main() -> None:
        gate["event"] = asyncio.Event()
        breaker.record_failure()
        ft.now += 1.0
        async with mock_client(handler) as client:
            rc = ReliableClient(client, breaker=breaker, clock=ft.clock, sleep=ft.sleep)
            probe = asyncio.ensure_future(rc.get("customer", "1"))
            await asyncio.sleep(0.01)
            assert breaker.state is BreakerState.HALF_OPEN
            with pytest.raises(NetSuiteUnavailable):
                await rc.get("customer", "1")
            gate["event"].set()
            await probe
            assert breaker.state is BreakerState.CLOSED

    asyncio.run(main())


def test_outage_during_retries_means_wait_not_dead_letter() -> None:
    """The event's own retries trip the breaker: it gets NetSuiteUnavailable, not an error."""
    ft = FakeTime()
    flags = {"down": True, "requests": 0}

    async def main() -> None:
        async with mock_client(outage_handler(flags)) as client:
            rc = ReliableClient(client, RetryPolicy(max_attempts=5),
                                breaker=CircuitBreaker(3, clock=ft.clock),
                                clock=ft.clock, sleep=ft.sleep)
            await rc.upsert("cashSale", "X-1", {"memo": "m"})

    with pytest.raises(NetSuiteUnavailable):
        asyncio.run(main())
    assert flags["requests"] == 3


# -- TBA stale nonce (simulator, real HTTP: its verifier rejects a reused nonce) ----------

class ReplayingSigner:
    """Authenticator whose first ``replays`` headers reuse one already-spent nonce."""

    def __init__(self, signer: TbaSigner, nonce: str, timestamp: str, replays: int) -> None:
        self.signer, self.nonce, self.timestamp, self.replays = signer, nonce, timestamp, replays
        self.invalidations = 0

    async def authorize(self, method: str, url: str) -> str:
        if self.replays > 0:
            self.replays -= 1
            return self.signer.authorization(method, url, nonce=self.nonce,
                                             timestamp=self.timestamp)
        return self.signer.authorization(method, url)

    def invalidate(self) -> None:
        self.invalidations += 1


@pytest.mark.parametrize(("replays", "succeeds"), [(1, True), (2, False)])
def test_stale_nonce_401_is_resigned_once(sim: SimServer, replays: int, succeeds: bool) -> None:
    signer = TbaSigner(sim.credentials)
    url = sim.base_url + "/services/rest/record/v1/customer/5001"
    nonce, ts = "spentnonce0123456789", str(int(time.time()))
    spend = httpx.get(url, headers={"Authorization": signer.authorization(
        "GET", url, nonce=nonce, timestamp=ts)})
    assert spend.status_code == 200
    auth = ReplayingSigner(signer, nonce, ts, replays)

    async def main() -> dict[str, Any]:
        async with NetSuiteClient(sim.base_url, auth) as client:
            return await ReliableClient(client).get("customer", "5001")

    if succeeds:
        assert asyncio.run(main())["id"] == "5001"
    else:
        with pytest.raises(NetSuiteError) as info:
            asyncio.run(main())
        assert (info.value.status, info.value.kind) == (401, "auth")
    assert auth.invalidations == 1
    by_status = sim_stats(sim)["requests"]["by_status"]
    assert by_status.get("401") == min(replays, 2)
    assert by_status.get("200") == (2 if succeeds else 1)


# -- OAuth 2.0 client credentials (MockTransport token endpoint: the sim has none) --------

def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jwt(token: str, public_key: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Independent JWS check (RFC 7518): PS256 = PSS/SHA-256/salt 32, ES256 = raw r||s."""
    head_b64, claims_b64, sig_b64 = token.split(".")
    header, claims, sig = json.loads(b64d(head_b64)), json.loads(b64d(claims_b64)), b64d(sig_b64)
    data = f"{head_b64}.{claims_b64}".encode()
    if header["alg"] == "PS256":
        public_key.verify(sig, data, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                          hashes.SHA256())
    else:
        assert header["alg"] == "ES256" and len(sig) == 64
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                   int.from_bytes(sig[32:], "big"))
        public_key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    return header, claims


class TokenServer:
    """Token endpoint + one record route; checks every assertion it receives."""

    def __init__(self, public_key: Any) -> None:
        self.public_key = public_key
        self.assertions: list[tuple[dict[str, Any], dict[str, Any]]] = []
        self.current: str | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN_PATH:
            await asyncio.sleep(0.01)  # let concurrent callers pile up behind the fetch
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            assert form["grant_type"] == "client_credentials"
            assert form["client_assertion_type"] == ASSERTION_TYPE
            self.assertions.append(verify_jwt(form["client_assertion"], self.public_key))
            self.current = f"access-token-{len(self.assertions)}"
            return httpx.Response(200, json={"access_token": self.current, "expires_in": 3600,
                                             "token_type": "Bearer"})
        if request.headers.get("authorization") != f"Bearer {self.current}":
            return httpx.Response(401, json=envelope(401, "INVALID_LOGIN", "Invalid login"))
        return httpx.Response(200, json={"id": "5001"})


def oauth_creds(key: Any, algorithm: str = "PS256") -> OAuth2Credentials:
    return OAuth2Credentials("TSTDRV1234567_SB1", "client-id-abc", "cert-id-xyz", pem(key),
                             algorithm)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["PS256", "ES256"])
def test_oauth2_assertion_is_valid_and_token_cached(algorithm: str) -> None:
    key = rsa_key() if algorithm == "PS256" else ec.generate_private_key(ec.SECP256R1())
    ft = FakeTime()
    server = TokenServer(key.public_key())
    transport = httpx.MockTransport(server)
    auth = OAuth2ClientCredentials.for_base_url(oauth_creds(key, algorithm), BASE,
                                                transport=transport, clock=ft.clock)

    async def main() -> None:
        async with NetSuiteClient(BASE, auth, transport=transport) as client:
            rc = ReliableClient(client)
            await asyncio.gather(*(rc.get("customer", "5001") for _ in range(5)))
            assert auth.token_requests == 1, "one token for concurrent callers"
            ft.now += 3600 - 61
            await rc.get("customer", "5001")
            assert auth.token_requests == 1, "still cached shortly before expiry margin"
            ft.now += 2
            await rc.get("customer", "5001")
            assert auth.token_requests == 2, "renewed before expires_in"
            server.current = "revoked"  # server-side revocation -> 401 -> one refetch
            await rc.get("customer", "5001")
            assert auth.token_requests == 3

    asyncio.run(main())
    header, claims = server.assertions[0]
    assert header == {"typ": "JWT", "alg": algorithm, "kid": "cert-id-xyz"}
    assert claims["iss"] == "client-id-abc"
    assert claims["aud"] == BASE + TOKEN_PATH
    assert claims["scope"] == ["rest_webservices"]
    assert claims["iat"] == int(1_700_000_000.0)
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    assert len({c["jti"] for _, c in server.assertions}) == 3


def test_jwt_check_rejects_another_key() -> None:
    key, other = rsa_key(), rsa_key()
    server = TokenServer(other.public_key())
    auth = OAuth2ClientCredentials.for_base_url(oauth_creds(key), BASE,
                                                transport=httpx.MockTransport(server))

    async def main() -> None:
        try:
            await auth.access_token()
        finally:
            await auth.aclose()

    with pytest.raises(InvalidSignature):
        asyncio.run(main())


def test_key_must_match_algorithm() -> None:
    ec_pem = pem(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="PS256 needs an RSA key"):
        load_private_key(ec_pem, "PS256")
    with pytest.raises(ValueError, match="unencrypted PEM") as info:
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nnot-a-key\n", "PS256")
    assert "not-a-key" not in str(info.value)


# -- secrets stay out of repr, logs and errors --------------------------------------------

def test_secrets_never_in_repr_logs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    key = rsa_key()
    key_text = pem(key).decode()
    key_body = key_text.splitlines()[5]
    creds = oauth_creds(key)
    leaked_assertions: list[str] = []

    def token_fails(request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        leaked_assertions.append(form["client_assertion"])
        # A hostile/verbose server echoing the assertion back must not reach our messages.
        return httpx.Response(400, json={"error": "invalid_grant",
                                         "error_description": form["client_assertion"]})

    auth = OAuth2ClientCredentials.for_base_url(creds, BASE,
                                                transport=httpx.MockTransport(token_fails))
    tba = NetSuiteCredentials.dev()

    async def main() -> tuple[NetSuiteError, str]:
        async with NetSuiteClient(BASE, auth, transport=httpx.MockTransport(token_fails)) as c:
            rc = ReliableClient(c)
            with pytest.raises(NetSuiteError) as info:
                await rc.get("customer", "1")
            return info.value, repr(rc)

    err, client_repr = asyncio.run(main())
    assert (err.status, err.kind) == (401, "auth")
    texts = [repr(creds), repr(auth), repr(tba), repr(TbaSigner(tba)), client_repr,
             str(err), repr(err), caplog.text, str(NetSuiteUnavailable("circuit open", 3))]
    secrets = [key_body, tba.consumer_secret, tba.token_secret, *leaked_assertions]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert len(leaked_assertions) == 2, "token refetched once after the 401, then given up"
