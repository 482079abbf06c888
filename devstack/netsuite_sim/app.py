"""Starlette app: a fake NetSuite account speaking the SuiteTalk REST API.

Every ``/services/rest`` request goes through ``_api``: concurrency gate -> faults ->
login check (TBA or OAuth 2.0 Bearer) -> handler -> faults, and any ``SimError`` becomes
NetSuite's error envelope. The OAuth 2.0 token endpoint sits outside that pipeline (no
faults, no concurrency slot). ``/__sim/*`` are admin endpoints for tests and benchmarks
(no auth, not NetSuite).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials
from tillbridge.devstack.netsuite_sim import availability as sim_stock
from tillbridge.devstack.netsuite_sim import handlers as h
from tillbridge.devstack.netsuite_sim.errors import AuthFailure, SimError, unexpected
from tillbridge.devstack.netsuite_sim.faults import DroppedResponse
from tillbridge.devstack.netsuite_sim.governance import SimConfig
from tillbridge.devstack.netsuite_sim.m2m import NO_STORE, TOKEN_PATH, TokenError
from tillbridge.devstack.netsuite_sim.state import SimState, register_oauth2
from tillbridge.devstack.netsuite_sim.store import load_seed

# SimState lives in .state; the package and .server still import it from here.
__all__ = ["SimState", "create_app"]

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]
FAULT_NAMES = ("error_rate", "outage", "commit_then_timeout", "concurrency_limit")


# -- the NetSuite request pipeline -----------------------------------------------------------

def _signed_url(request: Request) -> str:
    """The URL as the client sent it (raw path keeps its percent-encoding), for the base string."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    url = h.origin(request) + raw.decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{url}?{query}" if query else url

#: The record collection: list (GET), create, and batches of one type.
ALL_VERBS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


def _api(handler: Handler) -> Handler:
    """Wrap a NetSuite endpoint with governance, faults, auth and error rendering."""

    async def endpoint(request: Request) -> Response:
        state = h.sim(request)
        if not state.gate.try_acquire():
            state.count_fault("concurrency_limit")
            response = state.gate.rejection()
        else:
            try:
                response = await _guarded(state, request, handler)
            finally:
                state.gate.release()
        if not isinstance(response, DroppedResponse):  # no status ever reaches the client
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
            state.auth.verify(request.method, _signed_url(request), request.headers)
        except AuthFailure as exc:
            log.info("sim login audit: %s", exc)
            raise exc.sim_error(state.auth.realm) from None
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


async def oauth2_token(request: Request) -> Response:
    """``POST /services/rest/auth/oauth2/v1/token``: a signed JWT assertion buys a Bearer token.

    The assertion's ``aud`` must be this URL as the client addressed it (host included).
    """
    state = h.sim(request)
    try:
        answer = state.auth.issue_token(request.headers.get("content-type"),
                                        await request.body(), h.origin(request) + TOKEN_PATH,
                                        state.config.oauth2_token_ttl_s)
    except TokenError as exc:
        log.info("sim login audit (oauth2 token): %s -> %s", exc, exc.error)
        return exc.response(state.auth.realm)
    return JSONResponse(answer, headers=NO_STORE)


# -- admin (/__sim) -----------------------------------------------------------------------

async def admin_stats(request: Request) -> Response:
    """Shape kept stable for other tools: records, requests, concurrency, config (+ new)."""
    state = h.sim(request)
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
        "async": state.jobs.stats(),
        "transforms": {"total": sum(stats.transforms.values()),
                       "by_pair": dict(sorted(stats.transforms.items()))},
        "faults": {name: stats.faults[name] for name in FAULT_NAMES},
        "outage": state.outage.describe(),
        "auth": state.auth.stats(),
    })


async def admin_item(request: Request) -> Response:
    """Add an item by SKU or re-activate it; optional JSON body overrides item columns."""
    state = h.sim(request)
    raw = await request.body()
    extra = json.loads(raw) if raw else {}
    item = state.store.set_item(request.path_params["sku"], active=True)
    if isinstance(extra, dict):
        item.update({k: v for k, v in extra.items() if k not in ("id", "itemid")})
    return JSONResponse(item)


async def admin_item_deactivate(request: Request) -> Response:
    state = h.sim(request)
    sku = request.path_params["sku"].lower()
    if not any(str(i["itemid"]).lower() == sku for i in state.store.items.values()):
        return JSONResponse({"error": "unknown sku"}, status_code=404)
    return JSONResponse(state.store.set_item(sku, active=False))


async def admin_config(request: Request) -> Response:
    state = h.sim(request)
    try:
        values = await request.json()
        if not isinstance(values, dict):
            raise TypeError("expected a JSON object")
        state.configure(values)
    except (KeyError, ValueError, TypeError) as exc:
        return JSONResponse({"error": f"bad config: {exc}"}, status_code=400)
    return JSONResponse(state.config.as_dict())


async def admin_outage(request: Request) -> Response:
    """POST ``{"seconds": N}`` starts an outage window now; DELETE ends it."""
    state = h.sim(request)
    if request.method == "DELETE":
        state.outage.stop()
    else:
        try:
            seconds = float((await request.json())["seconds"])
        except (KeyError, ValueError, TypeError) as exc:
            return JSONResponse({"error": f"bad outage: {exc}"}, status_code=400)
        state.outage.start(seconds)
    return JSONResponse(state.outage.describe())


async def admin_oauth2(request: Request) -> Response:
    """POST ``{client_id, certificate_id, public_key_pem[, role, entity]}``: the PEM is an
    x.509 certificate or a public key (RSA 3072/4096, EC P-256/384/521)."""
    try:
        values = await request.json()
        if not isinstance(values, dict):
            raise TypeError("expected a JSON object")
        return JSONResponse(register_oauth2(h.sim(request).auth, values))
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": f"bad oauth2 client: {exc}"}, status_code=400)


async def admin_reset(request: Request) -> Response:
    h.sim(request).reset()
    return JSONResponse({"reset": True})


# -- factory ------------------------------------------------------------------------------

# long: the account's whole route table, read as one list (order matters)
def create_app(
    seed_path: str | Path | None = None,
    credentials: NetSuiteCredentials | None = None,
    concurrency_limit: int = 15,
    latency_ms: float = 0,
    upsert_location: bool = False,
    *,
    latency_jitter_ms: float = 0,
    latency_distribution: str = "uniform",
    error_rate: float = 0,
    seed: int = 0,
    commit_then_timeout: float | int = 0,
    timeout_after_commit_s: float = 35.0,
    outage_s: float = 0,
    slow_suiteql_ms: float = 0,
    async_delay_ms: float = 50,
    oauth2_token_ttl_s: int = 3600,
    oauth2_clients: Iterable[Mapping[str, str]] = (),
) -> Starlette:
    """Build a simulated account seeded from ``seed_path`` (default: packaged sandbox.json).

    Fault flags match the ``/__sim/config`` keys; ``commit_then_timeout`` is a count when
    an int >= 1, else a rate; ``outage_s`` starts an outage window at creation.
    ``oauth2_clients`` are M2M mappings present from the start (see ``/__sim/oauth2``).
    """
    config = SimConfig(concurrency_limit, float(latency_ms), upsert_location)
    config.update({
        "latency_jitter_ms": latency_jitter_ms, "latency_distribution": latency_distribution,
        "error_rate": error_rate, "seed": seed, "commit_then_timeout": commit_then_timeout,
        "timeout_after_commit_s": timeout_after_commit_s, "slow_suiteql_ms": slow_suiteql_ms,
        "async_delay_ms": async_delay_ms, "oauth2_token_ttl_s": oauth2_token_ttl_s,
    })
    state = SimState(load_seed(seed_path), credentials or NetSuiteCredentials.dev(), config,
                     float(outage_s), tuple(oauth2_clients))
    record = "/services/rest/record/v1/{type}"
    job = "/services/rest/async/v1/job/{job}"
    routes = [
        # Before the generic record routes: items live apart from the sim's record store.
        Route(sim_stock.ITEM_PATH, _api(sim_stock.inventory_item), methods=["GET", "PATCH"]),
        Route(record, _api(h.record_collection), methods=ALL_VERBS),
        Route(record + "/{id}", _api(h.record_item), methods=["GET", "PATCH", "PUT", "DELETE"]),
        Route(record + "/{id}/!transform/{to}", _api(h.transform), methods=["POST"]),
        Route(record + "/{id}/{sublist}", _api(h.read_sublist), methods=["GET"]),
        Route("/services/rest/query/v1/suiteql", _api(h.run_suiteql), methods=["POST"]),
        Route(job, _api(h.job_status), methods=["GET"]),
        Route(job + "/task", _api(h.job_tasks), methods=["GET"]),
        Route(job + "/task/{task}", _api(h.task_status), methods=["GET"]),
        Route(job + "/task/{task}/result", _api(h.task_result), methods=["GET"]),
        Route(TOKEN_PATH, oauth2_token, methods=["POST"]),
        Route("/services/rest/{path:path}", _api(h.unknown_path),
              methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        Route("/__sim/stats", admin_stats, methods=["GET"]),
        Route("/__sim/items/{sku}", admin_item, methods=["POST"]),
        Route("/__sim/items/{sku}/deactivate", admin_item_deactivate, methods=["POST"]),
        Route("/__sim/config", admin_config, methods=["POST"]),
        Route("/__sim/outage", admin_outage, methods=["POST", "DELETE"]),
        Route("/__sim/oauth2", admin_oauth2, methods=["POST"]),
        Route("/__sim/reset", admin_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = state
    return app
