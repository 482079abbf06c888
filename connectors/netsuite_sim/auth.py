"""TBA (OAuth 1.0a HMAC-SHA256) verification, the way NetSuite checks a REST request.

The base string and HMAC come from oauthlib's RFC 5849 helpers. Every failure is a bare
401 INVALID_LOGIN; the reason is kept for the sim's own log, like NetSuite's audit trail.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature, utils

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials

TIMESTAMP_WINDOW_S = 300  # NetSuite: within +/- 5 minutes of server time
_REQUIRED = ("oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_timestamp",
             "oauth_nonce", "oauth_signature")


class AuthFailure(Exception):
    """Why a login failed (audit-trail reason such as ``NonceUsed``); never sent to clients."""


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
