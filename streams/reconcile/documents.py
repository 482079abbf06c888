"""The reconciliation topic's records (JSON): one per store, register and business day, and
one summary per run. Built here (pure) for both publishers: ``tillbridge reconcile`` and
the settlement flow, which reconciles a register against its close's journal right after
posting it. Workers read them back to export the drift gauges
(``streams/runtime/recon_watch.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tillbridge.streams.reconcile.compare import totals
from tillbridge.streams.reconcile.model import RegisterReport


def documents(reports: Sequence[RegisterReport], business_date: str, store: str | None,
              threshold: Decimal, sources: dict[str, Any],
              origin: str = "reconcile") -> list[tuple[bytes, dict[str, Any]]]:
    """(key, JSON document) for every register, then the run's summary (last: a reader
    that sees the summary has seen its registers)."""
    run = {"run_id": uuid.uuid4().hex, "origin": origin,
           "generated_at": datetime.now(UTC).isoformat(timespec="milliseconds")}
    out: list[tuple[bytes, dict[str, Any]]] = []
    flagged: dict[str, list[str]] = {}
    for rep in reports:
        is_flagged = rep.drift_amount > threshold or (threshold == 0 and not rep.balanced)
        if is_flagged:
            flagged.setdefault(rep.store_id, []).append(rep.register_id)
        doc = {"type": "register", **run, **rep.to_json(), "flagged": is_flagged,
               "threshold": str(threshold)}
        out.append((f"{rep.store_id}/{rep.register_id}/{rep.business_date}".encode(), doc))
    per_store = totals(reports)
    summary = {"type": "summary", **run, "business_date": business_date, "store": store,
               "balanced": all(r.balanced for r in reports),
               "drift_count": sum(c for c, _ in per_store.values()),
               "drift_amount": str(sum((a for _, a in per_store.values()), Decimal(0))),
               "stores": {s: {"drift_count": c, "drift_amount": str(a),
                              "flagged_registers": flagged.get(s, [])}
                          for s, (c, a) in sorted(per_store.items())},
               "sources": sources}
    out.append((f"{business_date}/{store or '*'}".encode(), summary))
    return out
