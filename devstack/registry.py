"""Embedded Confluent-compatible schema registry.

Why embed one: development, tests and single-box demos need a registry, and
running Confluent's JVM service (or a container) for that is heavy. This module
implements the subset of the Confluent REST API that ``confluent-kafka``'s
``SchemaRegistryClient`` and the Avro serde use, for Avro schemas only:

* ``POST /subjects/{s}/versions``            register (same schema -> same id)
* ``POST /subjects/{s}``                     look a schema up in a subject
* ``GET  /subjects``, ``GET /subjects/{s}/versions``, ``GET /subjects/{s}/versions/{v|latest}``
* ``DELETE /subjects/{s}`` (soft, then ``?permanent=true``), ``DELETE /subjects/{s}/versions/{v}``
* ``GET  /schemas/ids/{id}``, ``GET /schemas/ids/{id}/subjects``, ``/versions``, ``/schemas/types``
* ``POST /compatibility/subjects/{s}/versions/{v|latest}`` and ``.../versions`` (all)
* ``GET/PUT /config``, ``GET/PUT/DELETE /config/{s}``, ``GET /mode``

Errors use Confluent's body shape ``{"error_code": 40401, "message": ...}`` so
the client raises the same ``SchemaRegistryError`` codes it would against the
real service. Compatibility is decided by :mod:`tillbridge.schemas.compat`
(fastavro schema resolution over synthetic records).

State lives in memory and, when a path is given, in a JSON file rewritten
atomically after every change, so a restarted registry hands out the same ids
and the ids already embedded in Kafka messages stay resolvable.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tillbridge.schemas.compat import backward_problems

MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"
LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_LEVEL = "BACKWARD"
_MAX_VERSION = 2**31 - 1


class RegistryError(Exception):
    """An API error, rendered as Confluent's ``{"error_code", "message"}`` body."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def _subject_not_found(subject: str) -> RegistryError:
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def _canonical(schema: str, schema_type: str, references: list[Any]) -> str:
    """Identity of a schema: whitespace and key order do not matter, content does."""
    return json.dumps(
        [schema_type, json.loads(schema), references], sort_keys=True, separators=(",", ":")
    )


class SchemaStore:
    """Thread-safe registry state, optionally persisted to a JSON file."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = Path(path) if path is not None else None
        self._lock = threading.RLock()
        self._next_id = 1
        # id -> {"schema", "schemaType", "references"}
        self._schemas: dict[int, dict[str, Any]] = {}
        self._by_canonical: dict[str, int] = {}
        # subject -> list of {"version", "id", "deleted"}
        self._subjects: dict[str, list[dict[str, Any]]] = {}
        self._global_level = DEFAULT_LEVEL
        self._subject_levels: dict[str, str] = {}
        if self._path is not None and self._path.exists():
            self._load()

    # -- persistence -------------------------------------------------------
    def _load(self) -> None:
        assert self._path is not None
        data = json.loads(self._path.read_text(encoding="utf-8"))
        self._next_id = int(data.get("next_id", 1))
        self._schemas = {int(k): v for k, v in data.get("schemas", {}).items()}
        self._subjects = data.get("subjects", {})
        self._global_level = data.get("global_level", DEFAULT_LEVEL)
        self._subject_levels = data.get("subject_levels", {})
        self._by_canonical = {
            _canonical(v["schema"], v["schemaType"], v["references"]): k
            for k, v in self._schemas.items()
        }

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            "next_id": self._next_id,
            "schemas": {str(k): v for k, v in self._schemas.items()},
            "subjects": self._subjects,
            "global_level": self._global_level,
            "subject_levels": self._subject_levels,
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=self._path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def _validate(body: Any) -> tuple[str, str, list[Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
            raise RegistryError(422, 42201, "Invalid schema: request needs a 'schema' string")
        schema_type = body.get("schemaType") or "AVRO"
        if schema_type != "AVRO":
            raise RegistryError(422, 42201, f"Invalid schema: schemaType {schema_type} unsupported")
        references = body.get("references") or []
        if references:
            raise RegistryError(422, 42201, "Invalid schema: schema references are not supported")
        try:
            fastavro.parse_schema(json.loads(body["schema"]), _write_hint=False)
        except Exception as exc:  # any parse failure means an invalid schema
            raise RegistryError(422, 42201, f"Invalid schema: {exc}") from exc
        return body["schema"], schema_type, references

    def _live_versions(self, subject: str) -> list[dict[str, Any]]:
        versions = [v for v in self._subjects.get(subject, []) if not v["deleted"]]
        if not versions:
            raise _subject_not_found(subject)
        return versions

    @staticmethod
    def _parse_version(version: str) -> int | None:
        """None means latest."""
        if version in ("latest", "-1"):
            return None
        try:
            number = int(version)
        except ValueError:
            number = 0
        if not 1 <= number <= _MAX_VERSION:
            raise RegistryError(
                422,
                42202,
                f"The specified version '{version}' is not a valid version id. Allowed values "
                'are between [1, 2^31-1] and the string "latest"',
            )
        return number

    def _find_version(self, subject: str, version: str, deleted: bool = False) -> dict[str, Any]:
        number = self._parse_version(version)
        if deleted:
            versions = self._subjects.get(subject, [])
            if not versions:
                raise _subject_not_found(subject)
        else:
            versions = self._live_versions(subject)
        if number is None:
            return versions[-1]
        for entry in versions:
            if entry["version"] == number:
                return entry
        raise RegistryError(404, 40402, f"Version {version} not found.")

    def _describe(self, subject: str, entry: dict[str, Any]) -> dict[str, Any]:
        record = self._schemas[entry["id"]]
        out: dict[str, Any] = {
            "subject": subject,
            "version": entry["version"],
            "id": entry["id"],
            "schema": record["schema"],
        }
        if record["schemaType"] != "AVRO":
            out["schemaType"] = record["schemaType"]
        return out

    def level(self, subject: str | None = None) -> str:
        with self._lock:
            if subject is not None and subject in self._subject_levels:
                return self._subject_levels[subject]
            return self._global_level

    def _compat_messages(self, schema: str, against: list[str], level: str) -> list[str]:
        """Problems registering ``schema`` given existing versions ``against`` (oldest first)."""
        if level == "NONE" or not against:
            return []
        targets = against if level.endswith("_TRANSITIVE") else against[-1:]
        messages: list[str] = []
        for old in targets:
            if level.startswith(("BACKWARD", "FULL")):
                messages += [f"BACKWARD: {p}" for p in backward_problems(old, schema)]
            if level.startswith(("FORWARD", "FULL")):
                messages += [f"FORWARD: {p}" for p in backward_problems(schema, old)]
        return messages

    # -- API operations ----------------------------------------------------
    def register(self, subject: str, body: Any) -> dict[str, Any]:
        schema, schema_type, references = self._validate(body)
        key = _canonical(schema, schema_type, references)
        with self._lock:
            versions = self._subjects.get(subject, [])
            live = [v for v in versions if not v["deleted"]]
            existing_id = self._by_canonical.get(key)
            for entry in live:
                if entry["id"] == existing_id:
                    return {"id": existing_id}
            problems = self._compat_messages(
                schema, [self._schemas[v["id"]]["schema"] for v in live], self.level(subject)
            )
            if problems:
                raise RegistryError(
                    409,
                    409,
                    "Schema being registered is incompatible with an earlier schema for subject "
                    f"'{subject}', details: {problems}",
                )
            if existing_id is None:
                existing_id = self._next_id
                self._next_id += 1
                self._schemas[existing_id] = {
                    "schema": schema,
                    "schemaType": schema_type,
                    "references": references,
                }
                self._by_canonical[key] = existing_id
            next_version = max((v["version"] for v in versions), default=0) + 1
            versions.append({"version": next_version, "id": existing_id, "deleted": False})
            self._subjects[subject] = versions
            self._save()
            return {"id": existing_id}

    def lookup(self, subject: str, body: Any, deleted: bool = False) -> dict[str, Any]:
        schema, schema_type, references = self._validate(body)
        key = _canonical(schema, schema_type, references)
        with self._lock:
            versions = self._subjects.get(subject, [])
            candidates = versions if deleted else [v for v in versions if not v["deleted"]]
            if not candidates:
                raise _subject_not_found(subject)
            schema_id = self._by_canonical.get(key)
            for entry in reversed(candidates):
                if entry["id"] == schema_id:
                    return self._describe(subject, entry)
            raise RegistryError(404, 40403, "Schema not found")

    def schema_by_id(self, schema_id: int) -> dict[str, Any]:
        with self._lock:
            record = self._schemas.get(schema_id)
            if record is None:
                raise RegistryError(404, 40403, "Schema not found")
            out: dict[str, Any] = {"schema": record["schema"]}
            if record["schemaType"] != "AVRO":
                out["schemaType"] = record["schemaType"]
            if record["references"]:
                out["references"] = record["references"]
            return out

    def subject_versions_of_id(self, schema_id: int, deleted: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            if schema_id not in self._schemas:
                raise RegistryError(404, 40403, "Schema not found")
            return [
                {"subject": s, "version": v["version"]}
                for s, versions in sorted(self._subjects.items())
                for v in versions
                if v["id"] == schema_id and (deleted or not v["deleted"])
            ]

    def subjects(self, deleted: bool = False) -> list[str]:
        with self._lock:
            return sorted(
                s
                for s, vs in self._subjects.items()
                if deleted or any(not v["deleted"] for v in vs)
            )

    def versions(self, subject: str, deleted: bool = False) -> list[int]:
        with self._lock:
            if deleted:
                entries = self._subjects.get(subject, [])
                if not entries:
                    raise _subject_not_found(subject)
            else:
                entries = self._live_versions(subject)
            return [v["version"] for v in entries]

    def get_version(self, subject: str, version: str, deleted: bool = False) -> dict[str, Any]:
        with self._lock:
            return self._describe(subject, self._find_version(subject, version, deleted))

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        with self._lock:
            versions = self._subjects.get(subject, [])
            if not versions:
                raise _subject_not_found(subject)
            if permanent:
                if any(not v["deleted"] for v in versions):
                    raise RegistryError(
                        404,
                        40405,
                        f"Subject '{subject}' was not deleted first before being permanently "
                        "deleted",
                    )
                del self._subjects[subject]
                self._subject_levels.pop(subject, None)
                self._save()
                return [v["version"] for v in versions]
            live = [v for v in versions if not v["deleted"]]
            if not live:
                raise RegistryError(404, 40404, f"Subject '{subject}' was soft deleted.")
            for v in live:
                v["deleted"] = True
            self._save()
            return [v["version"] for v in live]

    def delete_version(self, subject: str, version: str, permanent: bool = False) -> int:
        with self._lock:
            entry = self._find_version(subject, version, deleted=permanent)
            if permanent:
                if not entry["deleted"]:
                    raise RegistryError(
                        404,
                        40407,
                        f"Subject '{subject}' Version {entry['version']} was not "
                        "deleted first before being permanently deleted",
                    )
                self._subjects[subject].remove(entry)
                if not self._subjects[subject]:
                    del self._subjects[subject]
            else:
                entry["deleted"] = True
            self._save()
            return int(entry["version"])

    def check_compatibility(self, subject: str, body: Any, version: str | None) -> dict[str, Any]:
        """``version=None`` checks against all live versions (``.../versions``)."""
        schema, _, _ = self._validate(body)
        with self._lock:
            live = self._subjects.get(subject, [])
            live = [v for v in live if not v["deleted"]]
            level = self.level(subject)
            if version is None:
                against = [self._schemas[v["id"]]["schema"] for v in live]
                if level == "NONE":
                    messages: list[str] = []
                else:
                    base = level.removesuffix("_TRANSITIVE") + "_TRANSITIVE"
                    messages = self._compat_messages(schema, against, base)
            else:
                if not live:
                    raise _subject_not_found(subject)
                entry = self._find_version(subject, version)
                old = self._schemas[entry["id"]]["schema"]
                messages = self._compat_messages(schema, [old], level.removesuffix("_TRANSITIVE"))
        return {"is_compatible": not messages, "messages": messages}

    def set_level(self, subject: str | None, body: Any) -> dict[str, Any]:
        level = body.get("compatibility") if isinstance(body, dict) else None
        if not isinstance(level, str) or level.upper() not in LEVELS:
            raise RegistryError(
                422, 42203, f"Invalid compatibility level. Valid values are {list(LEVELS)}"
            )
        with self._lock:
            if subject is None:
                self._global_level = level.upper()
            else:
                self._subject_levels[subject] = level.upper()
            self._save()
        return {"compatibility": level.upper()}

    def get_level(self, subject: str | None, default_to_global: bool = False) -> dict[str, Any]:
        with self._lock:
            if subject is None:
                return {"compatibilityLevel": self._global_level}
            if subject in self._subject_levels:
                return {"compatibilityLevel": self._subject_levels[subject]}
            if default_to_global:
                return {"compatibilityLevel": self._global_level}
            raise RegistryError(
                404,
                40408,
                f"Subject '{subject}' does not have subject-level compatibility configured",
            )

    def delete_level(self, subject: str) -> dict[str, Any]:
        with self._lock:
            if subject not in self._subject_levels:
                raise _subject_not_found(subject)
            level = self._subject_levels.pop(subject)
            self._save()
            return {"compatibilityLevel": level}


# -- HTTP layer ------------------------------------------------------------------


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


Handler = Callable[[Request], Any]


def create_app(store: SchemaStore | None = None) -> Starlette:
    """The registry as an ASGI app (one store; in-memory when none is given)."""
    store = store if store is not None else SchemaStore()

    def endpoint(fn: Handler) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            try:
                result = fn(request)
                if hasattr(result, "__await__"):
                    result = await result
                return _json(result)
            except RegistryError as exc:
                return _json({"error_code": exc.error_code, "message": exc.message}, exc.status)
            except Exception as exc:  # never leak a traceback as a non-JSON 500
                return _json({"error_code": 50001, "message": f"Error in the backend: {exc}"}, 500)

        return run

    async def register(request: Request) -> Any:
        return store.register(request.path_params["subject"], await _body(request))

    async def lookup(request: Request) -> Any:
        return store.lookup(
            request.path_params["subject"], await _body(request), _flag(request, "deleted")
        )

    async def compat_one(request: Request) -> Any:
        result = store.check_compatibility(
            request.path_params["subject"], await _body(request), request.path_params["version"]
        )
        return result if _flag(request, "verbose") else {"is_compatible": result["is_compatible"]}

    async def compat_all(request: Request) -> Any:
        result = store.check_compatibility(
            request.path_params["subject"], await _body(request), None
        )
        return result if _flag(request, "verbose") else {"is_compatible": result["is_compatible"]}

    async def put_config(request: Request) -> Any:
        return store.set_level(None, await _body(request))

    async def put_subject_config(request: Request) -> Any:
        return store.set_level(request.path_params["subject"], await _body(request))

    routes = [
        Route("/", endpoint(lambda r: {}), methods=["GET"]),
        Route("/schemas/types", endpoint(lambda r: ["AVRO"]), methods=["GET"]),
        Route(
            "/schemas/ids/{schema_id}",
            endpoint(lambda r: store.schema_by_id(_schema_id(r))),
            methods=["GET"],
        ),
        Route(
            "/schemas/ids/{schema_id}/subjects",
            endpoint(
                lambda r: sorted(
                    {
                        x["subject"]
                        for x in store.subject_versions_of_id(_schema_id(r), _flag(r, "deleted"))
                    }
                )
            ),
            methods=["GET"],
        ),
        Route(
            "/schemas/ids/{schema_id}/versions",
            endpoint(lambda r: store.subject_versions_of_id(_schema_id(r), _flag(r, "deleted"))),
            methods=["GET"],
        ),
        Route(
            "/subjects", endpoint(lambda r: store.subjects(_flag(r, "deleted"))), methods=["GET"]
        ),
        Route("/subjects/{subject}", endpoint(lookup), methods=["POST"]),
        Route(
            "/subjects/{subject}",
            endpoint(
                lambda r: store.delete_subject(r.path_params["subject"], _flag(r, "permanent"))
            ),
            methods=["DELETE"],
        ),
        Route(
            "/subjects/{subject}/versions",
            endpoint(lambda r: store.versions(r.path_params["subject"], _flag(r, "deleted"))),
            methods=["GET"],
        ),
        Route("/subjects/{subject}/versions", endpoint(register), methods=["POST"]),
        Route(
            "/subjects/{subject}/versions/{version}",
            endpoint(
                lambda r: store.get_version(
                    r.path_params["subject"], r.path_params["version"], _flag(r, "deleted")
                )
            ),
            methods=["GET"],
        ),
        Route(
            "/subjects/{subject}/versions/{version}/schema",
            endpoint(
                lambda r: json.loads(
                    store.get_version(r.path_params["subject"], r.path_params["version"])["schema"]
                )
            ),
            methods=["GET"],
        ),
        Route(
            "/subjects/{subject}/versions/{version}",
            endpoint(
                lambda r: store.delete_version(
                    r.path_params["subject"], r.path_params["version"], _flag(r, "permanent")
                )
            ),
            methods=["DELETE"],
        ),
        Route(
            "/compatibility/subjects/{subject}/versions/{version}",
            endpoint(compat_one),
            methods=["POST"],
        ),
        Route("/compatibility/subjects/{subject}/versions", endpoint(compat_all), methods=["POST"]),
        Route("/config", endpoint(lambda r: store.get_level(None)), methods=["GET"]),
        Route("/config", endpoint(put_config), methods=["PUT"]),
        Route(
            "/config/{subject}",
            endpoint(
                lambda r: store.get_level(r.path_params["subject"], _flag(r, "defaultToGlobal"))
            ),
            methods=["GET"],
        ),
        Route("/config/{subject}", endpoint(put_subject_config), methods=["PUT"]),
        Route(
            "/config/{subject}",
            endpoint(lambda r: store.delete_level(r.path_params["subject"])),
            methods=["DELETE"],
        ),
        Route("/mode", endpoint(lambda r: {"mode": "READWRITE"}), methods=["GET"]),
        Route("/mode/{subject}", endpoint(lambda r: {"mode": "READWRITE"}), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.store = store
    return app


class RegistryServer:
    """The registry served by uvicorn on a background thread.

    Binds its own socket (port 0 = any free port) before starting, so ``url``
    is known immediately and tests can run many registries side by side.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.store = SchemaStore(path)
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("registry not started")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> RegistryServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see netsuite_sim.server
        sock.bind((self._host, self._port))
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.store), log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="schema-registry", daemon=True
        )
        self._thread.start()
        ready = threading.Event()
        while not ready.wait(0.01):
            if self._server.started:
                ready.set()
            elif not self._thread.is_alive() or (timeout := timeout - 0.01) <= 0:
                self.stop()
                raise RuntimeError("schema registry failed to start")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1", port: int = 8081, path: str | os.PathLike[str] | None = None
) -> None:
    """Run the registry in the foreground until interrupted (for the CLI)."""
    uvicorn.run(create_app(SchemaStore(path)), host=host, port=port, log_level="info")
