"""How the window agent treats each kind of window: a *plan* per flow and sync mode.

- ``inventory`` (``SharedPlan`` over ``flows/stock.py``): one inventoryAdjustment per
  location and window of ``TILLBRIDGE_WINDOW_S``;
- ``sale.summary/<shape>`` (``SharedPlan`` over ``ledger/summary.py``): one summarised
  cashSale per store, register, business day and window;
- ``sale.batch/<shape>`` (``BatchPlan``): each sale its own cashSale, written when the
  window closes through NetSuite's async batch jobs (``flows/drain.py``, <= 100 records a
  request).

A plan's name is its window engine's name and the window book's ``flow``, so windows of
different modes or shapes never share an id. The shape (length or schedule) comes from the
routed event's ``tillbridge.mode`` tag, i.e. from the sync mode in force when ingest
routed it (``refdata/sync_modes.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from tillbridge.connectors.netsuite.retry import ReliableClient
from tillbridge.streams.flows.base import Event, Flow, Lookups
from tillbridge.streams.flows.sale import conflicting_resend
from tillbridge.streams.flows.stock import post_window
from tillbridge.streams.ledger.sale_records import sale_external_id
from tillbridge.streams.ledger.stock import body_lines, revive
from tillbridge.streams.ledger.summary import (
    RECEIPTS_FIELD,
    build_summary_cash_sale,
    summary_txn_id,
)
from tillbridge.streams.ledger.tax import tax_setup
from tillbridge.streams.ledger.types import Refused, Skipped, Written
from tillbridge.streams.refdata.sync_modes import parse_tag
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection, SaleRec
from tillbridge.streams.stages.resend import content_fingerprint, content_summary
from tillbridge.streams.windows.book import digest
from tillbridge.streams.windows.engine import WindowSpec

#: (event, refs, original event time, late?) of each member, as the agent hands them over
Members = Sequence[tuple[Event, Any, datetime, bool]]


@dataclass(frozen=True)
class Plan:
    """What every plan tells the agent."""

    name: str
    flow: Flow
    spec: WindowSpec
    #: store -> IANA zone (a schedule's local times); the key's first part is the store
    zone: Callable[[str], str]

    @property
    def shared(self) -> bool:
        """One NetSuite record for the whole window (else one per member)."""
        return False

    def key(self, event: Event) -> str:
        raise NotImplementedError

    def member_id(self, event: Event) -> str:
        raise NotImplementedError

    def skip(self, event: Event) -> Skipped | None:
        return None

    def member_book(self, event: Event) -> list[Any]:
        """What the window book keeps of a member beside its event time and lateness
        (sales: their content fingerprint and totals, so a changed re-send is told)."""
        return []

    def resend_conflict(self, event: Event, held: Event | list[Any] | None,
                        where: dict[str, Any]) -> Refused | None:
        """A re-send of a member whose content differs from the held one (None: the
        same content, or a plan that cannot tell)."""
        return None

    def own_external_id(self, event: Event) -> str | None:
        """A member's own record's externalId (batch sales); None: the window's record."""
        return None


@dataclass(frozen=True)
class SharedPlan(Plan):
    record_type: str = ""
    #: window body builder and writer (the inventory's or the summary's)
    body: Callable[[str, datetime, datetime, Members, Lookups], dict[str, Any] | None] = \
        lambda *_a: None
    post: Callable[[ReliableClient, dict[str, Any]], Any] = lambda *_a: None
    content: Callable[[dict[str, Any]], str] = lambda _b: ""
    #: a body read back from the window book (JSON: amounts as strings) made postable
    revive: Callable[[dict[str, Any]], dict[str, Any]] = lambda b: b

    @property
    def shared(self) -> bool:
        return True

    def key(self, event: Event) -> str:
        return self.flow.window_key(event)  # type: ignore[attr-defined]

    def member_id(self, event: Event) -> str:
        return self.flow.member_id(event)  # type: ignore[attr-defined]

    def skip(self, event: Event) -> Skipped | None:
        return self.flow.skip(event)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SalePlan(Plan):
    """Sales in a window per store, register and business day."""

    def key(self, event: Event) -> str:
        return f"{event['store_id']}:{event['register_id']}:{event['business_date']}"

    def member_id(self, event: Event) -> str:
        return f"{event['store_id']}/{event['pos_transaction_id']}"

    def member_book(self, event: Event) -> list[Any]:
        summary = content_summary(event)
        return [content_fingerprint(summary),
                {k: summary.get(k) for k in ("total", "tax_total")}]

    def resend_conflict(self, event: Event, held: Event | list[Any] | None,
                        where: dict[str, Any]) -> Refused | None:
        return sale_resend_conflict(event, held, where)


@dataclass(frozen=True)
class BatchPlan(SalePlan):
    """Per-record sales written together at the window's close."""

    def own_external_id(self, event: Event) -> str | None:
        return sale_external_id(event)


@dataclass(frozen=True)
class SummaryPlan(SalePlan, SharedPlan):
    shape: str = ""

    def key(self, event: Event) -> str:
        return SalePlan.key(self, event)

    def member_id(self, event: Event) -> str:
        return SalePlan.member_id(self, event)

    def skip(self, event: Event) -> Skipped | None:
        return None

    def member_book(self, event: Event) -> list[Any]:
        return SalePlan.member_book(self, event)

    def resend_conflict(self, event: Event, held: Event | list[Any] | None,
                        where: dict[str, Any]) -> Refused | None:
        return SalePlan.resend_conflict(self, event, held, where)


def sale_resend_conflict(event: Event, held: Event | list[Any] | None,
                         where: dict[str, Any]) -> Refused | None:
    """A sale re-sent into a window (still open: ``held`` is the member's event; closed:
    its book entry ``[time, late, fingerprint, totals]``) with other content: the same
    ``conflicting_resend`` as a real-time sale's, naming the window and its record.
    ``where``: ``record_type``, ``netsuite_id``, ``external_id`` (the summary or the
    sale's own record; the window id while it is open) and ``window``."""
    if isinstance(held, dict):  # the member's event, in an open window
        posted = content_summary(cast(SaleRec, held))
        previous = {**where, "content_fp": content_fingerprint(posted), "content": posted}
    elif isinstance(held, list) and len(held) >= 4:
        previous = {**where, "content_fp": held[2], "content": held[3], "lines_unknown": True}
    else:
        return None  # a book entry from before fingerprints were kept: cannot tell
    refused = conflicting_resend(previous, event)
    if refused is None:
        return None
    inputs = refused.rejection.inputs  # built for this refusal alone
    inputs["window"] = where.get("window")
    if previous.get("lines_unknown"):
        inputs["differences"]["lines"] = (
            "not kept: a window keeps each member's fingerprint and totals, not its lines")
    return refused


def inventory_plan(flow: Flow, spec: WindowSpec) -> SharedPlan:
    return SharedPlan("inventory", flow, spec, lambda _s: "UTC", "inventoryAdjustment",
                      flow.window_body,  # type: ignore[attr-defined]
                      post_window, lambda body: digest(body_lines(body)), revive)


_AMOUNTS = frozenset({"amount", "rate", "quantity", "grossAmt", "taxAmount", "taxRate",
                      "taxBasis"})


def revive_sale(body: dict[str, Any]) -> dict[str, Any]:
    """A summary body from the book with its amounts Decimal again (lines, tax details)."""
    def lines(section: dict[str, Any]) -> dict[str, Any]:
        return {"items": [{k: Decimal(v) if k in _AMOUNTS and isinstance(v, str) else v
                           for k, v in ln.items()} for ln in section.get("items", [])]}
    out = {**body, "item": lines(body.get("item") or {})}
    if "taxDetails" in body:
        out["taxDetails"] = lines(body["taxDetails"])
    return out


def summary_body(plan: SummaryPlan) -> Callable[[str, datetime, datetime, Members, Lookups],
                                                dict[str, Any] | None]:
    def body(key: str, start: datetime, _end: datetime, members: Members,
             lookups: Lookups) -> dict[str, Any] | None:
        receipts = sorted(((e, refs.enrichment) for e, refs, _t, _l in members),
                          key=lambda r: r[0]["pos_transaction_id"])
        if not receipts:
            return None
        store, register, business_date = key.split(":", 2)
        enr = receipts[0][1]
        m = lookups.mappings
        return build_summary_cash_sale(
            receipts, summary_txn_id(register, business_date, start, plan.shape),
            m.guest_customer, m.discount_item, tax_setup(m.document.get("tax"), enr.subsidiary))
    return body


def receipts_of(body: dict[str, Any]) -> str:
    return digest((r, "1") for r in str(body.get(RECEIPTS_FIELD) or "").split(","))


async def post_summary(client: ReliableClient, body: dict[str, Any]) -> Written | Rejection:
    """Post a summary once. NetSuite already holding its externalId with the same receipts
    is this window again; other receipts a ``window_conflict``, never posted over."""
    eid = body["externalId"]
    sale_id, created = await client.create_or_find("cashSale", eid, body)
    written = Written("cashSale", sale_id, eid, created, {"summary": "true"})
    if created:
        return written
    held = await client.get("cashSale", sale_id)
    if str(held.get(RECEIPTS_FIELD) or "") == body[RECEIPTS_FIELD]:
        return written
    return Rejection(Stage.SINK, ReasonCode.WINDOW_CONFLICT, "window.same_content",
                     f"NetSuite cashSale {sale_id} ({eid}) summarises other receipts than "
                     "this window", {"external_id": eid, "netsuite_id": sale_id,
                                     "netsuite_receipts": json.dumps(held.get(RECEIPTS_FIELD)),
                                     "window_receipts": json.dumps(body[RECEIPTS_FIELD])})


@dataclass(frozen=True)
class EventBatchPlan(Plan):
    """Payments, returns and orders in the ``batch`` mode: each event its own records,
    written when the window closes (``post_batch``). Payments and returns per store,
    register and business day; omnichannel order events per store and register where
    they happened (web orders have neither: one window of their own), each event a
    member by its event id (an order has many events; a re-sent one is a duplicate)."""

    def key(self, event: Event) -> str:
        if self.flow.kind == "order":
            return f"{event.get('store_id') or '-'}:{event.get('register_id') or '-'}"
        return f"{event['store_id']}:{event['register_id']}:{event['business_date']}"

    def member_id(self, event: Event) -> str:
        if self.flow.kind == "payment":  # several payments per POS transaction
            return f"pay/{event['payment_id']}"
        if self.flow.kind == "order":
            return f"ord/{event['event_id']}"
        return f"{event['store_id']}/{event['pos_transaction_id']}"


def sale_plan(flow: Flow, tag: str, default_s: float, grace_s: float, idle_s: float,
              retain_s: float, zone: Callable[[str], str]) -> Plan:
    """The plan of an event routed under mode ``tag`` (``summary/14400s``,
    ``batch/at0600``): sales, payments, returns and orders."""
    mode, window_s, schedule = parse_tag(tag)
    spec = WindowSpec(window_s or default_s, grace_s, idle_s, retain_s, schedule)
    name = f"{flow.kind}.{tag}"
    if flow.kind != "sale":
        return EventBatchPlan(name, flow, spec, zone)
    if mode == "batch":
        return BatchPlan(name, flow, spec, zone)
    plan = SummaryPlan(name, flow, spec, zone, "cashSale", post=post_summary,
                       content=receipts_of, revive=revive_sale, shape=tag.partition("/")[2])
    object.__setattr__(plan, "body", summary_body(plan))
    return plan
