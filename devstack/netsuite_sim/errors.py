"""NetSuite's error envelope, so clients are tested against the real shape.

Shape: ``{type, title, status, o:errorDetails: [{detail, o:errorCode, o:errorPath?}]}``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

_RFC = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html"
_TYPES = {400: "#sec10.4.1", 401: "#sec10.4.2", 403: "#sec10.4.4", 404: "#sec10.4.5",
          405: "#sec10.4.6", 429: "#sec10.4.1", 500: "#sec10.5.1", 503: "#sec10.5.4"}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 429: "Bad Request", 500: "Internal Server Error",
           503: "Service Unavailable"}
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
        top_level_code: str | None = None, *, title: str | None = None,
        type_suffix: str | None = None, headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.path = path
        self.top_level_code = top_level_code
        self.title = title
        self.type_suffix = type_suffix
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON envelope."""
        item: dict[str, Any] = {"detail": self.detail, "o:errorCode": self.code}
        if self.path is not None:
            item["o:errorPath"] = self.path
        body: dict[str, Any] = {
            "type": _RFC + (self.type_suffix or _TYPES.get(self.status, "")),
            "title": self.title or _TITLES.get(self.status, "Error"),
            "status": self.status,
        }
        if self.top_level_code:
            body["o:errorCode"] = self.top_level_code
        body["o:errorDetails"] = [item]
        return body

    def response(self) -> JSONResponse:
        """A Starlette response carrying the envelope."""
        return JSONResponse(self.body(), status_code=self.status, media_type=ERROR_MEDIA_TYPE,
                            headers=self.headers)


def invalid_login() -> SimError:
    """Every TBA failure looks the same to the caller; the reason is only in the audit log."""
    return SimError(401, "INVALID_LOGIN", INVALID_LOGIN_DETAIL)


def malformed(headers: dict[str, str] | None = None) -> SimError:
    return SimError(400, "INVALID_REQUEST", "The request could not be understood by the "
                    "server due to malformed syntax.", headers=headers)


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


def required(label: str, path: str | None = None) -> SimError:
    """NetSuite's wording for a missing mandatory field (label as shown in the UI)."""
    return SimError(400, "USER_ERROR", f"Please enter value(s) for: {label}", path)


def no_lines(sublist: str) -> SimError:
    return SimError(400, "USER_ERROR", "You must enter at least one line item for this "
                    "transaction.", sublist)


def user_error(detail: str, path: str | None = None) -> SimError:
    """A business-rule refusal; NetSuite prefixes these with the resource phrase."""
    return SimError(400, "USER_ERROR", f"Error while accessing a resource. {detail}", path)


def idempotency_conflict(job_location: str) -> SimError:
    # Oracle's sample really is status 400 with the 409 title and type (rfc2616 10.4.10).
    return SimError(
        400, "IDEMPOTENCY_ERROR",
        "A request with the same idempotency key is already submitted. See the \"Location\" "
        "header for a link to the previously submitted job",
        title="Conflict", type_suffix="#sec10.4.10", headers={"Location": job_location},
    )


def service_unavailable(retry_after_s: int) -> SimError:
    # The body NetSuite sends during an outage or maintenance window is not documented; the
    # usual envelope with a 503 is the most likely shape and what clients must cope with.
    return SimError(503, "SERVICE_UNAVAILABLE",
                    "The service is temporarily unavailable. Try again later.",
                    headers={"Retry-After": str(max(1, retry_after_s))})


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
            return malformed({"WWW-Authenticate": challenge})
        err.headers = {"WWW-Authenticate": challenge
                       + ', error_description="Invalid login attempt."'}
        return err
