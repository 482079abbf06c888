"""Starlette app: a fake NetSuite account speaking the SuiteTalk REST API.

Every ``/services/rest`` request goes through ``_api``: concurrency gate -> faults ->
TBA check -> handler, and any ``SimError`` becomes NetSuite's error envelope.
``/__sim/*`` are admin endpoints for tests and benchmarks (no auth, not NetSuite).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials

from . import suiteql
from .auth import AuthFailure, TbaVerifier
from .errors import ALREADY_EXISTS_DETAIL, SimError, invalid_login, not_found, unexpected
from .governance import ConcurrencyGate, Fault, FixedLatency, SimConfig
from .records import RecordType, lookup_type, merge, number_lines, render, render_sublist
from .store import Record, Store, load_seed, now_utc

log = logging.getLogger(__name__)

SINGULAR = "application/vnd.oracle.resource+json; type=singular"
COLLECTION = "application/vnd.oracle.resource+json; type=collection"
MALFORMED = "The request could not be understood by the server due to malformed syntax."
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class SimState:
    """Everything one simulated account holds; ``reset`` returns it to its start."""

    seed: dict[str, Any]
    credentials: NetSuiteCredentials
    initial_config: SimConfig
    config: SimConfig = field(init=False)
    store: Store = field(init=False)
    gate: ConcurrencyGate = field(init=False)
    verifier: TbaVerifier = field(init=False)
    faults: list[Fault] = field(init=False)

    def __post_init__(self) -> None:
        self.config = SimConfig(**self.initial_config.as_dict())
        self.store = Store(self.seed)
        self.gate = ConcurrencyGate(self.config)
        self.verifier = TbaVerifier(self.credentials)
        self.faults = [FixedLatency(self.config)]

    def reset(self) -> None:
        """Reload the seed, forget records/stats/nonces and restore the start-up config."""
        self.config.update(self.initial_config.as_dict())
        self.store = Store(self.seed)
        self.verifier.reset()
        self.gate.peak = 0


# -- request helpers -----------------------------------------------------------------------

def _sim(request: Request) -> SimState:
    return request.app.state.sim


def _origin(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def _signed_url(request: Request) -> str:
    """The URL as the client sent it (raw path keeps its percent-encoding), for the base string."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    url = _origin(request) + raw.decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{url}?{query}" if query else url


def _rest_base(request: Request) -> str:
    return _origin(request) + "/services/rest"


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SimError(400, "INVALID_REQUEST", MALFORMED)
    return body


def _replace(request: Request) -> set[str]:
    return {p.strip() for p in request.query_params.get("replace", "").split(",") if p.strip()}


def _no_content(location: str | None = None) -> Response:
    headers = {"Location": location} if location else None
    return Response(status_code=204, headers=headers)


def _find(state: SimState, rt: RecordType, slot: str) -> Record:
    if slot.lower().startswith("eid:"):
        record = state.store.by_external_id(rt.group, unquote(slot[4:]))
        if record is None or record.type != rt.name:
            raise not_found()
        return record
    record = state.store.get(rt.group, rt.name, slot)
    if record is None:
        raise not_found()
    return record


def _api(handler: Handler) -> Handler:
    """Wrap a NetSuite endpoint with governance, faults, auth and error rendering."""

    async def endpoint(request: Request) -> Response:
        state = _sim(request)
        if not state.gate.try_acquire():
            response = state.gate.rejection()
        else:
            try:
                response = await _guarded(state, request, handler)
            finally:
                state.gate.release()
        state.store.stats.status_codes[response.status_code] += 1
        return response

    return endpoint


async def _guarded(state: SimState, request: Request, handler: Handler) -> Response:
    try:
        for fault in state.faults:
            early = await fault.before(request)
            if early is not None:
                return early
        try:
            state.verifier.verify(request.method, _signed_url(request), request.headers)
        except AuthFailure as exc:
            log.info("sim login audit: %s", exc)
            raise invalid_login() from None
        response = await handler(request)
        for fault in state.faults:
            response = await fault.after(request, response)
        return response
    except SimError as exc:
        return exc.response()
    except Exception:
        error_id = secrets.token_hex(10)
        log.exception("sim unexpected error %s", error_id)
        return unexpected(error_id).response()


# -- record service ------------------------------------------------------------------------

def _store_new(state: SimState, rt: RecordType, body: dict[str, Any]) -> Record:
    external_id = body.get("externalId")
    if external_id is not None and state.store.by_external_id(rt.group, str(external_id)):
        raise SimError(400, "USER_ERROR", ALREADY_EXISTS_DETAIL)
    fields = rt.validate(state.store, body)
    number_lines(fields)
    record_id = state.store.new_id(rt.group)
    if rt.group == "transaction":
        fields.setdefault("tranId", record_id)
    record = Record(rt.name, record_id, fields)
    state.store.put(record, rt.group)
    state.store.stats.created[rt.name] += 1
    return record


def _store_update(state: SimState, rt: RecordType, record: Record, body: dict[str, Any],
                  replace: set[str]) -> None:
    new_eid = body.get("externalId")
    if new_eid is not None:
        other = state.store.by_external_id(rt.group, str(new_eid))
        if other is not None and other.id != record.id:
            raise SimError(400, "USER_ERROR", ALREADY_EXISTS_DETAIL)
    fields = rt.validate(state.store, merge(record.fields, body, replace))
    number_lines(fields)
    state.store.put(Record(rt.name, record.id, fields, record.created, now_utc()), rt.group)
    state.store.stats.updated[rt.name] += 1


async def create(request: Request) -> Response:
    state = _sim(request)
    rt = lookup_type(request.path_params["type"])
    record = _store_new(state, rt, await _json_body(request))
    return _no_content(f"{_rest_base(request)}/record/v1/{rt.name}/{record.id}")


async def read(request: Request) -> Response:
    state = _sim(request)
    rt = lookup_type(request.path_params["type"])
    record = _find(state, rt, request.path_params["id"])
    expand = request.query_params.get("expandSubResources", "").lower() == "true"
    body = render(state.store, rt, record, _rest_base(request), expand)
    return JSONResponse(body, media_type=SINGULAR)


async def read_sublist(request: Request) -> Response:
    state = _sim(request)
    rt = lookup_type(request.path_params["type"])
    record = _find(state, rt, request.path_params["id"])
    value = record.fields.get(request.path_params["sublist"])
    if not (isinstance(value, dict) and isinstance(value.get("items"), list)):
        raise not_found()
    href = f"{_rest_base(request)}/record/v1/{rt.name}/{record.id}/{request.path_params['sublist']}"
    return JSONResponse(render_sublist(state.store, rt, value["items"], href),
                        media_type=COLLECTION)


async def update(request: Request) -> Response:
    state = _sim(request)
    rt = lookup_type(request.path_params["type"])
    record = _find(state, rt, request.path_params["id"])
    _store_update(state, rt, record, await _json_body(request), _replace(request))
    return _no_content(f"{_rest_base(request)}/record/v1/{rt.name}/{record.id}")


async def upsert(request: Request) -> Response:
    """PUT ``{type}/eid:X``: insert or update (merge rules as PATCH), always 204.

    Whether real NetSuite sends ``Location`` on an upsert is unconfirmed (reference open
    point 1; only a bare 204 is documented). The sim omits it by default so clients are
    forced to cope (``upsert_location`` in ``/__sim/config`` turns it on).
    """
    state = _sim(request)
    rt = lookup_type(request.path_params["type"])
    slot = request.path_params["id"]
    if not slot.lower().startswith("eid:") or len(slot) <= 4:
        raise SimError(400, "INVALID_REQUEST", MALFORMED)
    external_id = unquote(slot[4:])
    body = await _json_body(request)
    existing = state.store.by_external_id(rt.group, external_id)
    if existing is not None and existing.type != rt.name:
        raise SimError(400, "USER_ERROR", ALREADY_EXISTS_DETAIL)
    if existing is None:
        body["externalId"] = external_id
        record = _store_new(state, rt, body)
    else:
        body["externalId"] = existing.external_id
        _store_update(state, rt, existing, body, _replace(request))
        record = existing
    location = f"{_rest_base(request)}/record/v1/{rt.name}/{record.id}"
    return _no_content(location if state.config.upsert_location else None)


async def delete(request: Request) -> Response:
    state = _sim(request)
    rt = lookup_type(request.path_params["type"])
    record = _find(state, rt, request.path_params["id"])
    state.store.delete(rt.group, record)
    state.store.stats.deleted[rt.name] += 1
    return _no_content()


async def record_dispatch(request: Request) -> Response:
    method = request.method
    if method == "GET":
        return await read(request)
    if method == "PATCH":
        return await update(request)
    if method == "PUT":
        return await upsert(request)
    return await delete(request)


# -- SuiteQL ------------------------------------------------------------------------------

def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SimError(400, "INVALID_PARAMETER", f"Invalid value for parameter {name}.") from None


async def run_suiteql(request: Request) -> Response:
    """POST /query/v1/suiteql: paged, string-valued rows with empty ``links``."""
    state = _sim(request)
    # Oracle documents Prefer: transient as required; the sim enforces it.
    if "transient" not in request.headers.get("prefer", "").lower():
        raise SimError(400, "INVALID_REQUEST", "The Prefer header must be set to 'transient'.")
    limit = _int_param(request, "limit", 1000)
    offset = _int_param(request, "offset", 0)
    if not 1 <= limit <= 1000 or offset < 0 or offset % limit:
        raise SimError(400, "INVALID_PARAMETER",
                       "Invalid paging: limit must be 1..1000 and offset a multiple of limit.")
    body = await _json_body(request)
    query = body.get("q")
    if not isinstance(query, str):
        raise SimError(400, "INVALID_REQUEST", MALFORMED)
    params = body.get("params")
    rows = suiteql.run(query, params if isinstance(params, list) else None)(state.store)
    page = rows[offset:offset + limit]
    total = len(rows)
    has_more = offset + limit < total
    href = f"{_rest_base(request)}/query/v1/suiteql"
    last = max(0, (total - 1) // limit * limit)
    links = [{"rel": "first", "href": f"{href}?limit={limit}&offset=0"}]
    if offset > 0:
        links.append({"rel": "prev", "href": f"{href}?limit={limit}&offset={offset - limit}"})
    if has_more:
        links.append({"rel": "next", "href": f"{href}?limit={limit}&offset={offset + limit}"})
    links.append({"rel": "last", "href": f"{href}?limit={limit}&offset={last}"})
    links.append({"rel": "self", "href": f"{href}?limit={limit}&offset={offset}"})
    return JSONResponse({
        "links": links, "count": len(page), "hasMore": has_more, "offset": offset,
        "totalResults": total, "items": [{"links": [], **row} for row in page],
    })


async def unknown_path(request: Request) -> Response:
    raise SimError(404, "INVALID_REQUEST", f"Resource not found: {request.url.path}")


# -- admin (/__sim) -----------------------------------------------------------------------

async def admin_stats(request: Request) -> Response:
    state = _sim(request)
    stats = state.store.stats
    held = state.store.held()
    types = sorted(set(held) | set(stats.created) | set(stats.updated) | set(stats.deleted))
    return JSONResponse({
        "records": {t: {"created": stats.created[t], "updated": stats.updated[t],
                        "deleted": stats.deleted[t], "held": held[t]} for t in types},
        "requests": {"total": sum(stats.status_codes.values()),
                     "by_status": {str(k): v for k, v in sorted(stats.status_codes.items())}},
        "concurrency": {"in_flight": state.gate.in_flight, "peak": state.gate.peak,
                        "limit": state.config.concurrency_limit},
        "config": state.config.as_dict(),
    })


async def admin_item(request: Request) -> Response:
    """Add an item by SKU or re-activate it; optional JSON body overrides item columns."""
    state = _sim(request)
    raw = await request.body()
    extra = json.loads(raw) if raw else {}
    item = state.store.set_item(request.path_params["sku"], active=True)
    if isinstance(extra, dict):
        item.update({k: v for k, v in extra.items() if k not in ("id", "itemid")})
    return JSONResponse(item)


async def admin_item_deactivate(request: Request) -> Response:
    state = _sim(request)
    sku = request.path_params["sku"].lower()
    if not any(str(i["itemid"]).lower() == sku for i in state.store.items.values()):
        return JSONResponse({"error": "unknown sku"}, status_code=404)
    return JSONResponse(state.store.set_item(sku, active=False))


async def admin_config(request: Request) -> Response:
    state = _sim(request)
    try:
        state.config.update(await request.json())
    except (KeyError, ValueError, TypeError) as exc:
        return JSONResponse({"error": f"bad config: {exc}"}, status_code=400)
    return JSONResponse(state.config.as_dict())


async def admin_reset(request: Request) -> Response:
    _sim(request).reset()
    return JSONResponse({"reset": True})


# -- factory ------------------------------------------------------------------------------

def create_app(
    seed_path: str | Path | None = None,
    credentials: NetSuiteCredentials | None = None,
    concurrency_limit: int = 15,
    latency_ms: float = 0,
    upsert_location: bool = False,
) -> Starlette:
    """Build a simulated account seeded from ``seed_path`` (default: packaged sandbox.json)."""
    state = SimState(
        load_seed(seed_path),
        credentials or NetSuiteCredentials.dev(),
        SimConfig(concurrency_limit, float(latency_ms), upsert_location),
    )
    record = "/services/rest/record/v1/{type}"
    routes = [
        Route(record, _api(create), methods=["POST"]),
        Route(record + "/{id}", _api(record_dispatch),
              methods=["GET", "PATCH", "PUT", "DELETE"]),
        Route(record + "/{id}/{sublist}", _api(read_sublist), methods=["GET"]),
        Route("/services/rest/query/v1/suiteql", _api(run_suiteql), methods=["POST"]),
        Route("/services/rest/{path:path}", _api(unknown_path),
              methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route("/__sim/stats", admin_stats, methods=["GET"]),
        Route("/__sim/items/{sku}", admin_item, methods=["POST"]),
        Route("/__sim/items/{sku}/deactivate", admin_item_deactivate, methods=["POST"]),
        Route("/__sim/config", admin_config, methods=["POST"]),
        Route("/__sim/reset", admin_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = state
    return app
