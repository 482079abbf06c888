"""The NetSuite error tree: status -> class, the labels and kinds each class carries, the
retry policy's behaviour per class, and ``NetSuiteUnavailable`` staying out of reach of
``except NetSuiteError``.

Everything here runs on ``httpx.MockTransport`` and a fake clock: no sockets, no sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tillbridge.connectors.netsuite import (
    AlreadyExists,
    AmbiguousFailure,
    AuthFailed,
    BreakerState,
    CircuitBreaker,
    ConnectionFailed,
    NetSuiteClient,
    NetSuiteCredentials,
    NetSuiteError,
    NetSuiteUnavailable,
    NotFound,
    Rejected,
    ReliableClient,
    RetryableError,
    RetryPolicy,
    ServerError,
    Throttled,
    TimedOut,
    classify,
    error_class,
)
from tillbridge.connectors.netsuite.batch_jobs import step

BASE = "https://tstdrv1234567-sb1.suitetalk.api.netsuite.com"
DUPLICATE = "This entity already exists."

#: (status, code, detail) -> leaf class, label, kind. Labels are a public contract
#: (tillbridge_netsuite_retries_total{reason}); kinds are what rejection_for reads today.
CASES: list[tuple[int | None, str, str, type[NetSuiteError], str, str]] = [
    (429, "CONCURRENCY_LIMIT_EXCEEDED", "", Throttled, "throttled", "retryable"),
    (500, "UNEXPECTED_ERROR", "", ServerError, "server_error", "retryable"),
    (502, "HTTP_502", "", ServerError, "server_error", "retryable"),
    (503, "UNEXPECTED_ERROR", "", ServerError, "server_error", "retryable"),
    (None, "TIMEOUT", "", TimedOut, "timeout", "retryable"),
    (None, "CONNECTION_ERROR", "", ConnectionFailed, "connection", "retryable"),
    (None, "NO_ID", "", ConnectionFailed, "connection", "retryable"),  # drain.py's legacy call
    (401, "INVALID_LOGIN", "", AuthFailed, "auth", "auth"),
    (403, "INSUFFICIENT_PERMISSION", "", AuthFailed, "auth", "auth"),
    (400, "USER_ERROR", DUPLICATE, AlreadyExists, "already_exists", "already_exists"),
    (400, "USER_ERROR", "A record with this ID ALREADY EXISTS", AlreadyExists,
     "already_exists", "already_exists"),
    (400, "INVALID_CONTENT", "", Rejected, "permanent", "permanent"),
    (409, "HTTP_409", DUPLICATE, Rejected, "permanent", "permanent"),  # wording counts on 400 only
    (404, "NONEXISTENT_ID", "", NotFound, "permanent", "permanent"),
    (405, "HTTP_405", "", Rejected, "permanent", "permanent"),
    (204, "NO_LOCATION", "", Rejected, "permanent", "permanent"),
]
IDS = [f"{status}-{code}" for status, code, *_ in CASES]


# -- status -> class ----------------------------------------------------------------------

@pytest.mark.parametrize(("status", "code", "detail", "cls", "label", "kind"), CASES, ids=IDS)
def test_each_status_maps_to_its_class(status: int | None, code: str, detail: str,
                                       cls: type[NetSuiteError], label: str,
                                       kind: str) -> None:
    assert error_class(status, code, detail) is cls
    err = NetSuiteError(status, code, detail=detail)  # the legacy construction
    assert type(err) is cls
    assert (err.label, err.kind) == (label, kind)
    assert classify(err) == label
    assert (err.status, err.code, err.detail) == (status, code, detail)


@pytest.mark.parametrize(("status", "code", "detail", "cls", "label", "kind"),
                         [c for c in CASES if c[0] is not None and c[0] >= 400],
                         ids=[i for i, c in zip(IDS, CASES, strict=True)
                              if c[0] is not None and c[0] >= 400])
def test_from_response_builds_the_same_class(status: int, code: str, detail: str,
                                             cls: type[NetSuiteError], label: str,
                                             kind: str) -> None:
    body = {"title": "Bad Request", "status": status,
            "o:errorDetails": [{"detail": detail, "o:errorCode": code,
                                "o:errorPath": "item.items[0]"}]}
    err = NetSuiteError.from_response(status, body, method="POST",
                                      url_path="/services/rest/record/v1/cashSale")
    assert type(err) is cls and err.label == label and err.kind == kind
    assert (err.code, err.error_path, err.details) == (code, "item.items[0]",
                                                      body["o:errorDetails"])
    raw = NetSuiteError.from_response(status, "<html>gateway</html>")
    assert raw.code == f"HTTP_{status}" and isinstance(raw, NetSuiteError)


def test_labels_and_kinds_are_class_attributes() -> None:
    leaves = [Throttled, ServerError, TimedOut, ConnectionFailed, AuthFailed, AlreadyExists,
              Rejected, NotFound]
    assert {c.label for c in leaves} == {"throttled", "server_error", "timeout",
                                         "connection", "auth", "already_exists", "permanent"}
    assert {c.kind for c in leaves} == {"retryable", "auth", "already_exists", "permanent"}
    for cls in leaves:
        err = cls(418, "X")  # a leaf named explicitly is that leaf, whatever the status
        assert type(err) is cls and "kind" not in vars(err) and "label" not in vars(err)


def flags(e: NetSuiteError) -> tuple[bool, bool, bool, bool]:
    return e.retryable, e.auth, e.already_exists, e.permanent


def test_shorthand_properties_follow_the_class() -> None:
    assert flags(NetSuiteError(429, "X")) == (True, False, False, False)
    assert flags(NetSuiteError(None, "TIMEOUT")) == (True, False, False, False)
    assert flags(NetSuiteError(403, "X")) == (False, True, False, False)
    assert flags(NetSuiteError(400, "X", detail=DUPLICATE)) == (False, False, True, False)
    assert flags(NetSuiteError(404, "X")) == (False, False, False, True)


def test_groups_build_their_leaf_and_refuse_a_status_outside_them() -> None:
    assert type(RetryableError(503, "X")) is ServerError
    assert type(AmbiguousFailure(None, "TIMEOUT")) is TimedOut
    assert isinstance(RetryableError(429, "X"), Throttled)
    with pytest.raises(TypeError, match="Rejected, outside RetryableError"):
        RetryableError(400, "INVALID_CONTENT")
    with pytest.raises(TypeError, match="Throttled, outside AmbiguousFailure"):
        AmbiguousFailure(429, "X")


def test_a_leaf_must_say_how_it_is_routed() -> None:
    with pytest.raises(TypeError, match="kind and label"):
        type("Unrouted", (NetSuiteError,), {})
    custom = type("Gone", (Rejected,), {})  # inherits Rejected's kind and label
    assert custom(410, "GONE").label == "permanent"


def test_the_tree_keeps_message_and_fields() -> None:
    err = NetSuiteError(400, "INVALID_CONTENT", "Bad Request", "bad item", "item",
                        [{"o:errorCode": "INVALID_CONTENT"}], method="POST",
                        url_path="/services/rest/record/v1/cashSale")
    assert str(err) == ("400 INVALID_CONTENT at item: bad item "
                        "[POST /services/rest/record/v1/cashSale]")
    assert (err.title, err.error_path, err.method) == ("Bad Request", "item", "POST")
    assert err.details == [{"o:errorCode": "INVALID_CONTENT"}]


# -- NetSuiteUnavailable is never a NetSuiteError -----------------------------------------

def test_unavailable_is_outside_the_tree() -> None:
    assert not issubclass(NetSuiteUnavailable, NetSuiteError)
    for cls in (NetSuiteError, RetryableError, AmbiguousFailure, Throttled):
        assert not issubclass(NetSuiteUnavailable, cls)

    def sink_step() -> str:
        try:
            raise NetSuiteUnavailable("circuit open", 3)
        except NetSuiteError:
            return "dead-lettered"

    with pytest.raises(NetSuiteUnavailable):
        sink_step()


def test_open_breaker_passes_every_except_netsuiteerror() -> None:
    """The sink's shape (``except NetSuiteError`` -> dead letter) around a client whose
    breaker is open: the outage reaches the caller as NetSuiteUnavailable."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"id": "1"})

    async def sink(rc: ReliableClient) -> str:
        try:
            await rc.get("customer", "1")
        except NetSuiteError:
            return "dead-lettered"
        return "posted"

    async def main() -> None:
        async with client_for(handler) as client:
            breaker = CircuitBreaker(1, cooldown_s=60)
            breaker.record_failure()
            await sink(ReliableClient(client, breaker=breaker))

    with pytest.raises(NetSuiteUnavailable, match="circuit open"):
        asyncio.run(main())
    assert seen == []


def test_batch_step_turns_a_spent_retryable_error_into_unavailable() -> None:
    """The policy raises the ServerError itself (NetSuite answered other calls meanwhile);
    the batch step must still hand its caller NetSuiteUnavailable, not a verdict."""
    ft = FakeTime()
    breaker = CircuitBreaker(100)

    async def others_answered(delay: float) -> None:
        breaker.record_success()
        await ft.sleep(delay)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"o:errorDetails": [{"o:errorCode": "X"}]})

    async def main() -> None:
        async with client_for(handler) as client:
            rc = ReliableClient(client, RetryPolicy(max_attempts=2), clock=ft.clock,
                                sleep=others_answered, breaker=breaker)
            job = "/services/rest/async/v1/job/1"
            try:
                await step(rc, "poll", lambda: client.get_json(job))
            except NetSuiteError:
                pytest.fail("a spent RetryableError must not reach except NetSuiteError")

    with pytest.raises(NetSuiteUnavailable, match="batch poll"):
        asyncio.run(main())


# -- the retry policy per class -----------------------------------------------------------

class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


Answer = int | str | type[httpx.TransportError]
"""A scripted answer: a status, ``"dup"`` (400 already exists) or a transport failure."""


def answer(request: httpx.Request, what: Answer) -> httpx.Response:
    """The response for one scripted answer, errors in NetSuite's envelope."""
    if isinstance(what, type):
        raise what("scripted", request=request)
    if what == 200:
        return httpx.Response(200, json={"id": "77"})
    status, code, detail = (400, "USER_ERROR", DUPLICATE) if what == "dup" else \
        (int(what), f"E{what}", "bad")
    return httpx.Response(status, json={"title": "x", "status": status, "o:errorDetails": [
        {"detail": detail, "o:errorCode": code}]})


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> NetSuiteClient:
    return NetSuiteClient(BASE, NetSuiteCredentials.dev(),
                          transport=httpx.MockTransport(handler))


@dataclass
class Run:
    result: Any = None
    error: BaseException | None = None
    retries: list[str] = field(default_factory=list)
    throttled: int = 0
    requests: list[str] = field(default_factory=list)
    breaker: BreakerState = BreakerState.CLOSED
    breaker_successes: int = 0


def run_policy(script: list[Answer], op: str = "get", max_attempts: int = 3) -> Run:
    """Answer requests from ``script`` in order (the last answer repeats) and record what
    the policy did: its on_retry labels, 429 count, requests and breaker state."""
    out = Run()
    answers: Iterator[Answer] = iter(script)
    last: list[Answer] = [script[-1]]

    def handler(request: httpx.Request) -> httpx.Response:
        out.requests.append(f"{request.method} {request.url.path.rsplit('/', 1)[-1]}")
        last[0] = next(answers, last[0])
        return answer(request, last[0])

    ft = FakeTime()

    async def main() -> None:
        async with client_for(handler) as client:
            rc = ReliableClient(
                client, RetryPolicy(max_attempts=max_attempts), clock=ft.clock,
                sleep=ft.sleep, breaker=CircuitBreaker(max_attempts),
                on_retry=lambda reason, delay: out.retries.append(reason),
                on_throttled=lambda: setattr(out, "throttled", out.throttled + 1))
            try:
                if op == "create":
                    out.result = await rc.create_or_find("customer", "C-1", {"x": 1})
                elif op == "find":
                    out.result = await rc.find_id("customer", "C-1")
                else:
                    out.result = await rc.get("customer", "7")
            except (NetSuiteError, NetSuiteUnavailable) as err:
                out.error = err
            out.breaker = rc.breaker.state
            out.breaker_successes = rc.breaker.successes

    asyncio.run(main())
    return out


def test_throttled_backs_off_without_using_attempts_or_the_breaker() -> None:
    run = run_policy([429, 429, 429, 429, 200], max_attempts=2)
    assert run.result == {"id": "77"} and run.error is None
    assert run.retries == ["throttled"] * 4 and run.throttled == 4
    assert run.breaker is BreakerState.CLOSED and run.breaker_successes == 1


@pytest.mark.parametrize(("failure", "label"), [
    (500, "server_error"), (503, "server_error"),
    (httpx.ReadTimeout, "timeout"), (httpx.ConnectError, "connection"),
])
def test_ambiguous_failures_retry_with_their_label(failure: Answer, label: str) -> None:
    run = run_policy([failure, failure, 200])
    assert run.result == {"id": "77"} and run.retries == [label, label]


@pytest.mark.parametrize(("failure", "cls"), [
    (500, ServerError), (httpx.ReadTimeout, TimedOut), (httpx.ConnectError, ConnectionFailed),
])
def test_spent_ambiguous_failures_with_nothing_answered_mean_wait(
        failure: Answer, cls: type[NetSuiteError]) -> None:
    run = run_policy([failure], max_attempts=3)
    assert isinstance(run.error, NetSuiteUnavailable)
    assert isinstance(run.error.__cause__, cls)
    assert len(run.requests) == 3 and run.breaker is BreakerState.OPEN


def test_ambiguous_failure_on_create_looks_up_before_writing_again() -> None:
    run = run_policy([httpx.ReadTimeout, 200], op="create")
    assert run.result == ("77", True)  # the timed-out attempt is what landed
    assert run.requests == ["POST customer", "GET eid:C-1"] and run.retries == ["timeout"]


def test_already_exists_on_create_is_looked_up() -> None:
    run = run_policy(["dup", 200], op="create")
    assert run.result == ("77", False) and run.retries == ["lookup"]
    assert run.requests == ["POST customer", "GET eid:C-1"]


def test_already_exists_under_another_type_is_raised() -> None:
    """The look-up after "already exists" finds nothing under this type: the externalId is
    taken by another record of its group, and the AlreadyExists itself is the verdict."""
    run = run_policy(["dup", 404], op="create")
    assert isinstance(run.error, AlreadyExists) and run.retries == ["lookup"]
    assert run.requests == ["POST customer", "GET eid:C-1"]


def test_already_exists_outside_a_write_is_raised() -> None:
    run = run_policy(["dup", 200])
    assert isinstance(run.error, AlreadyExists) and run.retries == []
    assert len(run.requests) == 1


def test_401_is_reauthorized_once_then_raised() -> None:
    once = run_policy([401, 200])
    assert once.result == {"id": "77"} and once.retries == ["auth_refresh"]
    twice = run_policy([401, 401, 200])
    assert isinstance(twice.error, AuthFailed) and twice.error.status == 401
    assert twice.retries == ["auth_refresh"] and len(twice.requests) == 2


def test_403_is_raised_at_once() -> None:
    run = run_policy([403, 200])
    assert isinstance(run.error, AuthFailed) and run.retries == [] and len(run.requests) == 1
    assert run.breaker_successes == 1, "NetSuite answered: evidence that it is up"


@pytest.mark.parametrize("status", [400, 404, 422])
def test_rejected_is_raised_at_once(status: int) -> None:
    run = run_policy([status, 200])
    assert isinstance(run.error, Rejected) and run.error.status == status
    assert run.retries == [] and len(run.requests) == 1 and run.breaker_successes == 1


def test_not_found_is_a_lookups_none() -> None:
    assert run_policy([404], op="find").result is None
    assert run_policy([200], op="find").result == "77"
    assert isinstance(run_policy([403], op="find").error, AuthFailed)


def test_client_raises_timeout_and_connection_leaves() -> None:
    async def get(failure: type[httpx.TransportError]) -> NetSuiteError:
        def handler(request: httpx.Request) -> httpx.Response:
            raise failure("scripted", request=request)

        async with client_for(handler) as client:
            with pytest.raises(NetSuiteError) as info:
                await client.get("customer", "1")
            return info.value

    for failure, cls, code in [(httpx.ReadTimeout, TimedOut, "TIMEOUT"),
                               (httpx.ConnectTimeout, TimedOut, "TIMEOUT"),
                               (httpx.ConnectError, ConnectionFailed, "CONNECTION_ERROR"),
                               (httpx.RemoteProtocolError, ConnectionFailed,
                                "CONNECTION_ERROR")]:
        err = asyncio.run(get(failure))
        assert type(err) is cls and err.code == code and err.status is None
        assert err.detail == failure.__name__ and err.url_path.endswith("/customer/1")


def test_token_endpoint_failures_are_leaves_too() -> None:
    """OAuth 2.0: a refused token request is AuthFailed shown as 401 (re-authorized once,
    never the event's fault); a 5xx or no answer is the same leaf as on a record call."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tillbridge.connectors.netsuite import OAuth2ClientCredentials, OAuth2Credentials
    from tillbridge.connectors.netsuite.oauth2 import TOKEN_PATH

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    creds = OAuth2Credentials("TSTDRV1234567_SB1", "client-id", "cert-id", pem, "ES256")

    async def token_error(what: Answer) -> NetSuiteError:
        def handler(request: httpx.Request) -> httpx.Response:
            if isinstance(what, type):
                raise what("scripted", request=request)
            return httpx.Response(int(what), json={"error": "invalid_client"})

        auth = OAuth2ClientCredentials(creds, BASE + TOKEN_PATH,
                                       transport=httpx.MockTransport(handler))
        try:
            with pytest.raises(NetSuiteError) as info:
                await auth.access_token()
        finally:
            await auth.aclose()
        return info.value

    refused = asyncio.run(token_error(400))
    assert type(refused) is AuthFailed and refused.status == 401
    assert refused.code == "OAUTH_INVALID_CLIENT"
    assert type(asyncio.run(token_error(503))) is ServerError
    assert type(asyncio.run(token_error(httpx.ReadTimeout))) is TimedOut
    assert type(asyncio.run(token_error(httpx.ConnectError))) is ConnectionFailed
