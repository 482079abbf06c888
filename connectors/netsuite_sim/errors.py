"""NetSuite's error envelope, so clients are tested against the real shape.

Shape: ``{type, title, status, o:errorDetails: [{detail, o:errorCode, o:errorPath?}]}``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

_RFC = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
_TYPES = {400: "#sec10.4.1", 401: "#sec10.4.2", 403: "#sec10.4.4", 404: "#sec10.4.5",
          405: "#sec10.4.6", 429: "#sec10.4.1", 500: "#sec10.5.1"}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 429: "Bad Request", 500: "Internal Server Error"}
ERROR_MEDIA_TYPE = "application/vnd.oracle.resource+json; type=error"

INVALID_LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI "
    "at Setup > Users/Roles > User Management > View Login Audit Trail."
)
ALREADY_EXISTS_DETAIL = "Error while accessing a resource. This entity already exists."


class SimError(Exception):
    """Raised inside handlers; rendered as the NetSuite envelope by the app."""

    def __init__(
        self, status: int, code: str, detail: str, path: str | None = None,
        top_level_code: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path
        self.top_level_code = top_level_code

    def body(self) -> dict[str, Any]:
        """The JSON envelope."""
        item: dict[str, Any] = {"detail": self.detail, "o:errorCode": self.code}
        if self.path is not None:
            item["o:errorPath"] = self.path
        body: dict[str, Any] = {
            "type": _RFC + _TYPES.get(self.status, ""),
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
        }
        if self.top_level_code:
            body["o:errorCode"] = self.top_level_code
        body["o:errorDetails"] = [item]
        return body

    def response(self) -> JSONResponse:
        """A Starlette response carrying the envelope."""
        return JSONResponse(self.body(), status_code=self.status, media_type=ERROR_MEDIA_TYPE)


def invalid_login() -> SimError:
    """Every TBA failure looks the same to the caller; the reason is only in the audit log."""
    return SimError(401, "INVALID_LOGIN", INVALID_LOGIN_DETAIL)


def not_found() -> SimError:
    return SimError(404, "NONEXISTENT_ID", "Record does not exist.")


def concurrency_exceeded() -> SimError:
    # Oracle's sample: status 429, title "Bad Request", top-level o:errorCode USER_ERROR.
    return SimError(429, "CONCURRENCY_LIMIT_EXCEEDED",
                    "Concurrent request limit exceeded. Request blocked.",
                    top_level_code="USER_ERROR")


def invalid_value(value: Any, field: str, path: str) -> SimError:
    return SimError(
        400, "INVALID_CONTENT",
        "Error while accessing a resource. You have entered an Invalid Field Value "
        f"{value} for the following field: {field}",
        path,
    )


def unexpected(error_id: str) -> SimError:
    return SimError(500, "UNEXPECTED_ERROR", f"An unexpected error occurred. Error ID: {error_id}")
