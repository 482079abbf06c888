"""OAuth 2.0 client credentials (M2M, reference §4.3) in the simulated account: the token
endpoint checks a JWT assertion signed with the private key of a registered certificate and
issues Bearer tokens; REST requests are then checked against them. Assertions and tokens
are never logged.

PyJWT parses the compact JWS, checks its signature (PS*/ES*, raw ``r||s`` for EC) and the
``iss``/``aud`` claims, and signs the sim's own tokens: the same maintained library the client
signs with, so the simulator carries no JOSE code of its own. NetSuite's rules that PyJWT
does not know (typ, known algorithms and key families, certificate validity, a lifetime of
at most 60 minutes with some clock skew, one token per assertion, scopes) stay here.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from starlette.responses import JSONResponse

from tillbridge.devstack.netsuite_sim.errors import AuthFailure

if TYPE_CHECKING:
    from jwt.types import Options

# OAuth 2.0 M2M (reference §4.3), spelled out here rather than imported from the client, so
# a wrong constant in the client fails against the simulator instead of agreeing with it.
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_TTL_S = 3600  # exp at most 60 minutes after iat
CLOCK_SKEW_S = 60  # an iat this far in the future is still taken (hosts' clocks drift)
SCOPES = frozenset({"restlets", "rest_webservices", "suite_analytics"})
REST_SCOPE = "rest_webservices"
CERT_MAX_VALIDITY_S = 2 * 365 * 86400  # longer certificates are cut to 2 years
# The JOSE algorithms the setup page's keys can sign with -> the EC curve the key must be
# on (None: an RSA key, RSA-PSS). PyJWT checks the signature; this keeps out every other
# algorithm (none, HS*, RS*) before PyJWT is asked, and pairs key family and algorithm.
_ALGORITHMS: dict[str, type[ec.EllipticCurve] | None] = {
    "PS256": None, "PS384": None, "PS512": None,
    "ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1,
}
# What PyJWT is asked to check when it verifies an assertion: signature, iss and aud. The
# time claims are checked here instead (NetSuite's own limits, and the sim's clock).
_VERIFY: Options = {
    "verify_signature": True, "verify_iss": True, "verify_aud": True,
    "verify_exp": False, "verify_iat": False, "verify_nbf": False,
    "verify_sub": False, "verify_jti": False, "require": [],
}
_RSA_BITS = (3072, 4096)
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")  # no padding
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class TokenError(Exception):
    """A refused token request: the OAuth ``error`` the client sees; the message is the
    audit reason it does not see.

    ``invalid_client`` (who is asking: kid, iss, signature) is a 401 with a Basic
    challenge; the rest (``invalid_request``, ``invalid_grant`` for a bad aud/time/replay,
    ``invalid_scope``, ``unsupported_grant_type``) are 400s (reference §3.3).
    """

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error

    @property
    def status(self) -> int:
        return 401 if self.error == "invalid_client" else 400

    def response(self, realm: str) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.error == "invalid_client":
            headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
        return JSONResponse({"error": self.error}, status_code=self.status, headers=headers)


@dataclass(frozen=True)
class M2MClient:
    """One row of the M2M Setup page: a certificate mapped to an integration (+ role, entity)."""

    client_id: str
    certificate_id: str
    public_key: PublicKey = field(repr=False)
    role: str = "3"
    entity: str = "-5"
    not_before: float | None = None
    not_after: float | None = None

    def describe(self) -> dict[str, Any]:
        key = self.public_key
        kind = (f"RSA {key.key_size}" if isinstance(key, rsa.RSAPublicKey)
                else f"EC {key.curve.name}")
        return {"client_id": self.client_id, "certificate_id": self.certificate_id,
                "key": kind, "role": self.role, "entity": self.entity,
                "not_after": self.not_after}


@dataclass(frozen=True)
class AccessToken:
    """What a Bearer token stands for; the sim looks tokens up rather than trusting them."""

    certificate_id: str
    scopes: frozenset[str]
    expires_at: float


def load_public_key(pem: bytes) -> tuple[PublicKey, float | None, float | None]:
    """An x.509 certificate (what NetSuite takes) or a bare public key, both PEM.

    Returns the key and the certificate's validity (cut to 2 years). Only RSA 3072/4096
    and EC P-256/P-384/P-521 are accepted, as on the setup page. Errors never quote the PEM.
    """
    not_before = not_after = None
    key: PublicKeyTypes
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            cert = x509.load_pem_x509_certificate(pem)
            key = cert.public_key()
            not_before = cert.not_valid_before_utc.timestamp()
            not_after = min(cert.not_valid_after_utc.timestamp(),
                            not_before + CERT_MAX_VALIDITY_S)
        else:
            key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ValueError("not a PEM certificate or public key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size in _RSA_BITS:
        return key, not_before, not_after
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _EC_CURVES):
        return key, not_before, not_after
    raise ValueError("NetSuite takes RSA 3072/4096-bit or EC P-256/P-384/P-521 keys")


def parse_token_form(content_type: str | None, body: bytes) -> dict[str, str]:
    """The token request's form fields; anything but one urlencoded value per name is refused."""
    if not (content_type or "").lower().startswith("application/x-www-form-urlencoded"):
        raise TokenError("invalid_request", "NotFormEncoded")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise TokenError("invalid_request", "MalformedForm") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise TokenError("invalid_request", "RepeatedParameter")
    return form


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode_jws(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """(header, claims, signature) of a compact JWS, unverified; TokenError if malformed.

    Read before any key is chosen because the header's ``kid`` names the key; PyJWT does
    the parsing, the pattern keeps today's rule that the compact form has no padding.
    """
    if not _COMPACT_JWS.fullmatch(assertion):
        raise TokenError("invalid_request", "MalformedAssertion")
    try:
        parts = jwt.decode_complete(assertion, options={"verify_signature": False})
    except jwt.DecodeError:
        raise TokenError("invalid_request", "MalformedAssertion") from None
    except jwt.InvalidTokenError:  # a header PyJWT refuses (a kid not a string, bad crit)
        raise TokenError("invalid_client", "UnusableHeader") from None
    return parts["header"], parts["payload"], parts["signature"]


def verify_assertion(key: PublicKey, alg: str, assertion: str, client_id: str,
                     token_url: str) -> None:
    """Check signature, ``iss`` and ``aud`` with PyJWT; ``TokenError`` as NetSuite answers.

    The key must be of the algorithm's family and curve (an EC key cannot vouch for PS256,
    a P-256 key not for ES384), checked before PyJWT so no key is coerced to fit.
    """
    curve = _ALGORITHMS[alg]
    fits = (isinstance(key, rsa.RSAPublicKey) if curve is None
            else isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve))
    if not fits:
        raise TokenError("invalid_client", "InvalidSignature")
    try:
        jwt.decode_complete(assertion, key, algorithms=[alg], options=_VERIFY,
                                    issuer=client_id, audience=token_url)
    except jwt.InvalidIssuerError:
        raise TokenError("invalid_client", "IssuerNotMappedToCertificate") from None
    except jwt.InvalidAudienceError:
        raise TokenError("invalid_grant", "WrongAudience") from None
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim == "iss":
            raise TokenError("invalid_client", "IssuerNotMappedToCertificate") from None
        raise TokenError("invalid_grant", "WrongAudience") from None
    except jwt.PyJWTError:  # bad signature, a key PyJWT will not use for alg
        raise TokenError("invalid_client", "InvalidSignature") from None


def _scopes(claim: object) -> frozenset[str]:
    """``scope`` as NetSuite's sample sends it (a JSON array) or as a comma/space list."""
    if isinstance(claim, str):
        items = [s for s in re.split(r"[,\s]+", claim) if s]
    elif isinstance(claim, list) and all(isinstance(s, str) for s in claim):
        items = claim
    else:
        raise TokenError("invalid_scope", "MissingScope")
    if not items or not set(items) <= SCOPES:
        raise TokenError("invalid_scope", "UnknownScope")
    return frozenset(items)


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("invalid_grant", f"Missing_{name}")
    return float(value)


class M2MIssuer:
    """The account's certificate mappings, the access tokens it issued, the spent assertions."""

    def __init__(self, realm: str) -> None:
        self.realm = realm
        self.clients: dict[str, M2MClient] = {}  # by certificate id
        self.tokens: dict[str, AccessToken] = {}
        self._spent: dict[str, float] = {}  # assertion jti (or signature) -> its exp
        self._startup: dict[str, M2MClient] = {}
        self._signing_key = secrets.token_bytes(32)

    def register(self, client_id: str, certificate_id: str, public_key_pem: bytes, *,
                 role: str = "3", entity: str = "-5", startup: bool = False) -> M2MClient:
        """Map a certificate to an integration; the same certificate id again replaces it."""
        if not client_id or not certificate_id:
            raise ValueError("client_id and certificate_id are required")
        key, not_before, not_after = load_public_key(public_key_pem)
        client = M2MClient(client_id, certificate_id, key, role, entity, not_before, not_after)
        self.clients[certificate_id] = client
        if startup:
            self._startup[certificate_id] = client
        return client

    def issue(self, form: Mapping[str, str], token_url: str, ttl_s: int,
              now: float | None = None) -> dict[str, Any]:
        """Answer a token request: the access token, or ``TokenError``.

        ``token_url`` is the URL the request came to: the assertion's ``aud`` must name it.
        """
        now = time.time() if now is None else now
        grant = form.get("grant_type")
        if grant != "client_credentials":
            raise TokenError("unsupported_grant_type" if grant else "invalid_request",
                             "UnsupportedGrantType")
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not assertion:
            raise TokenError("invalid_request", "MissingClientAssertion")
        header, claims, sig = _decode_jws(assertion)
        client = self._authenticate(header, assertion, token_url, now)
        scopes = self._check_claims(claims, now)
        self._spend(str(claims.get("jti") or _b64encode(sig)), _number(claims, "exp"), now)
        return {"access_token": self._mint(client, scopes, ttl_s, now),
                "token_type": "Bearer", "expires_in": ttl_s}

    def check_bearer(self, token: str, now: float | None = None) -> None:
        """Raise ``AuthFailure`` unless ``token`` is a live token with the REST scope."""
        if not _B64TOKEN.fullmatch(token):
            raise AuthFailure("MalformedBearer", bearer_error="invalid_request")
        grant = self.tokens.get(token)
        if grant is None or grant.certificate_id not in self.clients:
            raise AuthFailure("InvalidToken", bearer_error="invalid_token")
        if (time.time() if now is None else now) >= grant.expires_at:
            raise AuthFailure("TokenExpired", bearer_error="invalid_token")
        if REST_SCOPE not in grant.scopes:
            raise AuthFailure("InsufficientScope", bearer_error="invalid_token")

    def reset(self) -> None:
        """Back to the start-up mappings; every token and spent assertion forgotten."""
        self.clients = dict(self._startup)
        self.tokens.clear()
        self._spent.clear()

    def _authenticate(self, header: dict[str, Any], assertion: str, token_url: str,
                      now: float) -> M2MClient:
        """Who is asking: ``kid`` names a mapped certificate, valid now, whose key signed
        this for the integration in ``iss``, addressed (``aud``) to this token URL. Any
        doubt about who is ``invalid_client``; a wrong ``aud`` is ``invalid_grant``."""
        if str(header.get("typ", "")).upper() != "JWT":
            raise TokenError("invalid_request", "NotAJwt")
        alg = header.get("alg")
        if alg not in _ALGORITHMS:
            raise TokenError("invalid_client", "UnknownAlgorithm")
        client = self.clients.get(str(header.get("kid")))
        if client is None:
            raise TokenError("invalid_client", "UnknownCertificate")
        # Before the signature: a certificate out of its validity vouches for nothing.
        if (client.not_before is not None and now < client.not_before) or (
                client.not_after is not None and now >= client.not_after):
            raise TokenError("invalid_client", "CertificateNotValidNow")
        verify_assertion(client.public_key, str(alg), assertion, client.client_id, token_url)
        return client

    def _check_claims(self, claims: dict[str, Any], now: float) -> frozenset[str]:
        """NetSuite's time rules (PyJWT has no 60-minute cap and uses the wall clock)."""
        iat, exp = _number(claims, "iat"), _number(claims, "exp")
        if exp <= iat or exp - iat > MAX_ASSERTION_TTL_S:
            raise TokenError("invalid_grant", "AssertionLifetimeOver60Minutes")
        if iat > now + CLOCK_SKEW_S:
            raise TokenError("invalid_grant", "IssuedInTheFuture")
        if exp <= now:
            raise TokenError("invalid_grant", "AssertionExpired")
        return _scopes(claims.get("scope"))

    def _spend(self, key: str, exp: float, now: float) -> None:
        """An assertion buys one token: its jti (or signature) is kept until it expires."""
        if len(self._spent) > 10000:
            self._spent = {k: e for k, e in self._spent.items() if e > now}
        if key in self._spent:
            raise TokenError("invalid_grant", "AssertionReplayed")
        self._spent[key] = exp

    def _mint(self, client: M2MClient, scopes: frozenset[str], ttl_s: int, now: float) -> str:
        """A JWT-shaped token with NetSuite's claims (§4.3). Real ones are signed with
        NetSuite's rotating certificates; this one with a sim key, and clients must treat
        it as opaque either way."""
        if len(self.tokens) > 10000:
            self.tokens = {t: g for t, g in self.tokens.items() if g.expires_at > now}
        claims: dict[str, Any] = {
            "sub": f"{client.role};{client.entity}", "aud": [client.client_id],
            "scope": sorted(scopes), "iss": "https://system.netsuite.com",
            "iat": int(now), "exp": int(now) + ttl_s, "jti": str(uuid.uuid4())}
        token = jwt.encode(claims, self._signing_key, algorithm="HS256",
                           headers={"typ": "JWT", "kid": "tillbridge-sim"})
        self.tokens[token] = AccessToken(client.certificate_id, scopes, now + ttl_s)
        return token
