"""Which flow handles which input topic: the wiring of each POS family's rules and ledger.

Route keys put an event on the routed partition of the record it depends on: a payment
and a return under their sale's POS transaction id (the sale's own key), every event of
an omnichannel order under the order id. Then one sink task sees them in order, and the
parking table's owner is the worker that will write the dependency.
"""

from __future__ import annotations

import json
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.streams.flows.base import Flow
from tillbridge.streams.ledger.order import order_external_id, post_order_event
from tillbridge.streams.ledger.payment import payment_audit_record, post_payment
from tillbridge.streams.ledger.refund import post_return, return_external_id
from tillbridge.streams.ledger.types import Skipped
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.enrich_order import OrderMappings, resolve_order
from tillbridge.streams.stages.enrich_payment import resolve_payment
from tillbridge.streams.stages.enrich_return import DEFAULT_WRITE_OFF_ACCOUNT, resolve_return

_omni_cache: list[tuple[Mappings, OrderMappings]] = []


def _order_mappings(maps: Mappings) -> OrderMappings:
    """Parsed once per mappings object (hot reload makes a new one). Held with the object
    itself, not its id(): a freed object's id can come back for the next one."""
    if not _omni_cache or _omni_cache[0][0] is not maps:
        _omni_cache[:] = [(maps, OrderMappings.from_dict(maps.document))]
    return _omni_cache[0][1]


def _resolve_order(ev: Any, maps: Mappings, ref: ReferenceData) -> Any:
    return resolve_order(ev, maps, ref, _order_mappings(maps))


def _order_ids(ev: Any) -> dict[str, Any]:
    return {"order_id": ev["order_id"], "kind": ev["kind"], "status": ev["status"],
            "sequence": ev["sequence"], "store_id": ev.get("store_id"),
            "pos_transaction_id": ev.get("pos_transaction_id"),
            "external_id": order_external_id(ev["order_id"])}


ORDER = Flow("order", _resolve_order, post_order_event,
             route_key=lambda ev: str(ev["order_id"]).encode(), ids=_order_ids,
             event_time=lambda ev: ev["occurred_at"])


def _resolve_return(ret: Any, maps: Mappings, ref: ReferenceData) -> Any:
    account = maps.document.get("write_off_account") or DEFAULT_WRITE_OFF_ACCOUNT
    return resolve_return(ret, maps, ref, write_off_account=str(account))


def _return_key(ret: Any) -> bytes:
    original = ret["original"].get("pos_transaction_id")
    return str(original or ret["pos_transaction_id"]).encode()


def _return_ids(ret: Any) -> dict[str, Any]:
    return {"pos_transaction_id": ret["pos_transaction_id"], "store_id": ret["store_id"],
            "register_id": ret["register_id"], "kind": ret["kind"],
            "original_pos_transaction_id": ret["original"].get("pos_transaction_id"),
            "refund_method": ret["refund_method"], "external_id": return_external_id(ret)}


RETURN = Flow("return", _resolve_return, post_return, route_key=_return_key,
              ids=_return_ids, event_time=lambda ret: ret["occurred_at"])


def _payment_ids(pay: Any) -> dict[str, Any]:
    return {"payment_id": pay["payment_id"], "pos_transaction_id": pay["pos_transaction_id"],
            "store_id": pay["store_id"], "status": pay["status"],
            "tender_type": pay["tender_type"], "amount": str(pay["amount"])}


def _payment_audit(pay: Any, skipped: Skipped) -> list[tuple[str, bytes, bytes]]:
    """Attempts that make no NetSuite record (declined, failed, voided) keep their trace."""
    if pay["status"] == "APPROVED":
        return []  # covered by the sale's own record: nothing to investigate
    doc = payment_audit_record(pay, skipped.why)
    return [(topics.AUDIT_PAYMENTS, str(pay["payment_id"]).encode(),
             json.dumps(doc).encode())]


PAYMENT = Flow("payment", resolve_payment, post_payment,
               route_key=lambda pay: str(pay["pos_transaction_id"]).encode(),
               ids=_payment_ids, event_time=lambda pay: pay["occurred_at"],
               audit=_payment_audit)

FLOWS: dict[str, Flow] = {
    topics.OMNICHANNEL.name: ORDER,
    topics.RETURN.name: RETURN,
    topics.PAYMENT.name: PAYMENT,
}
