"""NetSuite Token-Based Authentication (OAuth 1.0a, HMAC-SHA256).

Signing is delegated to oauthlib so the RFC 5849 base string and percent-encoding
are not re-implemented here. Secrets are kept out of ``repr`` so a credentials
object can be logged or end up in a traceback without leaking anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol, Self

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256, SIGNATURE_TYPE_AUTH_HEADER, Client

# Dev-only defaults: they let the simulator and the client agree out of the box.
# They are not secrets of any real account.
DEV_ACCOUNT_ID = "TSTDRV1234567_SB1"
DEV_CONSUMER_KEY = "dev-consumer-key-tillbridge-sim"
DEV_CONSUMER_SECRET = "dev-consumer-secret-tillbridge-sim"  # noqa: S105 - dev default
DEV_TOKEN_ID = "dev-token-id-tillbridge-sim"  # noqa: S105 - dev default
DEV_TOKEN_SECRET = "dev-token-secret-tillbridge-sim"  # noqa: S105 - dev default


@dataclass(frozen=True)
class NetSuiteCredentials:
    """TBA credentials of one integration + access token on one account."""

    account_id: str
    consumer_key: str
    consumer_secret: str = field(repr=False)
    token_id: str
    token_secret: str = field(repr=False)

    @property
    def realm(self) -> str:
        """OAuth realm: the account id, upper case with underscore (``123456_SB1``)."""
        return self.account_id.upper().replace("-", "_")

    @classmethod
    def dev(cls) -> Self:
        """The development credentials the simulator accepts by default."""
        return cls(
            DEV_ACCOUNT_ID, DEV_CONSUMER_KEY, DEV_CONSUMER_SECRET, DEV_TOKEN_ID, DEV_TOKEN_SECRET
        )

    @classmethod
    def from_env(cls) -> Self:
        """Read ``NETSUITE_*`` variables, falling back to the dev defaults."""
        dev = cls.dev()
        env = os.environ
        return cls(
            account_id=env.get("NETSUITE_ACCOUNT_ID", dev.account_id),
            consumer_key=env.get("NETSUITE_CONSUMER_KEY", dev.consumer_key),
            consumer_secret=env.get("NETSUITE_CONSUMER_SECRET", dev.consumer_secret),
            token_id=env.get("NETSUITE_TOKEN_ID", dev.token_id),
            token_secret=env.get("NETSUITE_TOKEN_SECRET", dev.token_secret),
        )


class Authenticator(Protocol):
    """What ``NetSuiteClient`` needs from an auth scheme (TBA or OAuth 2.0 M2M).

    ``authorize`` is called at send time, once per HTTP attempt, and returns the whole
    ``Authorization`` header value. ``invalidate`` is called after a 401 so the next
    ``authorize`` does not reuse whatever was cached. Implementations keep secrets out
    of ``repr`` and of exception messages.
    """

    async def authorize(self, method: str, url: str) -> str: ...

    def invalidate(self) -> None: ...


def default_base_url(account_id: str) -> str:
    """Account-specific REST host (``1234567_SB1`` -> ``https://1234567-sb1...``).

    Oracle advises reading the real URL from Company URLs; this is only a fallback.
    """
    host = account_id.lower().replace("_", "-")
    return f"https://{host}.suitetalk.api.netsuite.com"


class TbaSigner:
    """Produces a fresh ``Authorization`` header per request (new nonce + timestamp).

    NetSuite rejects a reused nonce/timestamp pair, so retries must re-sign; callers
    should therefore sign at send time, never cache the header.
    """

    def __init__(self, credentials: NetSuiteCredentials) -> None:
        self._credentials = credentials

    def __repr__(self) -> str:
        return f"TbaSigner(account_id={self._credentials.account_id!r})"

    def authorization(
        self, method: str, url: str, *, nonce: str | None = None, timestamp: str | None = None
    ) -> str:
        """Return the ``Authorization`` header value for ``method url``.

        ``url`` must include the query string: query parameters are signed.
        The JSON body is not part of the base string (RFC 5849 signs form bodies only).
        """
        c = self._credentials
        client = Client(
            c.consumer_key,
            client_secret=c.consumer_secret,
            resource_owner_key=c.token_id,
            resource_owner_secret=c.token_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
            realm=c.realm,
            nonce=nonce,
            timestamp=timestamp,
        )
        _, headers, _ = client.sign(url, http_method=method.upper())
        return headers["Authorization"]

    async def authorize(self, method: str, url: str) -> str:
        """``Authenticator`` entry point: a fresh nonce and timestamp on every call."""
        return self.authorization(method, url)

    def invalidate(self) -> None:
        """Nothing is cached: every ``authorize`` already signs anew."""
        return None
