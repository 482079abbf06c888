"""POS returns -> NetSuite: a refund linked to the original sale, the write-off of units that
do not go back on the shelf, and a new sale for exchange items.

A refund is a new transaction, never a reversal of the sale. The refund record (externalId
kind ``rtn``) depends on how the original was posted and on the refund method:

===============  ================  ===================================================
original         refund_method     refund record
===============  ================  ===================================================
cashSale         STORE_CREDIT      creditMemo, standalone (NetSuite has no cashSale ->
                                   creditMemo transform); linked by ``custbody_pos_*``
cashSale         any other         cashRefund ``!transform`` from the cashSale
invoice          any               creditMemo ``!transform`` from the invoice, plus a
                                   customerRefund (``rfd``) paying out the credit left,
                                   unless STORE_CREDIT / EXCHANGE_ONLY / NONE
salesOrder       (online order)    NetSuite's return chain from the order: RA, itemReceipt,
                                   creditMemo, customerRefund (``return_chain.py``)
none             STORE_CREDIT      creditMemo, standalone (receipt-less)
none             any other         cashRefund, standalone, to the matched or guest customer
===============  ================  ===================================================

A transform copies every line of the original; the body keeps only the returned ones (each
set to the returned quantity and refund amount, keyed by ``orderLine``) and drops the rest
with quantity 0, discount lines included: ``refund_amount`` is already net of discounts
and restocking fees. Each line's tax refund is booked as on the sale (``ledger/tax.py``).

Inventory: every refund line carries ``location``, where the unit comes back on hand (the
restock location, else the store). Lines not restocked (DISPOSE, RETURN_TO_VENDOR, INSPECT)
are then written off there by one inventoryAdjustment (``disp``, negative ``adjustQtyBy``).

Exchange: the exchange lines become a cashSale (``exch``) linked to the return by
``otherRefNum``, memo and ``custbody_pos_return_ref``. Refund and exchange sale use the same
payment method, so the exchanged value nets to zero there and only the net refund (or the
uplift) moves money.

Every record carries the POS coordinates (memo, ``otherRefNum`` = the return's POS id,
``custbody_pos_*``; the simulator accepts any custbody_*, on a real account they are
Transaction Body Fields of type Free-Form Text).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tillbridge.streams.ledger.ids import external_id, pos_fields
from tillbridge.streams.ledger.tax import TaxGroup, TaxLine, TaxSetup, apply_tax
from tillbridge.streams.stages.enrich_return import ReturnRefs
from tillbridge.streams.stages.records import ReturnLineRec, ReturnRec
from tillbridge.streams.stages.validate import cents

#: Refund methods that pay nothing out: the credit stays on account or buys the exchange.
NO_PAYOUT = frozenset({"STORE_CREDIT", "EXCHANGE_ONLY", "NONE"})
_RATE = Decimal("0.00000001")


# -- externalIds ---------------------------------------------------------------------------

def return_external_id(ret: ReturnRec) -> str:
    return external_id("rtn", ret["store_id"], ret["pos_transaction_id"])


def payout_external_id(ret: ReturnRec) -> str:
    return external_id("rfd", ret["store_id"], ret["pos_transaction_id"])


def exchange_external_id(ret: ReturnRec) -> str:
    return external_id("exch", ret["store_id"], ret["pos_transaction_id"])


def disposal_external_id(ret: ReturnRec) -> str:
    return external_id("disp", ret["store_id"], ret["pos_transaction_id"])


# -- pure builders ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourceLine:
    """One item line of the original transaction, as a GET with expanded sublists shows it."""

    line: int
    item: str
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Original:
    """The record a return refers to, fetched by externalId."""

    record_type: str
    id: str
    record: dict[str, Any]

    @property
    def customer(self) -> str | None:
        ref = self.record.get("entity") or self.record.get("customer") or {}
        return str(ref["id"]) if ref.get("id") is not None else None

    @property
    def payment_method(self) -> str | None:
        ref = self.record.get("paymentOption") or {}
        return str(ref["id"]) if ref.get("id") is not None else None


def refund_record_type(ret: ReturnRec, original_type: str | None) -> str:
    """creditMemo for store credit or an invoiced original, else cashRefund (table above)."""
    if original_type == "invoice" or ret["refund_method"] == "STORE_CREDIT":
        return "creditMemo"
    return "cashRefund"


def is_transform(record_type: str, original_type: str | None) -> bool:
    """Whether NetSuite's transform matrix links the refund to the original directly."""
    return (original_type, record_type) in {("cashSale", "cashRefund"), ("invoice", "creditMemo")}


def source_lines(record: dict[str, Any]) -> list[SourceLine]:
    """Item lines of a GET ``expandSubResources=true`` body, in line order."""
    out = []
    for ln in (record.get("item") or {}).get("items") or []:
        out.append(SourceLine(int(ln["line"]), str(ln["item"]["id"]),
                              Decimal(str(ln.get("quantity", 1))),
                              Decimal(str(ln.get("amount", 0)))))
    return out


def match_lines(ret: ReturnRec, refs: ReturnRefs, source: list[SourceLine]) -> list[int | None]:
    """The original's line each returned line credits, or None (then added unlinked).

    POS sale line k is the k-th goods line of the cashSale (discount lines, negative, sit
    between them), checked by item; otherwise the first unused goods line of that item.
    A source line backs at most one returned line: transform lines merge on it.
    """
    goods = [s for s in source if s.amount >= 0]
    used: set[int] = set()
    out: list[int | None] = []
    for line, item in zip(ret["lines"], refs.items, strict=True):
        k = line.get("original_line_no")
        pick = goods[k - 1] if k is not None and 1 <= k <= len(goods) else None
        if pick is None or pick.item != item or pick.line in used:
            pick = next((s for s in goods if s.item == item and s.line not in used), None)
        if pick is not None:
            used.add(pick.line)
        out.append(pick.line if pick is not None else None)
    return out


def unit_rate(amount: Decimal, quantity: Decimal) -> Decimal:
    """Per-unit rate whose product with ``quantity`` rounds back to ``amount``."""
    return (amount / quantity).quantize(_RATE).normalize()


def _line_note(line: ReturnLineRec) -> str:
    fee = line.get("restocking_fee")
    note = f"{line['condition']}/{line.get('disposition', 'RESTOCK')}/{line['reason_code']}"
    return note + (f" fee {fee}" if fee else "")


#: public names for the online-return chain (``return_chain.py``), which builds on them
line_note = _line_note


def refund_lines(ret: ReturnRec, refs: ReturnRefs,
                 matched: list[int | None] | None = None) -> list[dict[str, Any]]:
    """One line per returned line: returned quantity, refund amount, where it comes back."""
    out = []
    for i, line in enumerate(ret["lines"]):
        body: dict[str, Any] = {
            "item": {"id": refs.items[i]},
            "quantity": line["quantity"],
            "rate": unit_rate(line["refund_amount"], line["quantity"]),
            "amount": line["refund_amount"],
            "location": {"id": refs.line_locations[i]},
            "description": f"Return: {line.get('description') or line['sku']}"[:999],
            "custcol_pos_return_line": str(line["line_no"]),
            "custcol_pos_return_condition": _line_note(line),
        }
        if matched is not None and matched[i] is not None:
            body["orderLine"] = matched[i]
        out.append(body)
    return out


def _at(values: list[Any], index: int) -> Any:
    return values[index] if index < len(values) else None


def return_tax(body: dict[str, Any], ret: ReturnRec, refs: ReturnRefs) -> None:
    """Each returned line's tax refund, in the subsidiary's model (``ledger/tax.py``): the
    refund lines come first in ``body``, one per returned line, in order."""
    groups = []
    for i, line in enumerate(ret["lines"]):
        group = TaxGroup(_at(refs.tax_codes, i), line["tax_rate"], line["tax_refund_amount"],
                         reference=f"R{line['line_no']}")
        group.lines.append(TaxLine(i, line["refund_amount"]))
        groups.append(group)
    apply_tax(body, groups, TaxSetup.of(refs.tax_model, refs.tax_type))


def _memo(ret: ReturnRec, what: str) -> str:
    orig = ret["original"]
    source = (f"online order {orig['online_order_id']}" if orig.get("channel") == "ONLINE"
              else f"sale {orig.get('store_id') or ret['store_id']}/{orig['pos_transaction_id']}"
              if orig.get("pos_transaction_id") else "no receipt")
    tenders = ", ".join(f"{t['tender_type']} {t['amount']}" for t in ret["refund_tenders"])
    return (f"POS {ret['store_id']}/{ret['register_id']} {what} {ret['pos_transaction_id']} of "
            f"{source}; refund {ret['refund_total']} by {ret['refund_method']}"
            f"{' (' + tenders + ')' if tenders else ''}; exchange {ret['exchange_total']}; "
            f"net {ret['net_refund']}")[:999]


def _original_ref(ret: ReturnRec) -> str | None:
    orig = ret["original"]
    if orig.get("channel") == "ONLINE":
        return orig.get("online_order_id")
    if orig.get("pos_transaction_id"):
        return f"{orig.get('store_id') or ret['store_id']}/{orig['pos_transaction_id']}"
    return None


def _header(ret: ReturnRec, refs: ReturnRefs, what: str, **extra: str | None) -> dict[str, Any]:
    return {"tranDate": ret["business_date"], "location": {"id": refs.location},
            "subsidiary": {"id": refs.subsidiary}, "otherRefNum": ret["pos_transaction_id"],
            "memo": _memo(ret, what),
            **pos_fields(ret["store_id"], ret["register_id"], ret["pos_transaction_id"],
                         original_ref=_original_ref(ret), **extra)}


refund_header = _header


def build_refund_transform(ret: ReturnRec, refs: ReturnRefs, source: list[SourceLine],
                           payment_method: str | None, *,
                           unapply_invoice: str | None = None) -> dict[str, Any]:
    """Body of the cashSale->cashRefund / invoice->creditMemo ``!transform``.

    ``unapply_invoice``: the invoice to leave unapplied (paid already: nothing to credit
    against, so the credit stays open for the payout)."""
    matched = match_lines(ret, refs, source)
    kept = {m for m in matched if m is not None}
    lines = refund_lines(ret, refs, matched)
    lines += [{"orderLine": s.line, "quantity": 0} for s in source if s.line not in kept]
    body: dict[str, Any] = {**_header(ret, refs, "return"), "item": {"items": lines}}
    return_tax(body, ret, refs)
    if payment_method:
        body["paymentOption"] = {"id": payment_method}
    if unapply_invoice is not None:
        body["apply"] = {"items": [{"doc": {"id": unapply_invoice}, "apply": False}]}
    return body


def build_standalone_refund(ret: ReturnRec, refs: ReturnRefs, record_type: str,
                            customer_id: str, payment_method: str | None, *,
                            original_id: str | None = None) -> dict[str, Any]:
    """A cashRefund or creditMemo with no source document (receipt-less, store credit on a
    cashSale, an online order); ``original_id`` names the original in ``custbody``."""
    body: dict[str, Any] = {**_header(ret, refs, "return", original_id=original_id),
                            "entity": {"id": customer_id},
                            "item": {"items": refund_lines(ret, refs)}}
    return_tax(body, ret, refs)
    if payment_method and record_type == "cashRefund":  # a credit memo moves no money
        body["paymentOption"] = {"id": payment_method}
    return body


def build_payout(ret: ReturnRec, refs: ReturnRefs,
                 payment_method: str | None) -> dict[str, Any]:
    """Body of the creditMemo->customerRefund ``!transform`` (pays out the open credit)."""
    body = _header(ret, refs, "refund payout for return")
    if payment_method:
        body["paymentOption"] = {"id": payment_method}
    return body


def build_disposal(ret: ReturnRec, refs: ReturnRefs) -> dict[str, Any] | None:
    """Inventory adjustment writing off the units not restocked; None when all are."""
    lines = [{"item": {"id": refs.items[i]}, "location": {"id": refs.line_locations[i]},
              "adjustQtyBy": -line["quantity"],
              "memo": f"return line {line['line_no']}: {_line_note(line)}"[:999],
              "custcol_pos_return_line": str(line["line_no"])}
             for i, line in enumerate(ret["lines"]) if refs.write_off[i]]
    if not lines:
        return None
    return {**_header(ret, refs, "write-off for return"),
            "account": {"id": refs.write_off_account}, "adjLocation": {"id": refs.location},
            "inventory": {"items": lines}}


def build_exchange_sale(ret: ReturnRec, refs: ReturnRefs, customer_id: str,
                        payment_method: str | None) -> dict[str, Any]:
    """The cashSale of the exchange lines, priced like a sale line (discounts as discount
    lines after the line they discount)."""
    lines: list[dict[str, Any]] = []
    groups: list[TaxGroup] = []
    for i, (ex, item) in enumerate(zip(ret["exchange_lines"], refs.exchange_items,
                                       strict=True)):
        group = TaxGroup(_at(refs.exchange_tax_codes, i), ex["tax_rate"], ex["tax_amount"],
                         reference=f"X{ex['line_no']}")
        group.lines.append(TaxLine(len(lines), cents(ex["quantity"] * ex["unit_price"])))
        groups.append(group)
        lines.append({"item": {"id": item}, "quantity": ex["quantity"], "rate": ex["unit_price"],
                      "amount": cents(ex["quantity"] * ex["unit_price"]),
                      "description": ex.get("description") or ex["sku"],
                      "location": {"id": refs.location},
                      "custcol_pos_return_line": f"X{ex['line_no']}"})
        discount = ex.get("discount_amount") or Decimal(0)
        if discount > 0 and refs.discount_item:
            group.lines.append(TaxLine(len(lines), -discount))
            lines.append({"item": {"id": refs.discount_item}, "rate": -discount,
                          "amount": -discount, "description": f"exchange line {ex['line_no']}"})
    body: dict[str, Any] = {**_header(ret, refs, "exchange on return",
                                      return_ref=return_external_id(ret)),
                            "entity": {"id": customer_id}, "item": {"items": lines}}
    apply_tax(body, groups, TaxSetup.of(refs.tax_model, refs.tax_type))
    if payment_method:
        body["paymentOption"] = {"id": payment_method}
    return body
