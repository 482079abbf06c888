"""How the simulated account checks a REST login: TBA (OAuth 1.0a) or an OAuth 2.0 Bearer token.

TBA: the base string and HMAC come from oauthlib's RFC 5849 helpers. OAuth 2.0 client
credentials (M2M, reference §4.3): a JWT assertion signed with the private key of a
certificate mapped on the "M2M Setup" page buys a Bearer token at the token endpoint.
Every REST login failure is a 401 INVALID_LOGIN (Bearer ones add the ``WWW-Authenticate``
challenge of §3.3); the reason is kept for the sim's own log, like NetSuite's Login Audit
Trail, and never sent to the client. Assertions and tokens are never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature, utils
from starlette.responses import JSONResponse

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials

from .errors import SimError, invalid_login

TIMESTAMP_WINDOW_S = 300  # NetSuite: within +/- 5 minutes of server time
_REQUIRED = ("oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_timestamp",
             "oauth_nonce", "oauth_signature")

# OAuth 2.0 M2M (reference §4.3), spelled out here rather than imported from the client, so
# a wrong constant in the client fails against the simulator instead of agreeing with it.
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_TTL_S = 3600  # exp at most 60 minutes after iat
CLOCK_SKEW_S = 60  # an iat this far in the future is still taken (hosts' clocks drift)
SCOPES = frozenset({"restlets", "rest_webservices", "suite_analytics"})
REST_SCOPE = "rest_webservices"
CERT_MAX_VALIDITY_S = 2 * 365 * 86400  # longer certificates are cut to 2 years
# JOSE alg -> (hash, EC curve; None = RSA-PSS with salt = hash size, RFC 7518 §3.5)
_ALGORITHMS: dict[str, tuple[type[hashes.HashAlgorithm], type[ec.EllipticCurve] | None]] = {
    "PS256": (hashes.SHA256, None), "PS384": (hashes.SHA384, None),
    "PS512": (hashes.SHA512, None), "ES256": (hashes.SHA256, ec.SECP256R1),
    "ES384": (hashes.SHA384, ec.SECP384R1), "ES512": (hashes.SHA512, ec.SECP521R1),
}
_RSA_BITS = (3072, 4096)
_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class AuthFailure(Exception):
    """Why a login failed (audit-trail reason such as ``NonceUsed``); never sent to clients.

    ``bearer_error`` is set for Bearer logins: the answer then carries the RFC 6750
    challenge, and ``invalid_request`` (a malformed header) is a 400 rather than a 401.
    """

    def __init__(self, reason: str, *, bearer_error: str | None = None) -> None:
        super().__init__(reason)
        self.bearer_error = bearer_error

    def sim_error(self, realm: str) -> SimError:
        """The response NetSuite gives: the same envelope whatever the reason."""
        err = invalid_login()
        if self.bearer_error is None:
            return err
        challenge = f'Bearer realm="{realm}", error="{self.bearer_error}"'
        if self.bearer_error == "invalid_request":
            return SimError(400, "INVALID_REQUEST", "The request could not be understood by "
                            "the server due to malformed syntax.",
                            headers={"WWW-Authenticate": challenge})
        err.headers = {"WWW-Authenticate": challenge
                       + ', error_description="Invalid login attempt."'}
        return err


class TbaVerifier:
    """Checks the Authorization header of one account's single integration token."""

    def __init__(self, credentials: NetSuiteCredentials) -> None:
        self._creds = credentials
        self._seen: dict[tuple[str, str, str], int] = {}  # (token, nonce, ts) -> ts

    def verify(self, method: str, url: str, headers: Mapping[str, str],
               now: float | None = None) -> None:
        """Raise ``AuthFailure`` unless the request carries a valid, fresh TBA signature.

        ``url`` must be the URL as the client sent it (raw path + query string).
        """
        header = headers.get("authorization") or headers.get("Authorization")
        if not header or not header.lower().startswith("oauth "):
            raise AuthFailure("MissingTokenPassportRequiredFields")
        try:
            params = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
        except (ValueError, IndexError) as exc:
            raise AuthFailure("MissingTokenPassportRequiredFields") from exc
        if any(not params.get(k) for k in _REQUIRED):
            raise AuthFailure("MissingTokenPassportRequiredFields")
        if params.get("realm", "").upper() != self._creds.realm:
            raise AuthFailure("InvalidAccount")
        if params["oauth_signature_method"] != "HMAC-SHA256":
            raise AuthFailure("UnknownAlgorithm")
        if params.get("oauth_version", "1.0") != "1.0":
            raise AuthFailure("VersionRejected")
        if params["oauth_consumer_key"] != self._creds.consumer_key:
            raise AuthFailure("consumer_key_unknown")
        if params["oauth_token"] != self._creds.token_id:
            raise AuthFailure("token_rejected")
        try:
            timestamp = int(params["oauth_timestamp"])
        except ValueError as exc:
            raise AuthFailure("InvalidTimestamp") from exc
        current = time.time() if now is None else now
        if abs(current - timestamp) > TIMESTAMP_WINDOW_S:
            raise AuthFailure("InvalidTimestamp")
        if not verify_signature(method, url, header, self._creds):
            raise AuthFailure("InvalidSignature")
        key = (params["oauth_token"], params["oauth_nonce"], params["oauth_timestamp"])
        self._forget_older_than(current - 2 * TIMESTAMP_WINDOW_S)
        if key in self._seen:
            raise AuthFailure("NonceUsed")
        self._seen[key] = timestamp

    def reset(self) -> None:
        self._seen.clear()

    def _forget_older_than(self, cutoff: float) -> None:
        # Entries older than the window can never be replayed successfully anyway.
        if len(self._seen) > 10000:
            self._seen = {k: ts for k, ts in self._seen.items() if ts >= cutoff}


def verify_signature(method: str, url: str, header: str, creds: NetSuiteCredentials) -> bool:
    """Recompute the RFC 5849 HMAC-SHA256 signature with oauthlib and compare in constant time."""
    request = OAuthRequest(url, http_method=method.upper(), headers={"Authorization": header})
    request.params = signature.collect_parameters(
        uri_query=request.uri_query, headers=request.headers, exclude_oauth_signature=True,
        with_realm=False,
    )
    sent = dict(utils.parse_authorization_header(header)).get("oauth_signature", "")
    request.signature = utils.unescape(sent)
    return signature.verify_hmac_sha256(request, creds.consumer_secret, creds.token_secret)


# -- OAuth 2.0 client credentials (M2M) ---------------------------------------------------------

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
        headers = dict(_NO_STORE)
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


def _b64decode(part: str) -> bytes:
    if not _B64URL.fullmatch(part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode_jws(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS; TokenError if malformed."""
    parts = assertion.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        header, claims = json.loads(_b64decode(parts[0])), json.loads(_b64decode(parts[1]))
        sig = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        raise TokenError("invalid_request", "MalformedAssertion") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("invalid_request", "MalformedAssertion")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), sig


def verify_jws(key: PublicKey, alg: str, data: bytes, sig: bytes) -> bool:
    """Check a JOSE PS*/ES* signature; the key must be of the algorithm's family and curve."""
    hash_cls, curve = _ALGORITHMS[alg]
    try:
        if curve is None:
            if not isinstance(key, rsa.RSAPublicKey):
                return False
            pss = padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size)
            key.verify(sig, data, pss, hash_cls())
            return True
        if not (isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve)):
            return False
        size = (key.curve.key_size + 7) // 8
        if len(sig) != 2 * size:  # JOSE sends raw r||s, not DER
            return False
        der = encode_dss_signature(int.from_bytes(sig[:size], "big"),
                                   int.from_bytes(sig[size:], "big"))
        key.verify(der, data, ec.ECDSA(hash_cls()))
        return True
    except InvalidSignature:
        return False


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
        header, claims, data, sig = _decode_jws(assertion)
        client = self._authenticate(header, claims, data, sig, now)
        scopes = self._check_claims(claims, token_url, now)
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

    def _authenticate(self, header: dict[str, Any], claims: dict[str, Any], data: bytes,
                      sig: bytes, now: float) -> M2MClient:
        """Who is asking: ``kid`` names a mapped certificate whose key signed this, for
        the integration in ``iss``. Any doubt is ``invalid_client``."""
        if str(header.get("typ", "")).upper() != "JWT":
            raise TokenError("invalid_request", "NotAJwt")
        alg = header.get("alg")
        if alg not in _ALGORITHMS:
            raise TokenError("invalid_client", "UnknownAlgorithm")
        client = self.clients.get(str(header.get("kid")))
        if client is None:
            raise TokenError("invalid_client", "UnknownCertificate")
        if not verify_jws(client.public_key, alg, data, sig):
            raise TokenError("invalid_client", "InvalidSignature")
        if claims.get("iss") != client.client_id:
            raise TokenError("invalid_client", "IssuerNotMappedToCertificate")
        if (client.not_before is not None and now < client.not_before) or (
                client.not_after is not None and now >= client.not_after):
            raise TokenError("invalid_client", "CertificateNotValidNow")
        return client

    def _check_claims(self, claims: dict[str, Any], token_url: str,
                      now: float) -> frozenset[str]:
        aud = claims.get("aud")
        if not (aud == token_url or (isinstance(aud, list) and token_url in aud)):
            raise TokenError("invalid_grant", "WrongAudience")
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
        header = {"typ": "JWT", "alg": "HS256", "kid": "tillbridge-sim"}
        claims = {"sub": f"{client.role};{client.entity}", "aud": [client.client_id],
                  "scope": sorted(scopes), "iss": "https://system.netsuite.com",
                  "iat": int(now), "exp": int(now) + ttl_s, "jti": str(uuid.uuid4())}
        signing_input = ".".join(_b64encode(json.dumps(part, separators=(",", ":")).encode())
                                 for part in (header, claims))
        mac = hmac.new(self._signing_key, signing_input.encode("ascii"), hashlib.sha256)
        token = f"{signing_input}.{_b64encode(mac.digest())}"
        self.tokens[token] = AccessToken(client.certificate_id, scopes, now + ttl_s)
        return token


# -- both schemes on the REST endpoints ---------------------------------------------------------

class SimAuth:
    """The account's logins: a TBA header or an M2M Bearer token, counted per scheme."""

    def __init__(self, credentials: NetSuiteCredentials) -> None:
        self.realm = credentials.realm
        self.tba = TbaVerifier(credentials)
        self.m2m = M2MIssuer(self.realm)
        self.counts: Counter[str] = Counter()

    def verify(self, method: str, url: str, headers: Mapping[str, str],
               now: float | None = None) -> None:
        """Raise ``AuthFailure`` unless the request carries a valid login of either kind."""
        header = headers.get("authorization") or headers.get("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        kind = "bearer" if scheme.lower() == "bearer" else "tba"
        try:
            if kind == "bearer":
                self.m2m.check_bearer(credentials.strip(), now)
            else:
                self.tba.verify(method, url, headers, now)
        except AuthFailure:
            self.counts[f"{kind}_refused"] += 1
            raise
        self.counts[kind] += 1

    def issue_token(self, content_type: str | None, body: bytes, token_url: str,
                    ttl_s: int) -> dict[str, Any]:
        """The token endpoint: the token response, or ``TokenError`` (counted by error)."""
        try:
            answer = self.m2m.issue(parse_token_form(content_type, body), token_url, ttl_s)
        except TokenError as exc:
            self.counts[f"token_refused:{exc.error}"] += 1
            raise
        self.counts["tokens_issued"] += 1
        return answer

    def stats(self) -> dict[str, Any]:
        c = self.counts
        return {"tba": {"accepted": c["tba"], "refused": c["tba_refused"]},
                "bearer": {"accepted": c["bearer"], "refused": c["bearer_refused"]},
                "tokens": {"issued": c["tokens_issued"],
                           "refused": {k.split(":", 1)[1]: v for k, v in sorted(c.items())
                                       if k.startswith("token_refused:")}},
                "m2m_clients": len(self.m2m.clients)}

    def reset(self) -> None:
        self.tba.reset()
        self.m2m.reset()
        self.counts.clear()
