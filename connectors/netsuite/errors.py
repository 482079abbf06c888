"""NetSuite REST errors, parsed from the ``o:errorDetails`` envelope and classified.

The sink decides retry vs dead-letter from ``kind``; keeping that decision here means
every caller classifies a response the same way.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorKind = Literal["retryable", "auth", "already_exists", "permanent"]

_ALREADY_EXISTS = "already exists"


class NetSuiteError(Exception):
    """A failed NetSuite call: an error response, a timeout or a connection failure.

    ``status`` is ``None`` when no HTTP response arrived (timeout, connection error).
    ``code`` is the first detail's ``o:errorCode`` (e.g. ``CONCURRENCY_LIMIT_EXCEEDED``
    even though the 429 envelope's top-level code is ``USER_ERROR``).
    """

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
    ) -> NetSuiteError:
        """Build from a response status and its decoded JSON body (or raw text)."""
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

    @property
    def already_exists(self) -> bool:
        """Duplicate externalId on POST: the earlier attempt landed (USER_ERROR text match)."""
        return self.status == 400 and _ALREADY_EXISTS in self.detail.lower()

    @property
    def retryable(self) -> bool:
        """Worth retrying later: 429, 5xx, timeouts and connection failures."""
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def auth(self) -> bool:
        """Credentials or permissions problem (401/403)."""
        return self.status in (401, 403)

    @property
    def permanent(self) -> bool:
        """Any other 4xx: retrying the same request will fail the same way."""
        return not (self.retryable or self.auth or self.already_exists)

    @property
    def kind(self) -> ErrorKind:
        """One-word classification for routing and metrics labels."""
        if self.retryable:
            return "retryable"
        if self.auth:
            return "auth"
        if self.already_exists:
            return "already_exists"
        return "permanent"


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
