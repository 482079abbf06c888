"""Embedded Confluent-compatible schema registry.

Why embed one: development, tests and single-box demos need a registry, and
running Confluent's JVM service (or a container) for that is heavy. This package
implements the subset of the Confluent REST API that ``confluent-kafka``'s
``SchemaRegistryClient`` and the Avro serde use, for Avro schemas only:

* ``POST /subjects/{s}/versions``            register (same schema -> same id)
* ``POST /subjects/{s}``                     look a schema up in a subject
* ``GET  /subjects``, ``GET /subjects/{s}/versions``, ``GET /subjects/{s}/versions/{v|latest}``
* ``DELETE /subjects/{s}`` (soft, then ``?permanent=true``), ``DELETE /subjects/{s}/versions/{v}``
* ``GET  /schemas/ids/{id}``, ``GET /schemas/ids/{id}/subjects``, ``/versions``, ``/schemas/types``
* ``POST /compatibility/subjects/{s}/versions/{v|latest}`` and ``.../versions`` (all)
* ``GET/PUT /config``, ``GET/PUT/DELETE /config/{s}``, ``GET /mode``

Modules, each importing only the ones before it: :mod:`.rules` (errors, schema identity
and validation, versions, compatibility), :mod:`.store` (the state, optionally persisted
to a JSON file), :mod:`.api` (the routes) and :mod:`.server` (uvicorn, in a thread or in
the foreground). The names other code uses are re-exported here.
"""

from tillbridge.devstack.registry.api import create_app
from tillbridge.devstack.registry.rules import RegistryError
from tillbridge.devstack.registry.server import RegistryServer, serve
from tillbridge.devstack.registry.store import SchemaStore

__all__ = ["RegistryError", "RegistryServer", "SchemaStore", "create_app", "serve"]
