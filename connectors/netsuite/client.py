"""Async NetSuite REST client (record service + SuiteQL) over one ``httpx.AsyncClient``.

Every request waits for a slot of the worker's ``ConcurrencyLimiter`` and is then
authorized just before it is sent (TBA: fresh nonce/timestamp; OAuth 2.0: cached Bearer
token), so callers may retry a call freely. The client itself does not retry:
``retry.ReliableClient`` wraps it with the retry, idempotency and circuit-breaker policy.

Failures are raised as leaves of the ``errors`` tree: ``TimedOut`` / ``ConnectionFailed``
when no response arrived (from either transport: httpx's own or ``aio``'s, which speaks
httpx exceptions), ``NetSuiteError.from_response`` for an error status.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httpx

from tillbridge.connectors.netsuite import wire
from tillbridge.connectors.netsuite.auth import Authenticator, NetSuiteCredentials, TbaSigner
from tillbridge.connectors.netsuite.errors import (
    CONNECTION_ERROR,
    TIMEOUT,
    ConnectionFailed,
    NetSuiteError,
    Rejected,
    TimedOut,
)
from tillbridge.connectors.netsuite.governance import ConcurrencyLimiter

RequestHook = Callable[[str, str, int | None, float], None]
"""``on_request(record_type, method, status, seconds)``; status is None without a response."""

_REST = "/services/rest"
SUITEQL_MAX_LIMIT = 1000
BATCH_MAX_ITEMS = 100  # records per batch request (reference §1.9)
COLLECTION = "application/vnd.oracle.resource+json; type=collection"
IDEMPOTENCY_ERROR = "IDEMPOTENCY_ERROR"
# Error statuses a task result may carry as its stored outcome; 401 and 429 never do.
_RESULT_STATUSES = frozenset(range(400, 600)) - {401, 429}


def _noop_hook(record_type: str, method: str, status: int | None, seconds: float) -> None:
    return None


def id_from_location(location: str) -> str:
    """The new record's internal id: last path segment of the ``Location`` header."""
    return urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]


def eid(external_id: str) -> str:
    """The ``eid:`` id slot for an external id (percent-encoded for the URL path)."""
    return "eid:" + quote(external_id, safe="")


class JobRef(NamedTuple):
    """An async job as ``submit_batch`` found it."""

    location: str  # the job's path, ``/services/rest/async/v1/job/{id}``
    duplicate: bool  # the idempotency key was already used: this is the earlier job


class NetSuiteClient:
    """Thin async wrapper over NetSuite's record and query REST services."""

    def __init__(
        self,
        base_url: str,
        credentials: NetSuiteCredentials | Authenticator,
        *,
        timeout: float = 30.0,
        max_connections: int = 10,
        on_request: RequestHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: ConcurrencyLimiter | None = None,
    ) -> None:
        """``credentials``: TBA credentials, or any ``Authenticator`` (TBA or OAuth 2.0).

        ``limiter`` caps in-flight requests at this worker's share of the account limit;
        pass one shared instance to every client of a worker. Without it the client gets
        its own limiter of ``max_connections`` slots (what the pool allowed before).
        Extra connections beyond the account limit only produce 429s.
        """
        self._base = base_url.rstrip("/")
        self._auth: Authenticator = (
            TbaSigner(credentials) if isinstance(credentials, NetSuiteCredentials)
            else credentials
        )
        self.limiter = limiter or ConcurrencyLimiter(max_connections)
        max_connections = max(max_connections, self.limiter.limit)
        self._on_request = on_request or _noop_hook
        self._http = httpx.AsyncClient(
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"NetSuiteClient(base_url={self._base!r})"

    async def __aenter__(self) -> NetSuiteClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections (and the authenticator's, if it has any)."""
        await self._http.aclose()
        closer = getattr(self._auth, "aclose", None)
        if closer is not None:
            await closer()

    def invalidate_auth(self) -> None:
        """After a 401: drop cached credentials so the next request authorizes anew."""
        self._auth.invalidate()

    # -- record service ---------------------------------------------------------------

    async def create(self, record_type: str, body: dict[str, Any]) -> str:
        """POST a new record; returns its internal id parsed from ``Location`` (204)."""
        path = self._record_path(record_type)
        resp = await self._send("POST", path, record_type, json=body)
        return id_from_location(_location(resp, "POST", path, "create"))

    async def upsert(
        self,
        record_type: str,
        external_id: str,
        body: dict[str, Any],
        *,
        resolve_id: bool = True,
        replace: str | None = None,
    ) -> str | None:
        """PUT ``{type}/eid:{external_id}``: insert or update; returns the internal id.

        Whether NetSuite sends ``Location`` on an upsert is unconfirmed. When it does, the
        id comes from it for free. When it does not, and ``resolve_id`` is true, one extra
        GET ``eid:`` resolves it; that costs a round-trip and a concurrency slot, so pass
        ``resolve_id=False`` when the id is not needed (then ``None`` may be returned).
        ``replace`` (e.g. ``"item"``) replaces sublist lines instead of merging, which is
        what a replay of the same transaction needs: without it item lines are appended.
        """
        path = f"{self._record_path(record_type)}/{eid(external_id)}"
        params = {"replace": replace} if replace else None
        resp = await self._send("PUT", path, record_type, json=body, params=params)
        location = resp.headers.get("Location")
        if location:
            return id_from_location(location)
        if not resolve_id:
            return None
        record = await self.get(record_type, eid(external_id))
        return str(record["id"])

    async def transform(
        self, from_type: str, from_id: str, to_type: str, body: dict[str, Any] | None = None
    ) -> str:
        """POST ``{from}/{id}/!transform/{to}``: NetSuite initialises a new record linked to
        the source (``createdFrom``) and ``body`` overrides fields; sublist lines merge by
        ``orderLine``/``line`` (a line with quantity 0 or ``itemreceive: false`` is left out).
        Returns the new record's id from ``Location`` (204)."""
        path = f"{self._record_path(from_type)}/{from_id}/!transform/{to_type}"
        resp = await self._send("POST", path, to_type, json=body or {})
        return id_from_location(_location(resp, "POST", path, "transform"))

    async def get(self, record_type: str, id_or_eid: str, expand: bool = False) -> dict[str, Any]:
        """GET one record by internal id or ``eid:X``; ``expand`` inlines sublists."""
        params = {"expandSubResources": "true"} if expand else None
        resp = await self._send(
            "GET", f"{self._record_path(record_type)}/{id_or_eid}", record_type, params=params
        )
        return resp.json()

    async def patch(
        self, record_type: str, id_or_eid: str, body: dict[str, Any], *, replace: str | None = None
    ) -> None:
        """PATCH a record; omitted fields stay as they are (204)."""
        params = {"replace": replace} if replace else None
        await self._send("PATCH", f"{self._record_path(record_type)}/{id_or_eid}", record_type,
                         json=body, params=params)

    async def delete(self, record_type: str, id_or_eid: str) -> None:
        """DELETE a record (204)."""
        await self._send("DELETE", f"{self._record_path(record_type)}/{id_or_eid}", record_type)

    # -- SuiteQL ------------------------------------------------------------------------

    async def suiteql(
        self, query: str, limit: int = SUITEQL_MAX_LIMIT, params: list[Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run a SuiteQL query, following pages until ``hasMore`` is false.

        Values come back as strings; the per-row ``links`` key is dropped.
        """
        if not 1 <= limit <= SUITEQL_MAX_LIMIT:
            raise ValueError(f"limit must be 1..{SUITEQL_MAX_LIMIT}")
        body: dict[str, Any] = {"q": query}
        if params:
            body["params"] = params
        rows: list[dict[str, Any]] = []
        offset = 0
        while True:
            resp = await self._send(
                "POST", f"{_REST}/query/v1/suiteql", "suiteql", json=body,
                params={"limit": str(limit), "offset": str(offset)},
                headers={"Prefer": "transient"},
            )
            page = resp.json()
            for item in page.get("items", []):
                rows.append({k: v for k, v in item.items() if k != "links"})
            if not page.get("hasMore"):
                return rows
            offset += limit

    async def list_ids(self, record_type: str, limit: int = SUITEQL_MAX_LIMIT) -> list[str]:
        """Internal ids of every ``record_type`` record (``GET /record/v1/{type}``, paged until
        ``hasMore`` is false). The collection carries ids only; read records with ``get``
        or, for fields of many, one SuiteQL query (cheaper than a GET each)."""
        if not 1 <= limit <= SUITEQL_MAX_LIMIT:
            raise ValueError(f"limit must be 1..{SUITEQL_MAX_LIMIT}")
        ids: list[str] = []
        offset = 0
        while True:
            resp = await self._send("GET", f"{_REST}/record/v1/{record_type}", record_type,
                                    params={"limit": str(limit), "offset": str(offset)})
            page = resp.json()
            ids.extend(str(item["id"]) for item in page.get("items", []))
            if not page.get("hasMore"):
                return ids
            offset += limit

    # -- async jobs and batches ---------------------------------------------------------

    async def submit_batch(
        self,
        record_type: str,
        items: Sequence[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
        method: str = "POST",
        replace: str | None = None,
    ) -> JobRef:
        """Submit up to 100 records of one type as one async batch job (202 + ``Location``).

        ``method``: POST adds, PUT upserts (items carry ``externalId``), PATCH updates.
        With ``idempotency_key`` a repeated submission is refused with 400
        ``IDEMPOTENCY_ERROR`` naming the earlier job in ``Location``; that earlier job is
        returned (``duplicate=True``) so a resubmission after a lost answer is harmless.
        """
        if not 1 <= len(items) <= BATCH_MAX_ITEMS:
            raise ValueError(f"a batch holds 1..{BATCH_MAX_ITEMS} records, not {len(items)}")
        path = self._record_path(record_type)
        headers = {"Prefer": "respond-async", "Content-Type": COLLECTION}
        if idempotency_key is not None:
            headers["X-NetSuite-Idempotency-Key"] = idempotency_key
        params = {"replace": replace} if replace else None
        resp = await self._send(method, path, record_type, json={"items": list(items)},
                                params=params, headers=headers, accept=(400,))
        if resp.status_code == 400:
            location = resp.headers.get("Location")
            err = NetSuiteError.from_response(400, _json_or_text(resp), method=method,
                                              url_path=path)
            if err.code != IDEMPOTENCY_ERROR or not location:
                raise err
            return JobRef(_local_path(location), True)
        return JobRef(_local_path(_location(resp, method, path, "async")), False)

    async def get_json(self, path_or_url: str, record_type: str = "async") -> dict[str, Any]:
        """GET a path below this account (an async job, its task list, a task) as JSON.

        Absolute URLs from ``links``/``Location`` are reduced to their path, so requests
        never leave the configured base URL (and its signature)."""
        resp = await self._send("GET", _local_path(path_or_url), record_type)
        return resp.json()

    async def get_result(self, path_or_url: str,
                         record_type: str = "async") -> tuple[int, str | None, Any]:
        """GET an async task's ``result``: ``(status, Location, body)`` of the stored answer.

        A result *is* the response the synchronous call would have sent, so its error
        statuses are returned, not raised. Only 401 and 429 are raised: they describe this
        GET (credentials, concurrency), never a task's stored outcome."""
        resp = await self._send("GET", _local_path(path_or_url), record_type,
                                accept=_RESULT_STATUSES)
        body = _json_or_text(resp) if resp.content else None
        return resp.status_code, resp.headers.get("Location"), body

    # -- plumbing -----------------------------------------------------------------------

    @staticmethod
    def _record_path(record_type: str) -> str:
        return f"{_REST}/record/v1/{record_type}"

    async def _send(
        self,
        method: str,
        path: str,
        record_type: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        accept: Container[int] = (),
    ) -> httpx.Response:
        """One request in a limiter slot; error statuses in ``accept`` are returned."""
        # Bodies go through wire.dumps so Decimal amounts reach NetSuite exactly.
        content = None if json is None else wire.dumps(json)
        if content is not None:
            headers = {"Content-Type": "application/json", **(headers or {})}
        request = self._http.build_request(
            method, self._base + path, content=content, params=params, headers=headers
        )
        async with self.limiter.slot():
            # Authorized inside the slot: a TBA timestamp must not age while queueing.
            request.headers["Authorization"] = await self._auth.authorize(
                method, str(request.url))
            return await self._send_signed(request, method, path, record_type, accept)

    async def _send_signed(
        self, request: httpx.Request, method: str, path: str, record_type: str,
        accept: Container[int] = (),
    ) -> httpx.Response:
        started = time.perf_counter()
        try:
            resp = await self._http.send(request)
        except httpx.TimeoutException as exc:  # before TransportError: it is one too
            self._on_request(record_type, method, None, time.perf_counter() - started)
            raise TimedOut(None, TIMEOUT, detail=type(exc).__name__, method=method,
                           url_path=path) from exc
        except httpx.TransportError as exc:
            self._on_request(record_type, method, None, time.perf_counter() - started)
            raise ConnectionFailed(None, CONNECTION_ERROR, detail=type(exc).__name__,
                                   method=method, url_path=path) from exc
        self._on_request(record_type, method, resp.status_code, time.perf_counter() - started)
        if resp.status_code >= 400 and resp.status_code not in accept:
            raise NetSuiteError.from_response(resp.status_code, _json_or_text(resp),
                                              method=method, url_path=path)
        return resp


def _location(resp: httpx.Response, method: str, path: str, what: str) -> str:
    """The ``Location`` header a successful write must carry."""
    location = resp.headers.get("Location")
    if not location:
        # NetSuite answered "done" in a form we cannot use: sending it again would not
        # change the answer, so it is a rejection, not a retryable failure.
        raise Rejected(resp.status_code, "NO_LOCATION", detail=f"{what} without Location",
                       method=method, url_path=path)
    return location


def _json_or_text(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _local_path(path_or_url: str) -> str:
    """``https://host/services/rest/x?q`` -> ``/services/rest/x?q``; a path stays as it is."""
    if "://" not in path_or_url:
        return path_or_url
    parts = urlsplit(path_or_url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
