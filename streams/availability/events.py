"""What the availability flow publishes: the item's state as an Avro record
(``schemas/availability.avsc``) and the signals as JSON documents, pure."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from tillbridge.streams.availability.model import ZERO, Delta, ItemState, Oversell, Signal

Q3 = Decimal("0.001")
#: POS events listed per record (the newest); older ones are summed. A busy item between two
#: reads gathers hundreds, and every record would carry them all again.
SHOWN = 50


def _q(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Q3)


def state_record(state: ItemState, event_id: str, now: datetime, cause: str) -> dict[str, Any]:
    """The Avro record of one item at one location, as it stands."""
    base = state.base
    pending = list(state.pending.values())
    older, shown = pending[:-SHOWN], pending[-SHOWN:]
    return {
        "event_id": event_id, "occurred_at": now, "store_id": state.store_id,
        "location_id": state.location, "item_id": state.item, "sku": state.sku,
        "on_hand": _q(state.on_hand()), "committed": _q(base.committed if base else ZERO),
        "available": _q(state.available()), "on_order": _q(base.on_order if base else ZERO),
        "reorder_point": _q(base.reorder_point if base else None),
        "preferred_stock_level": _q(base.preferred if base else None),
        "below_reorder_point": state.below_reorder,
        "netsuite_read_id": state.read.read_id if state.read else None,
        "netsuite_read_at": state.read.read_at if state.read else None,
        "netsuite_available": _q(base.available if base else ZERO),
        "cause": cause,
        "pos_events": [{"event_id": d.event_id, "kind": d.kind,
                        "pos_transaction_id": d.pos_transaction_id,
                        "quantity": _q(d.quantity), "netsuite_external_id": d.netsuite_key}
                       for d in shown],
        "pos_events_omitted": len(older),
        "pos_events_omitted_quantity": _q(sum((d.quantity for d in older), ZERO)),
    }


def signal_doc(signal: Signal, at: datetime) -> dict[str, Any]:
    """The JSON of an oversell warning or a replenishment trigger (``type`` says which)."""
    kind = "oversell" if isinstance(signal, Oversell) else "replenishment"
    body = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(signal).items()}
    return {"type": kind, "at": at.isoformat(), **body}


def signal_bytes(signal: Signal, at: datetime) -> bytes:
    return json.dumps(signal_doc(signal, at), sort_keys=True).encode()


def state_from_record(record: dict[str, Any]) -> ItemState:
    """An item's state back from its last record (a restarted worker): whether it is below
    its reorder point (so a crossing is not signalled again) and the POS events NetSuite did
    not show yet (so they keep counting until a read finds them; those beyond ``SHOWN``
    as one sum until the pending limit)."""
    at = record["occurred_at"]
    state = ItemState(record["location_id"], record["item_id"], record["store_id"],
                      record["sku"], below_reorder=bool(record["below_reorder_point"]))
    if record.get("pos_events_omitted"):
        # The events not listed come back as one, known to NetSuite by no externalId: it
        # stops counting after the pending limit, as they would have.
        omitted = f"omitted-before:{record['event_id']}"
        state.pending[omitted] = Delta(omitted, "OMITTED", state.location, state.item,
                                       record["pos_events_omitted_quantity"] or ZERO,
                                       state.store_id, state.sku,
                                       seen_at=at if isinstance(at, datetime) else None)
    for ev in record["pos_events"]:
        state.pending[ev["event_id"]] = Delta(
            ev["event_id"], ev["kind"], state.location, state.item, ev["quantity"],
            state.store_id, state.sku, ev["pos_transaction_id"], ev["netsuite_external_id"],
            at if isinstance(at, datetime) else None)
    return state
