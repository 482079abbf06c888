"""NetSuite REST errors as a class tree: the class *is* the classification.

A call can fail in a handful of ways and each way has one class, so callers dispatch with
``except Throttled:`` / ``isinstance`` and never look at a status code again::

    Exception
     ├── NetSuiteUnavailable              not a NetSuiteError: hold the event, never
     │                                    dead-letter (breaker open, throttle budget spent)
     └── NetSuiteError                    a failed call: status, code, o:errorDetails
          ├── RetryableError              the same request may work later
          │    ├── Throttled              429                           throttled
          │    └── AmbiguousFailure       may have landed (writes: look up first)
          │         ├── ServerError       5xx                           server_error
          │         ├── TimedOut          no answer in time             timeout
          │         └── ConnectionFailed  no connection                 connection
          ├── AuthFailed                  401, 403                      auth
          ├── AlreadyExists               400 duplicate externalId      already_exists
          └── Rejected                    any other status              permanent
               └── NotFound               404                           permanent

``NetSuiteUnavailable`` is deliberately outside ``NetSuiteError``: sinks dead-letter on
``except NetSuiteError``, and an outage must never be caught there by accident.

Every concrete class carries two class attributes, so nothing re-derives them per call:

- ``label`` (last column): a stable short name for metrics labels
  (``tillbridge_netsuite_retries_total{reason}``) and ``on_retry`` hooks. Public contract:
  the strings do not change.
- ``kind``: the coarse four-way verdict older callers route on: "retryable" for every
  ``RetryableError``, else the label ("auth", "already_exists", "permanent").

An ``AmbiguousFailure`` counts against the event's attempts and the circuit breaker; a
``Throttled`` costs only time and leaves the breaker alone (NetSuite is up, just busy).

``error_class`` is the one place a status becomes a class. ``from_response`` and the
legacy call ``NetSuiteError(status, code, ...)`` go through it: constructing a group
(``NetSuiteError``, ``RetryableError``, ``AmbiguousFailure``) yields the leaf its status
names, so every instance is a leaf with a meaningful ``label``. The client raises
``TimedOut`` / ``ConnectionFailed`` by name, where it knows no answer came.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Self

ErrorKind = Literal["retryable", "auth", "already_exists", "permanent"]
Label = Literal["throttled", "server_error", "timeout", "connection", "auth",
                "already_exists", "permanent"]

TIMEOUT = "TIMEOUT"
"""``code`` of a request that got no answer in time (``status`` is ``None``)."""
CONNECTION_ERROR = "CONNECTION_ERROR"
"""``code`` of a request whose connection failed or dropped (``status`` is ``None``)."""

_ALREADY_EXISTS = "already exists"


class NetSuiteError(Exception):
    """A failed NetSuite call: an error response, a timeout or a connection failure.

    ``status`` is ``None`` when no HTTP response arrived (timeout, connection error).
    ``code`` is the first detail's ``o:errorCode`` (e.g. ``CONCURRENCY_LIMIT_EXCEEDED``
    even though the 429 envelope's top-level code is ``USER_ERROR``).
    """

    kind: ClassVar[ErrorKind]
    label: ClassVar[Label]
    _group: ClassVar[bool] = True  # abstract: construction picks the leaf by status

    def __init_subclass__(cls, *, group: bool = False, **kwargs: Any) -> None:
        """A subclass is a leaf unless declared ``group=True``; a leaf must be routable."""
        super().__init_subclass__(**kwargs)
        cls._group = group
        if not group and not (hasattr(cls, "kind") and hasattr(cls, "label")):
            raise TypeError(f"{cls.__name__} needs class attributes kind and label")

    def __new__(
        cls,
        status: int | None,
        code: str,
        title: str = "",
        detail: str = "",
        error_path: str | None = None,
        details: list[dict[str, Any]] | None = None,
        *,
        method: str = "",
        url_path: str = "",
    ) -> Self:
        """Constructing a group returns the leaf ``error_class`` names for the status, so
        ``NetSuiteError(429, ...)`` is a ``Throttled`` as it always behaved like one."""
        if not cls._group:
            return super().__new__(cls)
        leaf = error_class(status, code, detail)
        if not issubclass(leaf, cls):
            raise TypeError(f"status {status} makes a {leaf.__name__}, outside {cls.__name__}")
        return super().__new__(leaf)

    def __init__(
        self,
        status: int | None,
        code: str,
        title: str = "",
        detail: str = "",
        error_path: str | None = None,
        details: list[dict[str, Any]] | None = None,
        *,
        method: str = "",
        url_path: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.error_path = error_path
        self.details = details or []
        self.method = method
        self.url_path = url_path
        where = f" [{method} {url_path}]" if method else ""
        path = f" at {error_path}" if error_path else ""
        super().__init__(f"{status} {code}{path}: {detail}{where}")

    @classmethod
    def from_response(
        cls, status: int, body: Any, *, method: str = "", url_path: str = ""
    ) -> Self:
        """Build the right leaf from a response status and its decoded JSON body (or text)."""
        if not isinstance(body, dict):
            text = body if isinstance(body, str) else ""
            return cls(status, f"HTTP_{status}", detail=text[:500], method=method,
                       url_path=url_path)
        details = body.get("o:errorDetails")
        details = details if isinstance(details, list) else []
        first = details[0] if details and isinstance(details[0], dict) else {}
        code = first.get("o:errorCode") or body.get("o:errorCode") or f"HTTP_{status}"
        detail = first.get("detail") or body.get("detail") or ""
        return cls(
            status,
            str(code),
            title=str(body.get("title", "")),
            detail=str(detail),
            error_path=first.get("o:errorPath"),
            details=details,
            method=method,
            url_path=url_path,
        )

    # Shorthands kept for callers written before the tree; new code uses isinstance.

    @property
    def retryable(self) -> bool:
        """``isinstance(self, RetryableError)``."""
        return isinstance(self, RetryableError)

    @property
    def auth(self) -> bool:
        """``isinstance(self, AuthFailed)``."""
        return isinstance(self, AuthFailed)

    @property
    def already_exists(self) -> bool:
        """``isinstance(self, AlreadyExists)``."""
        return isinstance(self, AlreadyExists)

    @property
    def permanent(self) -> bool:
        """``isinstance(self, Rejected)``."""
        return isinstance(self, Rejected)


class RetryableError(NetSuiteError, group=True):
    """Nothing is known to be wrong with the request: sending it again later may work."""

    kind = "retryable"


class Throttled(RetryableError):
    """429: NetSuite is up but over the account's concurrency limit. Costs time, never
    one of the event's attempts, and says nothing about NetSuite's health."""

    label = "throttled"


class AmbiguousFailure(RetryableError, group=True):
    """No usable answer: the request may or may not have been committed. A write is
    looked up by externalId before it is sent again; each one counts as a failure for
    the event's attempts and for the circuit breaker."""


class ServerError(AmbiguousFailure):
    """5xx: NetSuite failed while handling the request (it may have committed first)."""

    label = "server_error"


class TimedOut(AmbiguousFailure):
    """No answer within the client's timeout (``code`` ``TIMEOUT``)."""

    label = "timeout"


class ConnectionFailed(AmbiguousFailure):
    """The connection could not be made or dropped mid-request (``CONNECTION_ERROR``)."""

    label = "connection"


class AuthFailed(NetSuiteError):
    """401/403: credentials or permissions. A 401 is re-authorized once (stale TBA nonce,
    expired OAuth 2.0 token); beyond that no record is at fault and none should be
    dead-lettered as bad data."""

    kind = "auth"
    label = "auth"


class AlreadyExists(NetSuiteError):
    """400 naming a duplicate externalId on create: an earlier attempt landed, so the
    writer looks the record up instead of failing."""

    kind = "already_exists"
    label = "already_exists"


class Rejected(NetSuiteError):
    """Any other answer: the request is wrong and will fail the same way every time.
    ``details`` holds ``o:errorDetails`` verbatim for the dead letter."""

    kind = "permanent"
    label = "permanent"


class NotFound(Rejected):
    """404: no record by that id. A look-up by externalId reads it as "not there"."""


def error_class(status: int | None, code: str = "", detail: str = "") -> type[NetSuiteError]:
    """The leaf class for a failed call; the only place statuses are interpreted.

    ``code`` matters only without a status (``TIMEOUT`` vs anything else: a connection
    failure); ``detail`` only for a 400, whose "already exists" wording marks a duplicate.
    """
    if status is None:
        return TimedOut if code == TIMEOUT else ConnectionFailed
    if status == 429:
        return Throttled
    if status >= 500:
        return ServerError
    if status in (401, 403):
        return AuthFailed
    if status == 400 and _ALREADY_EXISTS in detail.lower():
        return AlreadyExists
    if status == 404:
        return NotFound
    return Rejected


class NetSuiteUnavailable(Exception):
    """NetSuite cannot take requests right now (circuit open, throttling budget spent).

    Deliberately *not* a ``NetSuiteError``: nothing is wrong with the event, so a sink that
    dead-letters on ``except NetSuiteError`` must not catch it by accident. The caller
    should keep the event, pause (``retry_after`` seconds is a hint) and try again.
    """

    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        self.reason = reason
        self.retry_after = max(0.0, retry_after)
        super().__init__(f"NetSuite unavailable ({reason}); retry in {self.retry_after:.1f}s")
