"""Reference-data refreshes: what changed since the last pull, as rows keyed ``<kind>:<id>``.

Each worker keeps its own snapshot (rows plus a ``_meta`` record: version, cursor, what was
unreadable) and swaps in a new index after each refresh. Refreshes are incremental —
items and customers by ``lastmodifieddate`` with an overlap against clock skew, the small
tables in full — so a refresh of an unchanged catalogue is a few SuiteQL pages.

We first kept these rows in a Faust GlobalTable (then in a changelog topic with a control
agent); on Tansu both changed Faust's group assignment so that a restarted worker got no
partitions. A per-worker snapshot costs each worker its own SuiteQL reads and keeps the
group untouched — see the issue notes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tillbridge.streams.refdata.queries import (
    INCREMENTAL,
    QUERIES,
    RefRows,
    SuiteQL,
    fetch_rows,
    row_key,
)
from tillbridge.streams.refdata.snapshot import ReferenceData

META = "_meta"
#: Incremental refreshes ask for rows modified since the previous start minus this overlap,
#: so a clock difference between us and NetSuite cannot skip a change (re-read rows that did
#: not change are not rewritten).
CURSOR_OVERLAP = timedelta(minutes=5)
STAMP = "%Y-%m-%d %H:%M:%S"


def table_key(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def rows_from_table(items: Iterable[tuple[str, Any]]) -> tuple[RefRows, dict[str, Any] | None]:
    """Group table entries back into rows per kind; returns (rows, meta)."""
    rows: RefRows = {}
    meta: dict[str, Any] | None = None
    for key, value in items:
        if key == META:
            meta = value
            continue
        kind = key.partition(":")[0]
        bucket = rows.setdefault(kind, [])
        if bucket is not None:
            bucket.append(value)
    for kind in (meta or {}).get("unreadable", []):
        rows[kind] = None
    return rows, meta


def plan_changes(existing: Mapping[str, Any], fetched: RefRows, *,
                 full: bool) -> tuple[dict[str, Any], list[str]]:
    """(rows to write, keys to delete). Rows NetSuite no longer has are deleted for every
    kind read in full; an incremental refresh reads items and customers by modification
    date only, so it never deletes those (it only sees changes)."""
    upserts: dict[str, Any] = {}
    seen: set[str] = set()
    for kind, rows in fetched.items():
        for row in rows or []:
            key = table_key(kind, row_key(kind, row))
            seen.add(key)
            if existing.get(key) != row:
                upserts[key] = row
    deletes: list[str] = []
    read = {kind for kind, rows in fetched.items()
            if rows is not None and (full or kind not in INCREMENTAL)}
    if read:
        deletes = [k for k in existing if k != META and k.partition(":")[0] in read
                   and k not in seen]
    return upserts, deletes


async def refresh(client: SuiteQL, current: Mapping[str, Any], *, full: bool,
                  now: datetime | None = None,
                  ) -> tuple[dict[str, Any | None], dict[str, Any]]:
    """Pull from NetSuite and return (records to write, new meta). ``current`` is the
    topic's content as this worker has read it; None values in the result are tombstones.
    The meta record must be written last."""
    started = now or datetime.now(UTC)
    meta = current.get(META) or {}
    incremental = not full and bool(meta.get("cursor"))
    fetched = await fetch_rows(client, since=meta["cursor"] if incremental else None)
    upserts, deletes = plan_changes(current, fetched, full=not incremental)
    writes: dict[str, Any | None] = {**upserts, **dict.fromkeys(deletes)}
    unreadable = [k for k, rows in fetched.items() if rows is None]
    new_meta = {
        "version": int(meta.get("version", 0)) + 1,
        "loaded_at": started.strftime(STAMP),
        "cursor": (started - CURSOR_OVERLAP).strftime(STAMP),
        "mode": "incremental" if incremental else "full",
        "written": len(upserts), "deleted": len(deletes),
        "unreadable": unreadable,
        "kinds": sorted(QUERIES),
    }
    return writes, new_meta


def build_index(items: Iterable[tuple[str, Any]]) -> tuple[ReferenceData, dict[str, Any] | None]:
    """The enrich stage's index from the table's entries."""
    rows, meta = rows_from_table(items)
    return ReferenceData.from_rows(rows), meta
