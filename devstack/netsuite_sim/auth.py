"""How the simulated account checks a REST login: TBA (OAuth 1.0a) or an OAuth 2.0 Bearer token
(the M2M side lives in ``m2m.py``).

TBA: the base string and HMAC come from oauthlib's RFC 5849 helpers. OAuth 2.0 client
credentials (M2M, reference §4.3): a JWT assertion signed with the private key of a
certificate mapped on the "M2M Setup" page buys a Bearer token at the token endpoint.
Every REST login failure is a 401 INVALID_LOGIN (Bearer ones add the ``WWW-Authenticate``
challenge of §3.3); the reason is kept for the sim's own log, like NetSuite's Login Audit
Trail, and never sent to the client. Assertions and tokens are never logged.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth1.rfc5849 import signature, utils

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials
from tillbridge.devstack.netsuite_sim.errors import AuthFailure
from tillbridge.devstack.netsuite_sim.m2m import M2MIssuer, TokenError, parse_token_form

TIMESTAMP_WINDOW_S = 300  # NetSuite: within +/- 5 minutes of server time
_REQUIRED = ("oauth_consumer_key", "oauth_token", "oauth_signature_method", "oauth_timestamp",
             "oauth_nonce", "oauth_signature")


class TbaVerifier:
    """Checks the Authorization header of one account's single integration token."""

    def __init__(self, credentials: NetSuiteCredentials) -> None:
        self._creds = credentials
        self._seen: dict[tuple[str, str, str], int] = {}  # (token, nonce, ts) -> ts
        #: the same keys in arrival order, so expiry pops from the front (a rebuild of
        #: ``_seen`` per request cost the simulator 63% of its CPU at 50 requests/s)
        self._arrivals: deque[tuple[int, tuple[str, str, str]]] = deque()

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
        self._arrivals.append((timestamp, key))

    def reset(self) -> None:
        self._seen.clear()
        self._arrivals.clear()

    def _forget_older_than(self, cutoff: float) -> None:
        """Entries older than the window can never be replayed successfully anyway. Clients'
        clocks differ by up to the window, so an old entry behind a newer one waits its turn
        (kept a little longer, never dropped early)."""
        arrivals = self._arrivals
        while arrivals and arrivals[0][0] < cutoff:
            self._seen.pop(arrivals.popleft()[1], None)


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


__all__ = ["AuthFailure", "SimAuth", "TbaVerifier", "verify_signature"]
