"""Pure side of the omnichannel order flow (``order.py``): externalIds, the order as
NetSuite holds it, and the builders and plans of every record. No I/O: testable alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tillbridge.streams.ledger.ids import external_id, in_store_ra_id, sale_id
from tillbridge.streams.ledger.sale_records import PROMO_FIELD, build_sale_lines
from tillbridge.streams.ledger.tax import TaxGroup, TaxLine, TaxSetup, apply_tax
from tillbridge.streams.stages.business_day import business_date, zone
from tillbridge.streams.stages.enrich import Enrichment
from tillbridge.streams.stages.enrich_order import OrderRefs
from tillbridge.streams.stages.records import OrderLineRec, OrderRec, SaleRec, ShipToRec

F_ORDER_ID = "custbody_pos_order_id"
F_CHANNEL = "custbody_pos_order_channel"
F_POS_TXN = "custbody_pos_transaction_id"
F_STORE = "custbody_pos_store_id"
F_SEQ = "custbody_pos_event_seq"
F_LINE_NO = "custcol_pos_line_no"
F_RETURNED = "custcol_pos_qty_returned"
F_CONDITION = "custcol_pos_return_condition"

CENT = Decimal("0.01")
RATE = Decimal("0.000001")
ZERO = Decimal(0)
MEMO_MAX = 999


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    """How orders bill. ``bill_type`` ``cashSale`` for goods paid at pickup, ``invoice``
    when the order was prepaid online (its customerDeposit then applies to the invoice).
    ``bill_on``: event statuses that bill what is fulfilled and not yet billed."""

    bill_type: str = "cashSale"
    bill_on: frozenset[str] = frozenset({"PICKED_UP"})
    shipping_item: str | None = None  # order shipping as a line; None: noted in the memo

    def __post_init__(self) -> None:
        if self.bill_type not in ("cashSale", "invoice"):
            raise ValueError(f"bill_type must be cashSale or invoice, not {self.bill_type!r}")


# -- ids ------------------------------------------------------------------------------------

def _event_key(ev: OrderRec) -> str | int:
    """The event's sequence; its event id when the producer sets none (sequence defaults
    to 0, and two events must not share an id: the second would find the first)."""
    return ev["sequence"] or ev["event_id"]


def fulfilment_external_id(ev: OrderRec) -> str:
    """By the OMS fulfilment id; an event without one is keyed by its sequence."""
    return external_id("ful", ev["order_id"], ev.get("fulfillment_id") or _event_key(ev))


def return_external_id(ev: OrderRec) -> str:
    """A return taken at a till (store and POS transaction on the event) shares its id with
    that POS return's authorisation (``ids.in_store_ra_id``); otherwise by sequence."""
    if ev.get("store_id") and ev.get("pos_transaction_id"):
        return in_store_ra_id(ev["order_id"], str(ev["store_id"]), str(ev["pos_transaction_id"]))
    return external_id("ra", ev["order_id"], _event_key(ev))


def bill_external_id(ev: OrderRec) -> str:
    """The bill at pickup is the till's pickup transaction: ``pos-sale-<store>-<txn>``, the
    id a POS sale of that transaction would get, so the pickup is revenue once even if the
    till also reports it as a sale. Without a POS transaction (pickup confirmed by the
    OMS, or the event only repeats the till transaction that placed the order, which may
    already be booked as this order's sale) it derives from the order:
    ``pos-ord-<order>-bill-<fulfilment>``."""
    txn = ev.get("pos_transaction_id")
    if txn and ev.get("store_id") and txn != ev.get("original_pos_transaction_id"):
        return sale_id(str(ev["store_id"]), str(txn))
    return external_id("ord", ev["order_id"], "bill",
                       ev.get("fulfillment_id") or _event_key(ev))


# -- the order as NetSuite holds it ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SoLine:
    """One sales order line as read back (quantities exact, from NetSuite's floats)."""

    line: int
    item: str
    quantity: Decimal
    fulfilled: Decimal
    billed: Decimal
    closed: bool
    pos_line_no: int | None
    returned: Decimal
    location: str | None
    amount: Decimal

    @property
    def open(self) -> Decimal:
        """Still to fulfil (0 once closed)."""
        return ZERO if self.closed else max(ZERO, self.quantity - self.fulfilled)


@dataclass(frozen=True, slots=True)
class OrderState:
    id: str
    location: str | None
    seq: int | None
    memo: str
    lines: tuple[SoLine, ...]

    def line_for(self, line_no: int) -> SoLine | None:
        return next((ln for ln in self.lines if ln.pos_line_no == line_no), None)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def _ref(value: Any) -> str | None:
    return str(value["id"]) if isinstance(value, dict) and value.get("id") else None


def parse_order(record: dict[str, Any]) -> OrderState:
    """Read a GET ``salesOrder?expandSubResources=true`` body."""
    lines = []
    for ln in (record.get("item") or {}).get("items", []):
        pos_no = ln.get(F_LINE_NO)
        lines.append(SoLine(int(ln["line"]), _ref(ln.get("item")) or "", _dec(ln.get("quantity")),
                            _dec(ln.get("quantityFulfilled")), _dec(ln.get("quantityBilled")),
                            bool(ln.get("isClosed")), int(pos_no) if pos_no is not None else None,
                            _dec(ln.get(F_RETURNED)), _ref(ln.get("location")),
                            _dec(ln.get("amount"))))
    seq = record.get(F_SEQ)
    return OrderState(str(record["id"]), _ref(record.get("location")),
                      int(seq) if seq not in (None, "") else None, record.get("memo") or "",
                      tuple(lines))


# -- pure builders -------------------------------------------------------------------------

def tran_date(ev: OrderRec, refs: OrderRefs) -> str:
    """The order event's business date at its store (local time, the store's cut-off), as
    a sale's: a web order placed at 20:00 in Los Angeles is that day's, not UTC's next."""
    occurred = ev.get("occurred_at")
    if occurred is None:
        return ""
    return business_date(occurred, zone(refs.timezone), refs.day_cutoff).isoformat()


def source_memo(ev: OrderRec, what: str) -> str:
    """Human-readable source references: order, channel, till, originating POS txn."""
    parts = [f"{what} order {ev['order_id']} ({ev['order_channel']} {ev['kind']}, "
             f"seq {ev['sequence']}, {ev.get('source_system') or 'POS'})"]
    if ev.get("store_id"):
        parts.append(f"POS {ev['store_id']}/{ev.get('register_id') or '-'} txn "
                     f"{ev.get('pos_transaction_id') or '-'}")
    if ev.get("original_pos_transaction_id"):
        parts.append(f"placed at POS txn {ev['original_pos_transaction_id']}")
    return "; ".join(parts)[:MEMO_MAX]


def source_fields(ev: OrderRec) -> dict[str, Any]:
    """The order's source references as custom body fields (only those the event has)."""
    pos_txn = ev.get("pos_transaction_id") or ev.get("original_pos_transaction_id")
    out: dict[str, Any] = {F_ORDER_ID: ev["order_id"], F_CHANNEL: ev["order_channel"],
                           F_SEQ: ev["sequence"]}
    if pos_txn:
        out[F_POS_TXN] = pos_txn
    if ev.get("store_id"):
        out[F_STORE] = ev["store_id"]
    return out


def open_quantity(line: OrderLineRec) -> Decimal:
    """Ordered less cancelled: what the order line should ask for now."""
    return line["quantity_ordered"] - (line.get("quantity_cancelled") or ZERO)


def line_amount(line: OrderLineRec, quantity: Decimal) -> Decimal:
    """Net amount for ``quantity`` units: the line discount, prorated when only part of
    the line is kept, is taken off the price (a discount line would be billed and
    returned whole, not per unit)."""
    gross = quantity * line["unit_price"]
    discount = line.get("discount_amount") or ZERO
    if discount and quantity != line["quantity_ordered"]:
        discount = discount * quantity / line["quantity_ordered"]
    return (gross - discount).quantize(CENT, rounding=ROUND_HALF_UP)


def priced(line: OrderLineRec, quantity: Decimal) -> dict[str, Any]:
    amount = line_amount(line, quantity)
    rate = line["unit_price"] if not line.get("discount_amount") else \
        (amount / quantity).quantize(RATE, rounding=ROUND_HALF_UP).normalize()
    return {"quantity": quantity, "rate": rate, "amount": amount}


def order_line(line: OrderLineRec, item_id: str, location: str | None,
               tax_code: str | None) -> dict[str, Any]:
    """One salesOrder item line; ``custcol_pos_line_no`` ties it back to the OMS line."""
    body: dict[str, Any] = {"item": {"id": item_id}, **priced(line, open_quantity(line)),
                            "description": _description(line), F_LINE_NO: line["line_no"]}
    if location:
        body["location"] = {"id": location}
    if tax_code:
        body["taxCode"] = {"id": tax_code}
    promos = list(dict.fromkeys(line.get("promotion_ids") or []))
    if promos:
        body[PROMO_FIELD] = ",".join(promos)
    return body


def _description(line: OrderLineRec) -> str:
    text = line.get("description") or line["sku"]
    if line.get("discount_amount"):
        text += f" (discount {line['discount_amount']})"
    return text


def ship_address(ship_to: ShipToRec) -> dict[str, Any]:
    """``shippingAddress`` subrecord fields (country as an enum id)."""
    pairs = (("addressee", ship_to.get("name")), ("addr1", ship_to["line1"]),
             ("addr2", ship_to.get("line2")), ("city", ship_to["city"]),
             ("state", ship_to.get("region")), ("zip", ship_to.get("postal_code")))
    out: dict[str, Any] = {k: v for k, v in pairs if v}
    out["country"] = {"id": ship_to.get("country") or "US"}
    return out


def build_sales_order(ev: OrderRec, refs: OrderRefs, customer_id: str,
                      policy: OrderPolicy | None = None) -> dict[str, Any]:
    """The approved salesOrder of a placed order (lines fully cancelled already are left
    out). BOPIS books to the pickup store; ship orders carry the ship-to address."""
    policy = policy or OrderPolicy()
    kept = [i for i, ln in enumerate(ev["lines"]) if open_quantity(ln) > 0]
    lines = [order_line(ev["lines"][i], refs.items[i], refs.line_locations[i],
                        line_tax_code(refs, i)) for i in kept]
    groups = order_tax_groups(ev, refs, kept)
    memo = source_memo(ev, "Placed")
    shipping = ev.get("shipping_total") or ZERO
    if shipping and policy.shipping_item:
        lines.append({"item": {"id": policy.shipping_item}, "quantity": Decimal(1),
                      "rate": shipping, "amount": shipping, "description": "Shipping"})
    elif shipping:
        memo = f"{memo}; shipping {shipping}"[:MEMO_MAX]
    body: dict[str, Any] = {
        "entity": {"id": customer_id},
        "subsidiary": {"id": refs.subsidiary},
        "location": {"id": refs.location},
        "orderStatus": "B",  # approved: Pending Fulfillment (reference §5.4)
        "tranDate": tran_date(ev, refs),
        "otherRefNum": ev["order_id"],
        "memo": memo,
        **source_fields(ev),
        "item": {"items": lines},
    }
    if ev.get("ship_to") and ev["kind"] != "BOPIS":
        body["shippingAddress"] = ship_address(ev["ship_to"])  # type: ignore[arg-type]
    apply_tax(body, groups, TaxSetup.of(refs.tax_model, refs.tax_type))
    return body


def line_tax_code(refs: OrderRefs, index: int) -> str | None:
    """The line's legacy tax code; none on a SuiteTax subsidiary (NetSuite refuses one)."""
    return None if refs.tax_model == "suitetax" else refs.tax_codes[index]


def order_tax_groups(ev: OrderRec, refs: OrderRefs, kept: list[int]) -> list[TaxGroup]:
    """The OMS's tax per kept line (body line ``n`` is ``kept[n]``), prorated to the open
    quantity, so the sales order's taxTotal is the order's. A line without a tax amount
    keeps NetSuite's own tax (legacy) or none (SuiteTax)."""
    groups: list[TaxGroup] = []
    for n, i in enumerate(kept):
        line = ev["lines"][i]
        want = open_quantity(line)
        amount = line_amount(line, want)
        tax = line.get("tax_amount")
        rate = refs.tax_rates[i] if i < len(refs.tax_rates) else None
        pct = Decimal(rate) if rate is not None else (line.get("tax_rate") or ZERO)
        if tax is None:
            tax = (amount * pct / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        elif want != line["quantity_ordered"]:
            tax = (tax * want / line["quantity_ordered"]).quantize(CENT, rounding=ROUND_HALF_UP)
        groups.append(TaxGroup(refs.tax_codes[i], pct, tax, [TaxLine(n, amount)],
                               reference=f"L{line['line_no']}"))
    return groups


def build_sales_order_from_sale(sale: SaleRec, enrichment: Enrichment, customer_id: str,
                                discount_item: str | None = None,
                                tax: TaxSetup | None = None) -> dict[str, Any]:
    """A POS sale booked as an approved salesOrder instead of a cashSale (per store/channel
    configuration): the cashSale's externalId, lines and discount lines, without the
    payment (a sales order takes none; the payment becomes a customerDeposit)."""
    body = build_sale_lines(sale, enrichment, customer_id, discount_item, tax)
    body["orderStatus"] = "B"
    return body


@dataclass(frozen=True, slots=True)
class FulfilLine:
    order_line: int
    quantity: Decimal
    location: str | None


#: Statuses that mean "all of it": an event with them and no line quantities fulfils
#: every open line (SHIPPED may be one parcel of several, so it needs line quantities).
COMPLETE_STATUSES = frozenset({"FULFILLED", "PICKED_UP"})


def fulfilment_plan(ev: OrderRec, refs: OrderRefs, order: OrderState) -> list[FulfilLine]:
    """What this event fulfils: per line, its cumulative ``quantity_fulfilled`` less what
    NetSuite shows fulfilled. Closed and unknown lines are left alone."""
    plan = []
    everything = ev["status"] in COMPLETE_STATUSES and all(
        ln.get("quantity_fulfilled") is None for ln in ev["lines"])
    for i, line in enumerate(ev["lines"]):
        so = order.line_for(line["line_no"])
        done = so.quantity if everything and so is not None else \
            line.get("quantity_fulfilled")
        if done is None or so is None or so.closed:
            continue
        delta = done - so.fulfilled
        if delta > 0:
            loc = at_index(refs.line_locations, i) or refs.location or so.location
            plan.append(FulfilLine(so.line, delta, loc))
    return plan


def at_index(values: list[str | None], index: int) -> str | None:
    return values[index] if index < len(values) else None


def build_fulfilment(ev: OrderRec, plan: list[FulfilLine], order: OrderState,
                     refs: OrderRefs) -> dict[str, Any]:
    """itemFulfillment transform body: the planned lines, every other line left out
    (``itemreceive: false``); ``inventoryLocation`` is required (reference §2.7)."""
    planned = {p.order_line for p in plan}
    lines: list[dict[str, Any]] = [
        {"orderLine": p.order_line, "quantity": p.quantity,
         **({"location": {"id": p.location}} if p.location else {})} for p in plan]
    lines += [{"orderLine": so.line, "itemreceive": False}
              for so in order.lines if so.line not in planned]
    where = refs.location or next((p.location for p in plan if p.location), None) \
        or order.location
    memo = source_memo(ev, "Fulfilment " + (ev.get("fulfillment_id") or str(ev["sequence"])))
    if ev.get("carrier") or ev.get("tracking_number"):
        memo = (f"{memo}; {ev.get('carrier') or ''} tracking "
                f"{ev.get('tracking_number') or '-'}")[:MEMO_MAX]
    return {"inventoryLocation": {"id": where}, "tranDate": tran_date(ev, refs), "memo": memo,
            **source_fields(ev), "item": {"items": lines}}


def build_bill(ev: OrderRec, refs: OrderRefs) -> dict[str, Any]:
    """cashSale/invoice transform body: NetSuite bills what is fulfilled and unbilled."""
    return {"tranDate": tran_date(ev, refs), "otherRefNum": ev["order_id"],
            "memo": source_memo(ev, "Billed"), **source_fields(ev)}
