"""OAuth 2.0 client credentials (M2M) against the simulator over real HTTP (reference §4.3).

The project's own client (``OAuth2ClientCredentials``) buys tokens; refused assertions are
signed here, independently of the client, so a bug shared by both cannot hide.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteError
from tillbridge.connectors.netsuite.oauth2 import (
    ASSERTION_TYPE,
    TOKEN_PATH,
    OAuth2ClientCredentials,
    OAuth2Credentials,
    sign_assertion,
)
from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.devstack.netsuite_sim.m2m import M2MIssuer, TokenError
from tillbridge.streams.flows.sink import rejection_for
from tillbridge.streams.stages.deadletter import dlq_headers

CLIENT_ID = "client-id-m2m"
CERT_ID = "cert-id-m2m"
REALM = "TSTDRV1234567_SB1"
INVALID_LOGIN = ("Invalid login attempt. For more details, see the Login Audit Trail in the "
                 "NetSuite UI at Setup > Users/Roles > User Management > View Login Audit Trail.")
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_pem(key: Key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def register(sim: SimServer, pem: str, client_id: str = CLIENT_ID,
             cert_id: str = CERT_ID) -> httpx.Response:
    return httpx.post(sim.base_url + "/__sim/oauth2", json={
        "client_id": client_id, "certificate_id": cert_id, "public_key_pem": pem})


def creds(key: Key, algorithm: str, scopes: tuple[str, ...] = ("rest_webservices",)
          ) -> OAuth2Credentials:
    return OAuth2Credentials(REALM, CLIENT_ID, CERT_ID, private_pem(key), algorithm,  # type: ignore[arg-type]
                             scopes)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(key: Key, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An independent JOSE signer (PS256 / ES256 / anything else: signature left empty)."""
    signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode()))
    data = signing_input.encode()
    if isinstance(key, rsa.RSAPrivateKey) and header["alg"] == "PS256":
        sig = key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey) and header["alg"].startswith("ES"):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        sig = b""
    return f"{signing_input}.{b64(sig)}"


def token_form(assertion: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion}


def post_token(sim: SimServer, form: dict[str, str]) -> httpx.Response:
    return httpx.post(sim.base_url + TOKEN_PATH, data=form)


def rest_get(sim: SimServer, authorization: str) -> httpx.Response:
    return httpx.get(sim.base_url + "/services/rest/record/v1/customer/5001",
                     headers={"Authorization": authorization})


def stats(sim: SimServer) -> dict[str, Any]:
    return httpx.get(sim.base_url + "/__sim/stats").json()["auth"]


def configure(sim: SimServer, **values: Any) -> None:
    httpx.post(sim.base_url + "/__sim/config", json=values).raise_for_status()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the happy path -----------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["PS256", "ES256"])
def test_assertion_buys_a_token_that_opens_the_rest_api(
        sim: SimServer, algorithm: str, rsa_key: rsa.RSAPrivateKey,
        ec_key: ec.EllipticCurvePrivateKey) -> None:
    key: Key = rsa_key if algorithm == "PS256" else ec_key
    assert register(sim, public_pem(key)).json()["key"] in ("RSA 3072", "EC secp256r1")
    c = creds(key, algorithm)
    raw = post_token(sim, token_form(sign_assertion(
        c, key, sim.base_url + TOKEN_PATH, time.time())))  # type: ignore[arg-type]
    assert raw.status_code == 200
    assert raw.headers["cache-control"] == "no-store"
    body = raw.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
    assert claims["iss"] == "https://system.netsuite.com" and "rest_webservices" in claims["scope"]
    assert rest_get(sim, f"Bearer {body['access_token']}").json()["id"] == "5001"

    async def through_the_client() -> tuple[list[dict[str, Any]], dict[str, Any], int]:
        auth = OAuth2ClientCredentials.for_base_url(c, sim.base_url)
        async with NetSuiteClient(sim.base_url, auth) as client:
            rows = await client.suiteql("SELECT id FROM customer WHERE id = 5001")
            record = await client.get("customer", "5001")
            return rows, record, auth.token_requests

    rows, record, token_requests = run(through_the_client())
    assert rows == [{"id": "5001"}] and record["entityId"] == "Sam Garcia"
    assert token_requests == 1, "one token for both calls"
    # TBA still works on the same account, beside Bearer tokens.
    run(_tba_get(sim))
    auth = stats(sim)
    assert auth["bearer"] == {"accepted": 3, "refused": 0}
    assert auth["tba"] == {"accepted": 1, "refused": 0}
    assert auth["tokens"] == {"issued": 2, "refused": {}}


async def _tba_get(sim: SimServer) -> None:
    async with NetSuiteClient(sim.base_url, sim.credentials) as client:
        await client.get("customer", "5001")


# -- refused token requests ---------------------------------------------------------------------

Form = Callable[[Key, Key, str, float], dict[str, str]]


def _signed(header: dict[str, Any] | None = None, signer: str = "key", **claims: Any) -> Form:
    """A token form whose assertion differs from a valid ES256 one by ``header``/``claims``."""

    def build(key: Key, other: Key, url: str, now: float) -> dict[str, str]:
        h = {"typ": "JWT", "alg": "ES256", "kid": CERT_ID, **(header or {})}
        c = {"iss": CLIENT_ID, "scope": ["rest_webservices"], "aud": url, "iat": int(now),
             "exp": int(now) + 300, "jti": f"jti-{now}"}
        c.update({k: v(now) if callable(v) else v for k, v in claims.items()})
        return token_form(make_jwt(key if signer == "key" else other, h, c))

    return build


def _form(**fields: str) -> Form:
    def build(key: Key, other: Key, url: str, now: float) -> dict[str, str]:
        form = _signed()(key, other, url, now)
        form.update(fields)
        return {k: v for k, v in form.items() if v != "<drop>"}

    return build


REFUSALS: dict[str, tuple[Form, int, str | None]] = {
    "valid (control)": (_signed(), 200, None),
    "another key": (_signed(signer="other"), 401, "invalid_client"),
    "unknown kid": (_signed({"kid": "cert-nobody"}), 401, "invalid_client"),
    "wrong iss": (_signed(iss="client-of-someone-else"), 401, "invalid_client"),
    "alg none": (_signed({"alg": "none"}), 401, "invalid_client"),
    "alg of another curve": (_signed({"alg": "ES384"}), 401, "invalid_client"),
    "wrong aud": (_signed(aud="https://1234567.suitetalk.api.netsuite.com" + TOKEN_PATH),
                  400, "invalid_grant"),
    "expired": (_signed(iat=lambda n: int(n) - 400, exp=lambda n: int(n) - 100),
                400, "invalid_grant"),
    "exp over 60 min after iat": (_signed(exp=lambda n: int(n) + 3601), 400, "invalid_grant"),
    "iat in the future": (_signed(iat=lambda n: int(n) + 600, exp=lambda n: int(n) + 900),
                          400, "invalid_grant"),
    "no exp": (_signed(exp=None), 400, "invalid_grant"),
    "unknown scope": (_signed(scope=["rest_webservices", "everything"]), 400, "invalid_scope"),
    "other grant type": (_form(grant_type="password"), 400, "unsupported_grant_type"),
    "no assertion": (_form(client_assertion="<drop>"), 400, "invalid_request"),
    "other assertion type": (_form(client_assertion_type="urn:x"), 400, "invalid_request"),
    "not a JWT": (_form(client_assertion="abc.def"), 400, "invalid_request"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_token_endpoint_refuses_like_netsuite(sim: SimServer, ec_key: ec.EllipticCurvePrivateKey,
                                              case: str) -> None:
    build, status, error = REFUSALS[case]
    register(sim, public_pem(ec_key)).raise_for_status()
    other = ec.generate_private_key(ec.SECP256R1())
    resp = post_token(sim, build(ec_key, other, sim.base_url + TOKEN_PATH, time.time()))
    assert resp.status_code == status, resp.text
    assert resp.headers["cache-control"] == "no-store"
    tokens = stats(sim)["tokens"]
    if error is None:
        assert resp.json()["token_type"] == "Bearer" and tokens["issued"] == 1
        return
    assert resp.json() == {"error": error}, "only the code: the reason is for the audit log"
    assert tokens == {"issued": 0, "refused": {error: 1}}
    if error == "invalid_client":
        assert resp.headers["www-authenticate"] == f'Basic realm="{REALM}"'


def test_token_request_must_be_form_encoded(sim: SimServer,
                                            ec_key: ec.EllipticCurvePrivateKey) -> None:
    register(sim, public_pem(ec_key)).raise_for_status()
    form = _signed()(ec_key, ec_key, sim.base_url + TOKEN_PATH, time.time())
    assert httpx.post(sim.base_url + TOKEN_PATH, json=form).json() == {"error": "invalid_request"}
    assert post_token(sim, form).status_code == 200, "the same fields as a form are fine"


def test_an_assertion_buys_one_token_only(sim: SimServer,
                                          ec_key: ec.EllipticCurvePrivateKey) -> None:
    register(sim, public_pem(ec_key)).raise_for_status()
    url, now = sim.base_url + TOKEN_PATH, time.time()
    with_jti = _signed()(ec_key, ec_key, url, now)
    assert post_token(sim, with_jti).status_code == 200
    replay = post_token(sim, with_jti)
    assert (replay.status_code, replay.json()) == (400, {"error": "invalid_grant"})
    fresh = _signed(jti="another-jti")(ec_key, ec_key, url, now)
    assert post_token(sim, fresh).status_code == 200, "same second, new jti: fine"
    # Without a jti the assertion itself (its signature) is what cannot be spent twice.
    no_jti = _signed(jti=None)(ec_key, ec_key, url, now)
    assert [post_token(sim, no_jti).status_code for _ in range(2)] == [200, 400]


# -- the assertion as a standard JWS (PyJWT signs in the client, verifies in the sim) ------------

@pytest.mark.parametrize("algorithm", ["PS256", "ES256"])
def test_client_assertion_is_a_standard_jws(algorithm: str, rsa_key: rsa.RSAPrivateKey,
                                            ec_key: ec.EllipticCurvePrivateKey) -> None:
    """Any JOSE verifier holding only the certificate's public key accepts the assertion."""
    key: Key = rsa_key if algorithm == "PS256" else ec_key
    url = "https://tstdrv1234567-sb1.suitetalk.api.netsuite.com" + TOKEN_PATH
    now = 1_700_000_000.0
    assertion = sign_assertion(creds(key, algorithm), key, url, now, ttl_s=3600)
    decoded = jwt.decode_complete(assertion, key.public_key(), algorithms=[algorithm],
                                  audience=url, issuer=CLIENT_ID,
                                  options={"verify_exp": False, "verify_iat": False})
    assert decoded["header"] == {"typ": "JWT", "alg": algorithm, "kid": CERT_ID}
    claims = decoded["payload"]
    assert set(claims) == {"iss", "scope", "aud", "iat", "exp", "jti"}
    assert (claims["iat"], claims["exp"], claims["scope"]) == (
        int(now), int(now) + 3600, ["rest_webservices"])
    if algorithm == "ES256":
        assert len(decoded["signature"]) == 64, "JOSE's raw r||s, not DER"
    again = jwt.decode(sign_assertion(creds(key, algorithm), key, url, now), key.public_key(),
                       algorithms=[algorithm], audience=url,
                       options={"verify_exp": False, "verify_iat": False})
    assert again["jti"] != claims["jti"], "a fresh jti per assertion"
    with pytest.raises(ValueError, match="1..3600"):
        sign_assertion(creds(key, algorithm), key, url, now, ttl_s=3601)


def _claims(url: str, now: float, **changes: Any) -> dict[str, Any]:
    claims = {"iss": CLIENT_ID, "scope": ["rest_webservices"], "aud": url, "iat": int(now),
              "exp": int(now) + 300, "jti": f"jti-{now}"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An HMAC-signed JWT whose secret is the registered public key: the alg-confusion attack."""
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def test_issuer_refuses_assertions_at_the_edges(rsa_key: rsa.RSAPrivateKey,
                                                ec_key: ec.EllipticCurvePrivateKey) -> None:
    """What PyJWT now parses and checks is refused with the error the sim always gave."""
    url, now = "http://sim.test" + TOKEN_PATH, time.time()
    issuer = M2MIssuer(REALM)
    issuer.register(CLIENT_ID, CERT_ID, public_pem(ec_key).encode())
    issuer.register("rsa-client", "cert-rsa", public_pem(rsa_key).encode())
    es256 = {"typ": "JWT", "alg": "ES256", "kid": CERT_ID}
    valid = make_jwt(ec_key, es256, _claims(url, now))

    def refusal(assertion: str) -> tuple[str, str]:
        with pytest.raises(TokenError) as info:
            issuer.issue(token_form(assertion), url, 3600, now=now)
        return info.value.error, str(info.value)

    assert refusal(valid + "==") == ("invalid_request", "MalformedAssertion"), "no padding"
    assert refusal(valid.replace(".", "..", 1)) == ("invalid_request", "MalformedAssertion")
    not_json = f"{b64(b'{not json')}.{valid.split('.', 1)[1]}"
    assert refusal(not_json) == ("invalid_request", "MalformedAssertion")
    assert refusal(make_jwt(ec_key, {**es256, "kid": 7}, _claims(url, now)))[0] == (
        "invalid_client"), "a kid that is no string names no certificate"
    confused = _hs256(public_pem(ec_key).encode(), {**es256, "alg": "HS256"}, _claims(url, now))
    assert refusal(confused) == ("invalid_client", "UnknownAlgorithm")
    # An EC signature under the RSA certificate's kid: the key family does not fit the alg.
    wrong_family = make_jwt(ec_key, {**es256, "kid": "cert-rsa"}, _claims(url, now,
                                                                          iss="rsa-client"))
    assert refusal(wrong_family) == ("invalid_client", "InvalidSignature")
    assert refusal(make_jwt(ec_key, es256, _claims(url, now, iss=None))) == (
        "invalid_client", "IssuerNotMappedToCertificate")
    assert refusal(make_jwt(ec_key, es256, _claims(url, now, aud=None))) == (
        "invalid_grant", "WrongAudience")
    assert refusal(make_jwt(ec_key, es256, _claims(url, now, aud=[url + "/other"]))) == (
        "invalid_grant", "WrongAudience")
    listed = make_jwt(ec_key, es256, _claims(url, now, aud=["https://elsewhere", url],
                                                   jti="j-listed"))
    assert issuer.issue(token_form(listed), url, 3600, now=now)["token_type"] == "Bearer"
    token = issuer.issue(token_form(valid), url, 3600, now=now)["access_token"]
    issuer.check_bearer(token, now)
    assert jwt.get_unverified_header(token)["kid"] == "tillbridge-sim"
    # A certificate out of its validity is refused before anything else it vouches for.
    issuer.register(CLIENT_ID, CERT_ID, _certificate(ec_key, 10, start_days_ago=20).encode())
    stale = make_jwt(ec_key, es256, _claims(url, now, aud="https://elsewhere", jti="j-stale"))
    assert refusal(stale) == ("invalid_client", "CertificateNotValidNow")


# -- Bearer tokens on the REST endpoints --------------------------------------------------------

def test_expired_token_gets_401_and_the_client_fetches_a_new_one_once(
        sim: SimServer, ec_key: ec.EllipticCurvePrivateKey) -> None:
    register(sim, public_pem(ec_key)).raise_for_status()
    configure(sim, oauth2_token_ttl_s=1)
    frozen = time.time()  # the client believes its token is fresh; the sim knows better
    retries: list[str] = []
    auth = OAuth2ClientCredentials.for_base_url(creds(ec_key, "ES256"), sim.base_url,
                                                clock=lambda: frozen)

    async def main() -> tuple[str, httpx.Response, dict[str, Any]]:
        async with NetSuiteClient(sim.base_url, auth) as client:
            rc = ReliableClient(client, on_retry=lambda reason, _s: retries.append(reason))
            await rc.get("customer", "5001")
            old = await auth.access_token()
            await asyncio.sleep(1.1)
            stale = await asyncio.to_thread(rest_get, sim, f"Bearer {old}")
            record = await rc.get("customer", "5001")
            return old, stale, record

    old, stale, record = run(main())
    assert stale.status_code == 401
    assert stale.json()["o:errorDetails"] == [{"detail": INVALID_LOGIN,
                                               "o:errorCode": "INVALID_LOGIN"}]
    assert stale.headers["www-authenticate"] == (
        f'Bearer realm="{REALM}", error="invalid_token", '
        'error_description="Invalid login attempt."')
    assert record["id"] == "5001"
    assert auth.token_requests == 2 and retries == ["auth_refresh"]
    assert run(auth.access_token()) != old
    assert stats(sim)["bearer"] == {"accepted": 2, "refused": 2}


def test_short_lived_tokens_are_renewed_before_they_expire(
        sim: SimServer, ec_key: ec.EllipticCurvePrivateKey) -> None:
    register(sim, public_pem(ec_key)).raise_for_status()
    configure(sim, oauth2_token_ttl_s=1)
    auth = OAuth2ClientCredentials.for_base_url(creds(ec_key, "ES256"), sim.base_url)

    async def main() -> None:
        async with NetSuiteClient(sim.base_url, auth) as client:
            for _ in range(8):
                await client.get("customer", "5001")
                await asyncio.sleep(0.2)

    run(main())
    assert auth.token_requests >= 2, "expires_in=1: renewed at half-life"
    assert stats(sim)["bearer"] == {"accepted": 8, "refused": 0}, "never sent an expired one"


def test_unknown_malformed_and_out_of_scope_bearers(
        sim: SimServer, ec_key: ec.EllipticCurvePrivateKey) -> None:
    tba_refusal = rest_get(sim, 'OAuth realm="x", oauth_token="nope"')
    unknown = rest_get(sim, "Bearer not-a-token-we-issued")
    assert unknown.status_code == tba_refusal.status_code == 401
    assert unknown.json() == tba_refusal.json(), "the same envelope, whatever the scheme"
    assert 'error="invalid_token"' in unknown.headers["www-authenticate"]
    malformed = rest_get(sim, "Bearer two words")
    assert malformed.status_code == 400
    assert malformed.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_REQUEST"
    assert malformed.headers["www-authenticate"] == (
        f'Bearer realm="{REALM}", error="invalid_request"')
    # A token for RESTlets only is issued, but does not open the REST web services.
    register(sim, public_pem(ec_key)).raise_for_status()
    restlets = creds(ec_key, "ES256", scopes=("restlets",))
    token = post_token(sim, token_form(sign_assertion(
        restlets, ec_key, sim.base_url + TOKEN_PATH, time.time()))).json()["access_token"]
    assert rest_get(sim, f"Bearer {token}").status_code == 401


# -- certificates and reset ---------------------------------------------------------------------

def _certificate(key: Key, days_valid: int, start_days_ago: int = 1) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tillbridge m2m")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=start_days_ago))
            .not_valid_after(now + dt.timedelta(days=days_valid - start_days_ago))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificates_are_checked_like_the_setup_page(
        sim: SimServer, ec_key: ec.EllipticCurvePrivateKey) -> None:
    assert register(sim, _certificate(ec_key, 365)).status_code == 200
    url = sim.base_url + TOKEN_PATH
    assert post_token(sim, _signed()(ec_key, ec_key, url, time.time())).status_code == 200
    small = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = register(sim, public_pem(small), cert_id="cert-small")
    assert refused.status_code == 400 and "RSA 3072/4096" in refused.json()["error"]
    garbage = "-----BEGIN PUBLIC KEY-----\nc2VjcmV0LXN0dWZm\n-----END PUBLIC KEY-----\n"
    bad = register(sim, garbage, cert_id="cert-bad")
    assert bad.status_code == 400 and "c2VjcmV0LXN0dWZm" not in bad.text
    missing = httpx.post(sim.base_url + "/__sim/oauth2", json={"client_id": "x"})
    assert missing.status_code == 400 and "certificate_id" in missing.json()["error"]
    # A certificate past its validity no longer authenticates anybody.
    assert register(sim, _certificate(ec_key, 10, start_days_ago=20)).status_code == 200
    expired = post_token(sim, _signed(jti="j2")(ec_key, ec_key, url, time.time()))
    assert (expired.status_code, expired.json()) == (401, {"error": "invalid_client"})


def test_reset_keeps_start_up_mappings_and_forgets_tokens(
        ec_key: ec.EllipticCurvePrivateKey) -> None:
    startup = {"client_id": CLIENT_ID, "certificate_id": CERT_ID,
               "public_key_pem": public_pem(ec_key)}
    with SimServer(oauth2_clients=[startup], oauth2_token_ttl_s=600) as server:
        url = server.base_url + TOKEN_PATH
        first = post_token(server, _signed()(ec_key, ec_key, url, time.time())).json()
        assert first["expires_in"] == 600, "the start-up TTL"
        other = ec.generate_private_key(ec.SECP256R1())
        register(server, public_pem(other), client_id="c2", cert_id="cert-2").raise_for_status()
        httpx.post(server.base_url + "/__sim/reset").raise_for_status()
        assert rest_get(server, f"Bearer {first['access_token']}").status_code == 401
        again = post_token(server, _signed(jti="after-reset")(ec_key, ec_key, url, time.time()))
        assert again.status_code == 200, "start-up mapping survives the reset"
        gone = post_token(server, _signed({"kid": "cert-2"}, iss="c2")(other, other, url,
                                                                       time.time()))
        assert gone.json() == {"error": "invalid_client"}, "admin mapping forgotten"
        assert stats(server)["m2m_clients"] == 1


# -- secrets ------------------------------------------------------------------------------------

class _Recording(httpx.AsyncBaseTransport):
    """Real HTTP, keeping every request body (the assertions) for the leak check."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(await request.aread())
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def test_key_assertion_and_token_stay_out_of_logs_errors_and_dlq_headers(
        sim: SimServer, ec_key: ec.EllipticCurvePrivateKey,
        debug_logs: pytest.LogCaptureFixture) -> None:
    register(sim, public_pem(ec_key)).raise_for_status()
    wrong = ec.generate_private_key(ec.SECP256R1())  # not the registered certificate's key
    bad_transport, good_transport = _Recording(), _Recording()
    bad = OAuth2ClientCredentials.for_base_url(creds(wrong, "ES256"), sim.base_url,
                                               transport=bad_transport)
    good = OAuth2ClientCredentials.for_base_url(creds(ec_key, "ES256"), sim.base_url,
                                                transport=good_transport)

    async def main() -> tuple[NetSuiteError, str]:
        async with NetSuiteClient(sim.base_url, bad) as client:
            with pytest.raises(NetSuiteError) as info:
                await ReliableClient(client).get("customer", "5001")
        async with NetSuiteClient(sim.base_url, good) as client:
            await client.get("customer", "5001")
            return info.value, await good.access_token()

    err, token = run(main())
    assert (err.status, err.kind, err.code) == (401, "auth", "OAUTH_INVALID_CLIENT")
    assert len(bad_transport.bodies) == 2, "refused, re-fetched once after the 401, given up"
    headers = dlq_headers(rejection_for(err, "cashSale", "pos-sale-S1-T1"), topic="t",
                          partition=0, offset=1, exc=err, netsuite_details=err.details)
    shown = [str(err), repr(err), repr(bad), repr(good), debug_logs.text,
             *(v.decode() for _, v in headers if v is not None)]
    secrets = [token, *(line for k in (ec_key, wrong)
                        for line in private_pem(k).decode().splitlines()[1:-1]),
               *(body.decode() for body in bad_transport.bodies + good_transport.bodies)]
    assert "InvalidSignature -> invalid_client" in debug_logs.text, "the sim's audit was logged"
    for text in shown:
        for secret in secrets:
            assert secret not in text
