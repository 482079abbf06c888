"""The registry's HTTP API: the Confluent REST routes over one :class:`SchemaStore`.

Every route is a row of :data:`ROUTES` (path, method, handler); a handler takes the store
and the request and returns the JSON answer. Errors use Confluent's body shape
``{"error_code": 40401, "message": ...}`` so the client raises the same
``SchemaRegistryError`` codes it would against the real service.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tillbridge.devstack.registry.rules import RegistryError
from tillbridge.devstack.registry.store import SchemaStore

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"

#: (store, request) -> the JSON answer, or an awaitable of it.
StoreHandler = Callable[[SchemaStore, Request], Any]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, media_type=MEDIA_TYPE)


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise RegistryError(400, 400, f"Malformed JSON body: {exc}") from exc


def _schema_id(request: Request) -> int:
    try:
        return int(request.path_params["schema_id"])
    except ValueError as exc:
        raise RegistryError(404, 40403, "Schema not found") from exc


def _subject(request: Request) -> str:
    return str(request.path_params["subject"])


def _version(request: Request) -> str:
    return str(request.path_params["version"])


def _endpoint(store: SchemaStore, fn: StoreHandler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint: the handler's answer as JSON, any failure as an error body."""

    async def run(request: Request) -> Response:
        try:
            result = fn(store, request)
            if hasattr(result, "__await__"):
                result = await result
            return _json(result)
        except RegistryError as exc:
            return _json({"error_code": exc.error_code, "message": exc.message}, exc.status)
        except Exception as exc:  # never leak a traceback as a non-JSON 500
            return _json({"error_code": 50001, "message": f"Error in the backend: {exc}"}, 500)

    return run


# -- handlers that read a body or shape their answer -------------------------------------------

async def _register(store: SchemaStore, request: Request) -> Any:
    return store.register(_subject(request), await _body(request))


async def _lookup(store: SchemaStore, request: Request) -> Any:
    return store.lookup(_subject(request), await _body(request), _flag(request, "deleted"))


def _compat_answer(request: Request, result: dict[str, Any]) -> dict[str, Any]:
    return result if _flag(request, "verbose") else {"is_compatible": result["is_compatible"]}


async def _compat_one(store: SchemaStore, request: Request) -> Any:
    return _compat_answer(request, store.check_compatibility(
        _subject(request), await _body(request), _version(request)))


async def _compat_all(store: SchemaStore, request: Request) -> Any:
    return _compat_answer(request, store.check_compatibility(
        _subject(request), await _body(request), None))


async def _put_config(store: SchemaStore, request: Request) -> Any:
    return store.set_level(None, await _body(request))


async def _put_subject_config(store: SchemaStore, request: Request) -> Any:
    return store.set_level(_subject(request), await _body(request))


def _subjects_of_id(store: SchemaStore, request: Request) -> Any:
    return sorted({x["subject"] for x in
                   store.subject_versions_of_id(_schema_id(request), _flag(request, "deleted"))})


def _version_schema(store: SchemaStore, request: Request) -> Any:
    return json.loads(store.get_version(_subject(request), _version(request))["schema"])


# Order matters where paths overlap: Starlette takes the first route that matches.
ROUTES: tuple[tuple[str, str, StoreHandler], ...] = (
    ("/", "GET", lambda s, r: {}),
    ("/schemas/types", "GET", lambda s, r: ["AVRO"]),
    ("/schemas/ids/{schema_id}", "GET", lambda s, r: s.schema_by_id(_schema_id(r))),
    ("/schemas/ids/{schema_id}/subjects", "GET", _subjects_of_id),
    ("/schemas/ids/{schema_id}/versions", "GET",
     lambda s, r: s.subject_versions_of_id(_schema_id(r), _flag(r, "deleted"))),
    ("/subjects", "GET", lambda s, r: s.subjects(_flag(r, "deleted"))),
    ("/subjects/{subject}", "POST", _lookup),
    ("/subjects/{subject}", "DELETE",
     lambda s, r: s.delete_subject(_subject(r), _flag(r, "permanent"))),
    ("/subjects/{subject}/versions", "GET",
     lambda s, r: s.versions(_subject(r), _flag(r, "deleted"))),
    ("/subjects/{subject}/versions", "POST", _register),
    ("/subjects/{subject}/versions/{version}", "GET",
     lambda s, r: s.get_version(_subject(r), _version(r), _flag(r, "deleted"))),
    ("/subjects/{subject}/versions/{version}/schema", "GET", _version_schema),
    ("/subjects/{subject}/versions/{version}", "DELETE",
     lambda s, r: s.delete_version(_subject(r), _version(r), _flag(r, "permanent"))),
    ("/compatibility/subjects/{subject}/versions/{version}", "POST", _compat_one),
    ("/compatibility/subjects/{subject}/versions", "POST", _compat_all),
    ("/config", "GET", lambda s, r: s.get_level(None)),
    ("/config", "PUT", _put_config),
    ("/config/{subject}", "GET",
     lambda s, r: s.get_level(_subject(r), _flag(r, "defaultToGlobal"))),
    ("/config/{subject}", "PUT", _put_subject_config),
    ("/config/{subject}", "DELETE", lambda s, r: s.delete_level(_subject(r))),
    ("/mode", "GET", lambda s, r: {"mode": "READWRITE"}),
    ("/mode/{subject}", "GET", lambda s, r: {"mode": "READWRITE"}),
)


def create_app(store: SchemaStore | None = None) -> Starlette:
    """The registry as an ASGI app (one store; in-memory when none is given)."""
    store = store if store is not None else SchemaStore()
    app = Starlette(routes=[Route(path, _endpoint(store, fn), methods=[method])
                            for path, method, fn in ROUTES])
    app.state.store = store
    return app
