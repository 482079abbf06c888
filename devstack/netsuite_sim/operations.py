"""Record operations as plain functions returning an ``Outcome``.

Separated from the HTTP layer so one operation can run either inline (a synchronous
request) or later inside an async job task, and produce the same status, ``Location``
and body both ways (the job's task ``result`` is what the sync call would have sent).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from starlette.responses import JSONResponse, Response

from tillbridge.devstack.netsuite_sim import giftcerts
from tillbridge.devstack.netsuite_sim.catalog import lookup_type
from tillbridge.devstack.netsuite_sim.errors import (
    ALREADY_EXISTS_DETAIL,
    ERROR_MEDIA_TYPE,
    SimError,
    malformed,
    not_found,
    unexpected,
    user_error,
)
from tillbridge.devstack.netsuite_sim.records import RecordType, merge, number_lines, render
from tillbridge.devstack.netsuite_sim.store import Record, Store, now_utc
from tillbridge.devstack.netsuite_sim.transforms import initial_body
from tillbridge.devstack.netsuite_sim.txn import SELF_ID

log = logging.getLogger(__name__)

SINGULAR = "application/vnd.oracle.resource+json; type=singular"


@dataclass
class Outcome:
    """What a record request answers: status, optional ``Location`` and JSON body."""

    status: int
    location: str | None = None
    body: Any = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        headers = dict(self.headers)
        if self.location:
            headers["Location"] = self.location
        if self.body is None:
            return Response(status_code=self.status, headers=headers or None)
        return JSONResponse(self.body, status_code=self.status, media_type=self.media_type,
                            headers=headers or None)

    @property
    def ok(self) -> bool:
        return self.status < 400


Operation = Callable[[], Outcome]


def run(op: Operation) -> Outcome:
    """Run an operation, turning refusals into NetSuite's error envelope."""
    try:
        return op()
    except SimError as exc:
        error = exc
    except Exception:
        error_id = secrets.token_hex(10)
        log.exception("sim unexpected error %s", error_id)
        error = unexpected(error_id)
    return Outcome(error.status, body=error.body(), media_type=ERROR_MEDIA_TYPE,
                   headers=dict(error.headers or {}))


def find(store: Store, rt: RecordType, slot: str) -> Record:
    """A record by internal id or ``eid:`` slot; 404 NONEXISTENT_ID otherwise."""
    if slot.lower().startswith("eid:"):
        record = store.by_external_id(rt.group, unquote(slot[4:]))
        if record is None or record.type != rt.name:
            raise not_found()
        return record
    record = store.get(rt.group, rt.name, slot)
    if record is None:
        raise not_found()
    return record


def _href(base: str, rt: RecordType, record_id: str) -> str:
    return f"{base}/record/v1/{rt.name}/{record_id}"


def store_new(store: Store, rt: RecordType, body: dict[str, Any]) -> Record:
    """Validate and insert; a reused external id in the group is USER_ERROR."""
    external_id = body.get("externalId")
    if external_id is not None and store.by_external_id(rt.group, str(external_id)):
        raise SimError(400, "USER_ERROR", ALREADY_EXISTS_DETAIL)
    fields = rt.validate(store, body)
    number_lines(fields)
    record_id = store.new_id(rt.group)
    if rt.group == "transaction":
        fields.setdefault("tranId", record_id)
    record = Record(rt.name, record_id, fields)
    store.put(record, rt.group)
    giftcerts.issue(store, record)  # a gift card sold: its certificate (the liability)
    store.stats.created[rt.name] += 1
    return record


def store_update(store: Store, rt: RecordType, record: Record, body: dict[str, Any],
                 replace: set[str]) -> None:
    """Merge ``body`` into the record (PATCH rules) and re-validate the result."""
    new_eid = body.get("externalId")
    if new_eid is not None:
        other = store.by_external_id(rt.group, str(new_eid))
        if other is not None and other.id != record.id:
            raise SimError(400, "USER_ERROR", ALREADY_EXISTS_DETAIL)
    token = SELF_ID.set(record.id)
    try:
        fields = rt.validate(store, merge(record.fields, body, replace))
    finally:
        SELF_ID.reset(token)
    number_lines(fields)
    store.put(Record(rt.name, record.id, fields, record.created, now_utc()), rt.group)
    store.stats.updated[rt.name] += 1


def create(store: Store, rt: RecordType, body: dict[str, Any], base: str) -> Outcome:
    record = store_new(store, rt, body)
    return Outcome(204, _href(base, rt, record.id))


def read(store: Store, rt: RecordType, slot: str, expand: bool, base: str) -> Outcome:
    record = find(store, rt, slot)
    return Outcome(200, body=render(store, rt, record, base, expand), media_type=SINGULAR)


def update(store: Store, rt: RecordType, slot: str, body: dict[str, Any], replace: set[str],
           base: str) -> Outcome:
    record = find(store, rt, slot)
    store_update(store, rt, record, body, replace)
    return Outcome(204, _href(base, rt, record.id))


def upsert(store: Store, rt: RecordType, slot: str, body: dict[str, Any], replace: set[str],
           base: str, with_location: bool) -> Outcome:
    """PUT ``eid:X``: insert or update (merge rules as PATCH), 204.

    Whether real NetSuite sends ``Location`` on an upsert is unconfirmed (reference open
    point 1); ``with_location`` (``upsert_location`` in the config) decides.
    """
    if not slot.lower().startswith("eid:") or len(slot) <= 4:
        raise malformed()
    external_id = unquote(slot[4:])
    body = dict(body)
    existing = store.by_external_id(rt.group, external_id)
    if existing is not None and existing.type != rt.name:
        raise SimError(400, "USER_ERROR", ALREADY_EXISTS_DETAIL)
    if existing is None:
        body["externalId"] = external_id
        record = store_new(store, rt, body)
    else:
        body["externalId"] = existing.external_id
        store_update(store, rt, existing, body, replace)
        record = existing
    return Outcome(204, _href(base, rt, record.id) if with_location else None)


def delete(store: Store, rt: RecordType, slot: str) -> Outcome:
    """Refused while other transactions link to the record, as NetSuite does."""
    record = find(store, rt, slot)
    if rt.group == "transaction" and _dependents(store, record.id):
        raise user_error("This record cannot be deleted because it has dependent records.")
    store.delete(rt.group, record)
    store.stats.deleted[rt.name] += 1
    return Outcome(204)


def _dependents(store: Store, record_id: str) -> bool:
    for other in store.records("transaction"):
        f = other.fields
        for key in ("createdFrom", "salesOrder"):
            if (f.get(key) or {}).get("id") == record_id:
                return True
        for name in ("apply", "deposit", "payment"):
            sublist = f.get(name)
            for line in sublist.get("items", []) if isinstance(sublist, dict) else []:
                doc = line.get("doc") or {}
                if str(doc.get("id", line.get("id"))) == record_id:
                    return True
    return False


def transform(store: Store, from_rt: RecordType, slot: str, to_type: str,
              body: dict[str, Any], base: str) -> Outcome:
    """``!transform``: 204 + ``Location`` of the new target record."""
    source = find(store, from_rt, slot)
    init = initial_body(store, from_rt, source, to_type, body)
    target = lookup_type(to_type)
    record = store_new(store, target, init)
    store.stats.transforms[f"{from_rt.name}->{target.name}"] += 1
    return Outcome(204, _href(base, target, record.id))
