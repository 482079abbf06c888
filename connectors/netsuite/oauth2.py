"""OAuth 2.0 client credentials (M2M) for NetSuite REST: a signed JWT buys a Bearer token.

TBA stops being available for new integrations in 2027.1 (reference §4.1), so the client
can authenticate either way, chosen by configuration (``NETSUITE_AUTH``).

Flow (reference §4.3): sign a short-lived JWT assertion with the private key whose
certificate is mapped on the "OAuth 2.0 Client Credentials (M2M) Setup" page (header
``kid`` = certificate id; claims ``iss`` = integration client id, ``aud`` = token URL,
``scope``, ``iat``, ``exp`` at most 60 minutes later, ``jti``), POST it to the token
endpoint, and send ``Authorization: Bearer <access_token>`` until shortly before
``expires_in`` runs out. There is no refresh token: the flow is simply repeated.

The JWS is made by PyJWT (PS256 = RSA-PSS/SHA-256 with a 32-byte salt, ES256 = ECDSA
P-256 with the raw ``r||s`` signature JOSE requires): a maintained, reviewed encoder rather
than our own base64url, header and signature-format code. ``cryptography`` only loads the
key, so a key that does not fit the algorithm is refused at start-up with a message that
quotes no key text. The private key and tokens never appear in ``repr``, logs or exceptions.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tillbridge.connectors.netsuite.errors import (
    CONNECTION_ERROR,
    TIMEOUT,
    AuthFailed,
    ConnectionFailed,
    NetSuiteError,
    TimedOut,
)

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path, not a secret
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_TTL_S = 3600  # NetSuite: exp no more than 60 minutes after iat

Algorithm = Literal["PS256", "ES256"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class OAuth2Credentials:
    """One M2M mapping: integration client id + certificate id + the certificate's key."""

    account_id: str
    client_id: str
    certificate_id: str
    private_key_pem: bytes = field(repr=False)
    algorithm: Algorithm = "PS256"
    scopes: tuple[str, ...] = ("rest_webservices",)


def load_private_key(pem: bytes, algorithm: Algorithm) -> PrivateKey:
    """Load an unencrypted PEM key and check it fits ``algorithm`` (message never has key text)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("private key is not an unencrypted PEM key") from None
    if algorithm == "PS256" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if (algorithm == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey)
            and isinstance(key.curve, ec.SECP256R1)):
        return key
    raise ValueError(f"{algorithm} needs an {'RSA' if algorithm == 'PS256' else 'EC P-256'} key")


def sign_assertion(
    credentials: OAuth2Credentials,
    key: PrivateKey,
    token_url: str,
    now: float,
    ttl_s: int = 300,
    jti: str | None = None,
) -> str:
    """The compact JWS client assertion for one token request, signed by PyJWT.

    ``kid`` names the certificate so NetSuite knows which public key to check it with;
    ``jti`` is fresh per request because NetSuite refuses an assertion it has seen.
    """
    if not 0 < ttl_s <= MAX_ASSERTION_TTL_S:
        raise ValueError(f"assertion ttl must be 1..{MAX_ASSERTION_TTL_S} s")
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": credentials.client_id, "scope": list(credentials.scopes), "aud": token_url,
        "iat": iat, "exp": iat + ttl_s, "jti": jti or uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm=credentials.algorithm,
                      headers={"typ": "JWT", "kid": credentials.certificate_id})


class OAuth2ClientCredentials:
    """``Authenticator`` that fetches, caches and renews an M2M access token.

    One token request at a time (a lock), however many tasks need a token at once.
    """

    def __init__(
        self,
        credentials: OAuth2Credentials,
        token_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        refresh_margin_s: float = 60.0,
        assertion_ttl_s: int = 300,
    ) -> None:
        self._creds = credentials
        self._key = load_private_key(credentials.private_key_pem, credentials.algorithm)
        self.token_url = token_url
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._clock = clock
        self._margin = refresh_margin_s
        self._ttl = assertion_ttl_s
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.token_requests = 0

    @classmethod
    def for_base_url(cls, credentials: OAuth2Credentials, base_url: str, **kwargs: Any) -> Self:
        """Token endpoint on the same account host as the REST calls."""
        return cls(credentials, base_url.rstrip("/") + TOKEN_PATH, **kwargs)

    def __repr__(self) -> str:
        return (f"OAuth2ClientCredentials(account_id={self._creds.account_id!r}, "
                f"algorithm={self._creds.algorithm!r})")

    async def authorize(self, method: str, url: str) -> str:
        return f"Bearer {await self.access_token()}"

    def invalidate(self) -> None:
        """Forget the token (after a 401): the next call fetches a new one."""
        self._token = None
        self._renew_at = 0.0

    async def access_token(self) -> str:
        """The cached token, or a new one when it is missing or about to expire."""
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                await self._fetch()
            assert self._token is not None
            return self._token

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _fetch(self) -> None:
        now = self._clock()
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sign_assertion(self._creds, self._key, self.token_url, now,
                                               self._ttl),
        }
        self.token_requests += 1
        try:
            resp = await self._http.post(self.token_url, data=form)
        except httpx.TimeoutException as exc:
            raise TimedOut(None, TIMEOUT, detail=type(exc).__name__, method="POST",
                           url_path=TOKEN_PATH) from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(None, CONNECTION_ERROR, detail=type(exc).__name__,
                                   method="POST", url_path=TOKEN_PATH) from None
        body = _json_or_empty(resp)
        if resp.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise _token_error(resp.status_code, body)
        expires_in = float(body.get("expires_in", 3600))
        self._token = body["access_token"]
        self._renew_at = now + expires_in - min(self._margin, expires_in / 2)


def _json_or_empty(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _token_error(status: int, body: dict[str, Any]) -> NetSuiteError:
    """Token endpoint failures. A 4xx is ``AuthFailed`` shown as 401 (re-authorized once,
    never the event's fault); any other status picks its class as a record call's would
    (5xx: ``ServerError``). Only the ``error`` code is kept: nothing from the request."""
    code = str(body.get("error") or f"HTTP_{status}")[:64]
    detail = f"token endpoint answered {status} {code}"
    if 400 <= status < 500:
        return AuthFailed(401, f"OAUTH_{code.upper()}", detail=detail, method="POST",
                          url_path=TOKEN_PATH)
    return NetSuiteError(status, f"OAUTH_{code.upper()}", detail=detail, method="POST",
                         url_path=TOKEN_PATH)

