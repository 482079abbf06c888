"""NetSuite REST endpoints: record service (single, transform, batch), SuiteQL, async jobs.

Each record endpoint parses the request into ``Operation``s and then either runs the one
operation now or, with ``Prefer: respond-async``, submits them as a job (202). Parsing
errors (bad JSON, unknown record type, too large a batch) are answered synchronously.
"""

from __future__ import annotations

import json
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tillbridge.devstack.netsuite_sim import jobs, operations, suiteql
from tillbridge.devstack.netsuite_sim.catalog import lookup_type
from tillbridge.devstack.netsuite_sim.errors import SimError, malformed
from tillbridge.devstack.netsuite_sim.operations import Operation
from tillbridge.devstack.netsuite_sim.records import RecordType, render_sublist

if TYPE_CHECKING:
    from tillbridge.devstack.netsuite_sim.state import SimState

COLLECTION = "application/vnd.oracle.resource+json; type=collection"
BATCH_LIMIT = 100


# -- request helpers -----------------------------------------------------------------------

def sim(request: Request) -> SimState:
    return request.app.state.sim


def origin(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def rest_base(request: Request) -> str:
    return origin(request) + "/services/rest"


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise malformed()
    return body


def replace_param(request: Request) -> set[str]:
    return {p.strip() for p in request.query_params.get("replace", "").split(",") if p.strip()}


def _prefers(request: Request) -> set[str]:
    return {p.strip().lower() for p in request.headers.get("prefer", "").split(",") if p.strip()}


def _failing(error: SimError) -> Operation:
    def op() -> operations.Outcome:
        raise error
    return op


# -- sync or async -------------------------------------------------------------------------

def _answer(request: Request, ops: list[Operation], batch: bool) -> Response:
    """Run now, or queue as a job when the client asked for ``respond-async``."""
    if "respond-async" not in _prefers(request):
        if batch:
            raise SimError(400, "INVALID_REQUEST",
                           "Batch operations require the header 'Prefer: respond-async'.")
        return ops[0]().response()
    key = request.headers.get("x-netsuite-idempotency-key")
    if key is not None:
        try:
            uuid.UUID(key)
        except ValueError:
            raise SimError(400, "INVALID_REQUEST", "The idempotency key must be a UUID.") \
                from None
    job = sim(request).jobs.submit(ops, key, batch)
    return Response(status_code=202, headers={"Location": jobs.location(job.id),
                                              "Preference-Applied": "respond-async"})


# -- record service ------------------------------------------------------------------------

async def record_collection(request: Request) -> Response:
    """GET the list, POST one record, or POST/PATCH/PUT/DELETE a batch of one record type."""
    state = sim(request)
    rt = lookup_type(request.path_params["type"])
    base = rest_base(request)
    if request.method == "GET":
        return list_records(request, state, rt, base)
    if request.method == "DELETE":
        return _answer(request, _delete_batch(request, state, rt), batch=True)
    body = await json_body(request)
    if "type=collection" not in request.headers.get("content-type", "").replace(" ", ""):
        if request.method != "POST":
            raise malformed()
        return _answer(request, [partial(operations.create, state.store, rt, body, base)],
                       batch=False)
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise malformed()
    if len(items) > BATCH_LIMIT:
        # Limit documented (100 per batch); the refusal's code and wording are unconfirmed.
        raise SimError(400, "INVALID_REQUEST", f"The batch contains {len(items)} records; "
                       f"at most {BATCH_LIMIT} records are allowed per request.")
    ops = [_batch_op(request, state, rt, item, base) for item in items]
    return _answer(request, ops, batch=True)


def _batch_op(request: Request, state: SimState, rt: RecordType, item: Any,
              base: str) -> Operation:
    """One item of a batch; a malformed item fails alone, like any other item."""
    if not isinstance(item, dict):
        return _failing(malformed())
    store, replace = state.store, replace_param(request)
    if request.method == "POST":
        return partial(operations.create, store, rt, item, base)
    rest = {k: v for k, v in item.items() if k not in ("id", "externalId")}
    if request.method == "PUT":  # upsert: items must carry externalId
        if item.get("externalId") is None:
            return _failing(SimError(400, "USER_ERROR", "Please enter value(s) for: External "
                                     "ID", "externalId"))
        return partial(operations.upsert, store, rt, f"eid:{item['externalId']}", rest,
                       replace, base, state.config.upsert_location)
    if item.get("id") is not None:  # PATCH: internal id wins over externalId
        slot = str(item["id"])
    elif item.get("externalId") is not None:
        slot = f"eid:{item['externalId']}"
    else:
        return _failing(SimError(400, "USER_ERROR", "Please enter value(s) for: ID", "id"))
    return partial(operations.update, store, rt, slot, rest, replace, base)


def _delete_batch(request: Request, state: SimState, rt: RecordType) -> list[Operation]:
    ids = [p.strip() for p in request.query_params.get("ids", "").split(",") if p.strip()]
    if not ids or len(ids) > BATCH_LIMIT:
        raise malformed()
    slots = [s if not s.lower().startswith("eid:") else "eid:" + s[4:].strip("'\"")
             for s in ids]
    return [partial(operations.delete, state.store, rt, slot) for slot in slots]


async def record_item(request: Request) -> Response:
    """GET/PATCH/PUT/DELETE ``{type}/{id}``."""
    state = sim(request)
    rt = lookup_type(request.path_params["type"])
    slot, base, method = request.path_params["id"], rest_base(request), request.method
    op: Operation
    if method == "GET":
        expand = request.query_params.get("expandSubResources", "").lower() == "true"
        op = partial(operations.read, state.store, rt, slot, expand, base)
    elif method == "DELETE":
        op = partial(operations.delete, state.store, rt, slot)
    else:
        body = await json_body(request)
        if method == "PATCH":
            op = partial(operations.update, state.store, rt, slot, body, replace_param(request),
                         base)
        else:
            op = partial(operations.upsert, state.store, rt, slot, body, replace_param(request),
                         base, state.config.upsert_location)
    return _answer(request, [op], batch=False)


async def transform(request: Request) -> Response:
    """POST ``{fromType}/{id}/!transform/{toType}``: 204 + Location of the new record."""
    state = sim(request)
    rt = lookup_type(request.path_params["type"])
    raw = await request.body()
    body = await json_body(request) if raw.strip() else {}
    op = partial(operations.transform, state.store, rt, request.path_params["id"],
                 request.path_params["to"], body, rest_base(request))
    return _answer(request, [op], batch=False)


async def read_sublist(request: Request) -> Response:
    state = sim(request)
    rt = lookup_type(request.path_params["type"])
    record = operations.find(state.store, rt, request.path_params["id"])
    fields = rt.derive(state.store, record) if rt.derive else record.fields
    value = fields.get(request.path_params["sublist"])
    if not (isinstance(value, dict) and isinstance(value.get("items"), list)):
        raise SimError(404, "NONEXISTENT_ID", "Record does not exist.")
    href = f"{rest_base(request)}/record/v1/{rt.name}/{record.id}/" \
        f"{request.path_params['sublist']}"
    return JSONResponse(render_sublist(state.store, rt, value["items"], href),
                        media_type=COLLECTION)


def list_records(request: Request, state: SimState, rt: RecordType, base: str) -> Response:
    """``GET /record/v1/{type}``: ids and self links only, paged like SuiteQL (reference
    1.5). The ``q`` filter is not modelled: refused, so a client relying on it is told."""
    if "q" in request.query_params:
        raise SimError(400, "INVALID_PARAMETER",
                       "The simulator does not evaluate collection filters (q); use SuiteQL.")
    href = f"{base}/record/v1/{rt.name}"
    rows = [{"links": [{"rel": "self", "href": f"{href}/{r.id}"}], "id": r.id}
            for r in state.store.records(rt.group, rt.name)]
    return JSONResponse(page_of(request, rows, href), media_type=COLLECTION)


def page_of(request: Request, rows: list[dict[str, Any]], href: str) -> dict[str, Any]:
    """One page of ``rows`` as NetSuite pages collections and SuiteQL: ``limit`` 1..1000
    (default 1000), ``offset`` a multiple of it; first/prev/next/last/self links."""
    limit = _int_param(request, "limit", 1000)
    offset = _int_param(request, "offset", 0)
    if not 1 <= limit <= 1000 or offset < 0 or offset % limit:
        raise SimError(400, "INVALID_PARAMETER",
                       "Invalid paging: limit must be 1..1000 and offset a multiple of limit.")
    page = rows[offset:offset + limit]
    total = len(rows)
    has_more = offset + limit < total
    last = max(0, (total - 1) // limit * limit)
    links = [{"rel": "first", "href": f"{href}?limit={limit}&offset=0"}]
    if offset > 0:
        links.append({"rel": "prev", "href": f"{href}?limit={limit}&offset={offset - limit}"})
    if has_more:
        links.append({"rel": "next", "href": f"{href}?limit={limit}&offset={offset + limit}"})
    links.append({"rel": "last", "href": f"{href}?limit={limit}&offset={last}"})
    links.append({"rel": "self", "href": f"{href}?limit={limit}&offset={offset}"})
    return {"links": links, "count": len(page), "hasMore": has_more, "offset": offset,
            "totalResults": total, "items": page}


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
    """POST /query/v1/suiteql: paged, string-valued rows with empty ``links``.

    ``respond-async`` is not supported by the query service; the sim ignores it.
    """
    state = sim(request)
    # Oracle documents Prefer: transient as required; the sim enforces it.
    if "transient" not in request.headers.get("prefer", "").lower():
        raise SimError(400, "INVALID_REQUEST", "The Prefer header must be set to 'transient'.")
    body = await json_body(request)
    query = body.get("q")
    if not isinstance(query, str):
        raise malformed()
    params = body.get("params")
    page_of(request, [], "")  # paging refused before the query runs
    rows = suiteql.run(query, params if isinstance(params, list) else None)(state.store)
    doc = page_of(request, [{"links": [], **row} for row in rows],
                  f"{rest_base(request)}/query/v1/suiteql")
    return JSONResponse(doc)


# -- async jobs ----------------------------------------------------------------------------

async def job_status(request: Request) -> Response:
    job = sim(request).jobs.get(request.path_params["job"])
    return JSONResponse(jobs.render_job(job, origin(request)), media_type=operations.SINGULAR)


async def job_tasks(request: Request) -> Response:
    job = sim(request).jobs.get(request.path_params["job"])
    return JSONResponse(jobs.render_tasks(job, origin(request)), media_type=COLLECTION)


async def task_status(request: Request) -> Response:
    job, task = sim(request).jobs.task(request.path_params["job"], request.path_params["task"])
    return JSONResponse(jobs.render_task(job, task, origin(request)),
                        media_type=operations.SINGULAR)


async def task_result(request: Request) -> Response:
    _, task = sim(request).jobs.task(request.path_params["job"], request.path_params["task"])
    return jobs.result(task).response()


async def unknown_path(request: Request) -> Response:
    raise SimError(404, "INVALID_REQUEST", f"Resource not found: {request.url.path}")
