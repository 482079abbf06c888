"""Enrich an omnichannel order event: POS/OMS codes to NetSuite ids. Pure.

The sale rules in ``enrich`` are reused (items via ``resolve_item``, the customer via
``plan_customer``); what orders add is a location per line (the fulfilment source: a store
or a warehouse, which the store mappings do not list), a restock location for returns and
a tax code chosen by the order's *tax jurisdiction* (ship-to address or pickup store), not
by the store that took the order. ``resolve_order`` returns the first rule an event breaks
as a ``Rejection`` with the same reason codes a sale would get.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from tillbridge.streams.refdata.mappings import Mappings, StoreMapping, tax_setup
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.enrich import CustomerPlan, _reject, plan_customer, resolve_item
from tillbridge.streams.stages.reasons import ReasonCode
from tillbridge.streams.stages.records import (
    OrderLineRec,
    OrderRec,
    Rejection,
    SaleLineRec,
    SaleRec,
)

#: What an event asks of NetSuite, decided from its kind and status (``order_action``).
PLACE, FULFIL, CANCEL, MODIFY, RETURN = "place", "fulfil", "cancel", "modify", "return"
PLACE_KINDS = frozenset({"BOPIS", "SHIP_FROM_WAREHOUSE", "SHIP_FROM_STORE"})
FULFIL_STATUSES = frozenset({"SHIPPED", "PARTIALLY_FULFILLED", "FULFILLED", "PICKED_UP"})


def order_action(ev: OrderRec) -> str | None:
    """The NetSuite change an event stands for; None for a kind/status this code does not
    know (the schema lets producers add values, so an unknown one is skipped, not fatal).

    The status wins over a placement kind: a BOPIS event with status PICKED_UP is the
    pickup, not a new order.
    """
    kind, status = ev["kind"], ev["status"]
    if kind == "CANCEL" or status == "CANCELLED":
        return CANCEL
    if kind == "RETURN_IN_STORE" or status == "RETURNED":
        return RETURN
    if kind == "MODIFY" or status == "MODIFIED":
        return MODIFY
    if kind == "FULFILLMENT" or status in FULFIL_STATUSES:
        return FULFIL
    if kind in PLACE_KINDS:
        return PLACE
    return None


@dataclass(frozen=True, slots=True)
class OrderMappings:
    """Order-side mappings the store mappings file does not carry.

    ``locations``: warehouse/DC code -> NetSuite location id (store codes resolve through
    ``Mappings.stores`` first). ``tax_jurisdictions``: jurisdiction (``CA-SF``) -> NetSuite
    tax code id or itemid. ``subsidiary``: for orders no mapped store names (a web order
    shipped from a warehouse).
    """

    locations: dict[str, str] = field(default_factory=dict)
    tax_jurisdictions: dict[str, str] = field(default_factory=dict)
    subsidiary: str | None = None

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> OrderMappings:
        """Read the optional ``locations``, ``tax_jurisdictions`` and ``order_subsidiary``
        keys of a mappings document (``Mappings.from_dict`` ignores them)."""
        sub = doc.get("order_subsidiary")
        return cls({str(k): str(v) for k, v in (doc.get("locations") or {}).items()},
                   {str(k): str(v) for k, v in (doc.get("tax_jurisdictions") or {}).items()},
                   str(sub) if sub else None)


@dataclass(frozen=True, slots=True)
class OrderRefs:
    """NetSuite ids an order event resolved to; lists follow the event's line order."""

    location: str | None  # header: fulfilment location (BOPIS: the pickup store)
    subsidiary: str
    items: list[str]
    line_locations: list[str | None]  # per-line fulfilment source (mixed fulfilment)
    tax_codes: list[str | None]  # the jurisdiction's code, else the line's own
    customer: CustomerPlan
    mappings_version: int
    store_location: str | None = None  # where the event happened (till, counter, returns desk)
    restock_locations: list[str | None] = field(default_factory=list)
    #: the subsidiary's tax model (mappings ``tax``): legacy codes or SuiteTax details
    tax_model: str = "legacy"
    tax_type: str | None = None
    tax_rates: list[str | None] = field(default_factory=list)  # each code's NetSuite rate
    #: the order's store day (tranDate): its time zone and business-day cut-off
    timezone: str = "UTC"
    day_cutoff: float = 0.0

    def to_json(self) -> bytes:
        doc = {f: getattr(self, f) for f in OrderRefs.__slots__ if f != "customer"}
        doc["customer"] = {f: getattr(self.customer, f) for f in CustomerPlan.__slots__}
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> OrderRefs:
        doc = json.loads(raw)
        doc["customer"] = CustomerPlan(**doc["customer"])
        return cls(**doc)


def _location(code: str | None, what: str, maps: Mappings, omni: OrderMappings,
              ref: ReferenceData) -> str | Rejection | None:
    """A store or warehouse code's NetSuite location; None for no code."""
    if not code:
        return None
    store = maps.stores.get(code)
    location = store.location if store is not None else omni.locations.get(code)
    if location is None:
        return _reject(ReasonCode.UNKNOWN_STORE, "mapping.order_location",
                       f"{what} {code!r} maps to no NetSuite location",
                       code=code, field=what, mappings_version=maps.version,
                       known_codes=",".join(sorted({*maps.stores, *omni.locations})))
    if ref.locations:
        loc = ref.locations.get(location)
        if loc is None or not loc.active:
            return _reject(ReasonCode.INVALID_LOCATION, "location.active",
                           f"{what} {code!r} maps to location {location}, which NetSuite "
                           f"{'has inactive' if loc else 'does not have'}",
                           code=code, field=what, location=location)
    return location


def _tax_code(code: str | None, ref: ReferenceData, line_no: int | None,
              jurisdiction: str | None) -> str | Rejection | None:
    """A tax code id from an id or itemid; unchecked (kept as given) when the snapshot has
    no tax codes, None when there is no code at all."""
    if not code:
        return None
    if not ref.tax_codes:
        return code if jurisdiction else None  # a POS itemid cannot become an id unseen
    tc = ref.tax_codes.get(code)
    if tc is None or not tc.active:
        reason = ReasonCode.UNKNOWN_TAX_CODE if tc is None else ReasonCode.INACTIVE_TAX_CODE
        where = f"jurisdiction {jurisdiction!r}" if jurisdiction else f"line {line_no}"
        return _reject(reason, "tax.order_code",
                       f"{where}: tax code {code!r} is "
                       f"{'not a NetSuite tax code' if tc is None else 'inactive'}",
                       tax_code=code, line_no=line_no, tax_jurisdiction=jurisdiction)
    return tc.id


def _header_location(ev: OrderRec, maps: Mappings, omni: OrderMappings,
                     ref: ReferenceData) -> str | Rejection | None:
    """BOPIS books to the pickup store; ship orders to the shipping store/warehouse."""
    if ev["kind"] == "BOPIS" and ev.get("pickup_store_id"):
        return _location(ev["pickup_store_id"], "pickup_store_id", maps, omni, ref)
    if ev.get("fulfillment_location"):
        return _location(ev["fulfillment_location"], "fulfillment_location", maps, omni, ref)
    if ev.get("pickup_store_id"):
        return _location(ev["pickup_store_id"], "pickup_store_id", maps, omni, ref)
    return None


def _store(ev: OrderRec, maps: Mappings) -> StoreMapping | None:
    """The store the order belongs to: the till's, else the pickup store, else the
    shipping store (its subsidiary, time zone and business-day cut-off)."""
    for code in (ev.get("store_id"), ev.get("pickup_store_id"), ev.get("fulfillment_location")):
        store = maps.stores.get(code or "")
        if store is not None:
            return store
    return None


def _subsidiary(ev: OrderRec, maps: Mappings, omni: OrderMappings) -> str | None:
    store = _store(ev, maps)
    return store.subsidiary if store is not None else omni.subsidiary


def resolve_order(ev: OrderRec, maps: Mappings, ref: ReferenceData,
                  omni: OrderMappings | None = None) -> OrderRefs | Rejection:
    """Every NetSuite id the event's records need, or the first rule it breaks.

    A placement needs a header location (its fulfilment source); later events may omit it
    (the flow falls back on what the sales order already holds).
    """
    omni = omni or OrderMappings()
    header = _header_location(ev, maps, omni, ref)
    if isinstance(header, Rejection):
        return header
    store_loc = _location(ev.get("store_id"), "store_id", maps, omni, ref)
    if isinstance(store_loc, Rejection):
        return store_loc
    if header is None and order_action(ev) == PLACE:
        header = store_loc  # buy in store, take it home later: the till's store ships it
        if header is None:
            return _reject(ReasonCode.MISSING_LOCATION, "order.location",
                           f"order {ev['order_id']} names no fulfilment location",
                           order_id=ev["order_id"], kind=ev["kind"])
    subsidiary = _subsidiary(ev, maps, omni)
    if subsidiary is None:
        return _reject(ReasonCode.UNKNOWN_STORE, "mapping.order_subsidiary",
                       f"order {ev['order_id']}: no mapped store names a subsidiary and "
                       "the order mappings set none", order_id=ev["order_id"],
                       mappings_version=maps.version)
    jurisdiction = ev.get("tax_jurisdiction")
    mapped_tax = omni.tax_jurisdictions.get(jurisdiction or "")
    jur_code = _tax_code(mapped_tax, ref, None, jurisdiction) if mapped_tax else None
    if isinstance(jur_code, Rejection):
        return jur_code
    items: list[str] = []
    line_locs: list[str | None] = []
    taxes: list[str | None] = []
    restock: list[str | None] = []
    for line in ev["lines"]:
        loc = _location(line.get("fulfillment_location"), f"line {line['line_no']} "
                        "fulfillment_location", maps, omni, ref)
        if isinstance(loc, Rejection):
            return loc
        loc = loc or header
        item = resolve_item(cast(SaleLineRec, line), loc or "", maps,
                            _stock_checked(ref, loc))
        if isinstance(item, Rejection):
            return item
        tax = jur_code or _tax_code(line.get("tax_code"), ref, line["line_no"], None)
        if isinstance(tax, Rejection):
            return tax
        back = _restock(line, maps, omni, ref)
        if isinstance(back, Rejection):
            return back
        items.append(item)
        line_locs.append(loc)
        taxes.append(tax)
        restock.append(back or store_loc)
    customer = plan_customer(cast(SaleRec, ev), maps, ref)
    return OrderRefs(header, subsidiary, items, line_locs, taxes, customer, maps.version,
                     store_loc, restock, *_books(ev, maps, ref, subsidiary, taxes))


def _books(ev: OrderRec, maps: Mappings, ref: ReferenceData, subsidiary: str,
           taxes: list[str | None]) -> tuple[str, str | None, list[str | None], str, float]:
    """How the order is booked: the subsidiary's tax model and type, each code's rate, and
    the store's time zone and cut-off (its tranDate)."""
    setup = tax_setup(maps.document.get("tax"), subsidiary)
    store = _store(ev, maps)
    tz, cutoff = (store.timezone, store.business_day_cutoff) if store else ("UTC", 0.0)
    return setup.model, setup.tax_type, [_rate(ref, code) for code in taxes], tz, cutoff


def _rate(ref: ReferenceData, code: str | None) -> str | None:
    """The NetSuite rate of a resolved tax code (text: the refs travel as JSON)."""
    tc = ref.tax_codes.get(code) if code and ref.tax_codes else None
    return None if tc is None else str(tc.rate)


def _restock(line: OrderLineRec, maps: Mappings, omni: OrderMappings,
             ref: ReferenceData) -> str | Rejection | None:
    return _location(line.get("restock_location"), f"line {line['line_no']} restock_location",
                     maps, omni, ref)


def _stock_checked(ref: ReferenceData, location: str | None) -> ReferenceData:
    """Without a location there is nothing to check stocking against: drop that table."""
    if location is not None or ref.item_locations is None:
        return ref
    return ReferenceData(items=ref.items, ready=ref.ready, item_locations=None)
