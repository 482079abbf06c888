"""Validate and resolve a POS return (``return.avsc``): the pure rules in front of the refund
flow (``ledger.refund``).

``validate_return`` checks fields and money (stage ``validate``); ``resolve_return`` runs it,
then resolves every NetSuite id the return's records need (stage ``enrich``). Rules run in a
fixed order and the first failure wins, so a record's reason code is stable across replays.
Existing reason codes are reused: a return breaks the same promises a sale does.

Money rules: refund_total = sum(line refund_amount + tax_refund_amount); exchange_total =
sum(quantity x unit_price - discount + tax); net_refund = refund_total - exchange_total; the
refund tenders add up to net_refund when money goes back, to -net_refund when the customer
pays an exchange uplift, and are empty on an even exchange. Store credit may list no tender:
the credit stays on the customer's account.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import cast

from tillbridge.streams.ledger.ids import order_external_id, sale_id
from tillbridge.streams.refdata.mappings import Mappings, StoreMapping, tax_setup
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.enrich import (
    match_known,
    resolve_item,
    resolve_store,
    resolve_tender,
    rule_location,
    usable_item,
)
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import Rejection, ReturnRec, SaleLineRec, SaleRec, reject
from tillbridge.streams.stages.validate import CENT, cents

REFUND_METHODS = frozenset({"ORIGINAL_TENDER", "CASH", "STORE_CREDIT", "GIFT_CARD",
                            "EXCHANGE_ONLY", "NONE"})
#: Refund methods that are tender codes themselves (looked up in the tender mapping).
METHOD_TENDERS = frozenset({"CASH", "STORE_CREDIT", "GIFT_CARD"})
#: Sandbox "Inventory Shrinkage" (COGS): where written-off returned units are expensed.
DEFAULT_WRITE_OFF_ACCOUNT = "520"
#: Item types that carry stock, so a disposed unit needs an inventory adjustment.
INVENTORY_TYPES = frozenset({"InvtPart", "Assembly", "Kit"})


@dataclass(frozen=True, slots=True)
class ReturnRefs:
    """Every NetSuite id a return's records need; per-line lists follow ``ret["lines"]``."""

    location: str  # the store that took the return
    subsidiary: str
    items: list[str]
    #: where each returned unit comes back on hand (restock location, else the store)
    line_locations: list[str]
    #: True for lines whose units are written off (not RESTOCK, and a stock item)
    write_off: list[bool]
    tax_codes: list[str | None]
    exchange_items: list[str]
    exchange_tax_codes: list[str | None]
    #: payment method of the refund tenders' largest line, else of the refund method;
    #: None: the original sale's (ORIGINAL_TENDER / EXCHANGE_ONLY / NONE without tenders)
    payment_method: str | None
    #: an identified shopper NetSuite knows (loyalty id, email, phone), else None
    customer: str | None
    customer_rule: str
    guest_customer: str
    #: externalId of the original sale (or online order); None for a receipt-less return
    original: str | None
    original_types: tuple[str, ...]
    discount_item: str | None
    write_off_account: str
    mappings_version: int
    #: the subsidiary's tax model (mappings ``tax``): legacy or suitetax, and its tax type
    tax_model: str = "legacy"
    tax_type: str | None = None

    def to_json(self) -> bytes:
        """Travels with the event like ``Enrichment`` (the sink needs no reference data)."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ReturnRefs:
        doc = json.loads(raw)
        doc["original_types"] = tuple(doc["original_types"])
        return cls(**doc)


def _invalid(rule: str, message: str, **inputs: object) -> Rejection:
    return reject(Stage.VALIDATE, ReasonCode.INVALID_AMOUNT, rule, message, **inputs)


# -- validate ------------------------------------------------------------------------------

def rule_required(ret: ReturnRec) -> Rejection | None:
    """Ids, lines, and a coherent original reference (all null means receipt-less)."""
    for name in ("pos_transaction_id", "register_id", "business_date"):
        if not ret.get(name):
            return reject(Stage.VALIDATE, ReasonCode.MISSING_FIELD, "required", f"{name} is empty",
                          field=name)
    if not ret.get("store_id"):
        return reject(Stage.VALIDATE, ReasonCode.MISSING_LOCATION, "required.store",
                      "store_id is empty", pos_transaction_id=ret["pos_transaction_id"])
    if not ret["lines"]:
        return reject(Stage.VALIDATE, ReasonCode.MISSING_FIELD, "required",
                      "the return has no lines", field="lines")
    if ret["kind"] == "EXCHANGE" and not ret.get("exchange_lines"):
        return reject(Stage.VALIDATE, ReasonCode.MISSING_FIELD, "required.exchange_lines",
                      "an EXCHANGE has no exchange lines", field="exchange_lines")
    orig = ret["original"]
    if orig.get("channel") == "ONLINE":
        if not orig.get("online_order_id"):
            return reject(Stage.VALIDATE, ReasonCode.MISSING_FIELD, "required.original",
                          "return of an online order without online_order_id",
                          field="original.online_order_id")
    elif not orig.get("pos_transaction_id") and (orig.get("store_id") or orig.get("register_id")):
        return reject(Stage.VALIDATE, ReasonCode.MISSING_FIELD, "required.original",
                      "original names a store/register but no transaction",
                      field="original.pos_transaction_id")
    for line in ret["lines"]:
        if line["tax_refund_amount"] > 0 and not line.get("tax_code"):
            return reject(Stage.VALIDATE, ReasonCode.MISSING_TAX_CODE, "required.tax_code",
                          f"line {line['line_no']} ({line['sku']}) refunds tax without a "
                          "tax code", line_no=line["line_no"], sku=line["sku"])
    return None


def rule_amounts_sane(ret: ReturnRec) -> Rejection | None:
    """Positive quantities, no negative money, no line refunding more than was paid."""
    for line in ret["lines"]:
        amounts: tuple[Decimal, ...] = (line["unit_price"], line["refund_amount"],
                                        line["tax_refund_amount"],
                                        line.get("restocking_fee") or Decimal(0))
        if line["quantity"] <= 0 or any(a < 0 for a in amounts):
            return _invalid("amounts.sane", f"line {line['line_no']}: quantity must be > 0 and "
                            "amounts >= 0", line_no=line["line_no"], quantity=line["quantity"],
                            refund_amount=line["refund_amount"],
                            tax_refund_amount=line["tax_refund_amount"])
        paid = cents(line["quantity"] * line["unit_price"])
        if line["refund_amount"] > paid:
            return _invalid("amounts.refund_le_paid",
                            f"line {line['line_no']}: refunds {line['refund_amount']} of "
                            f"{paid} paid", line_no=line["line_no"], paid=paid,
                            refund_amount=line["refund_amount"])
    for ex in ret.get("exchange_lines") or []:
        amounts = (ex["unit_price"], ex["tax_amount"], ex.get("discount_amount") or Decimal(0))
        if ex["quantity"] <= 0 or any(a < 0 for a in amounts):
            return _invalid("amounts.sane", f"exchange line {ex['line_no']}: quantity must be "
                            "> 0 and amounts >= 0", line_no=ex["line_no"],
                            quantity=ex["quantity"], unit_price=ex["unit_price"])
    for tender in ret.get("refund_tenders") or []:
        if tender["amount"] < 0:
            return _invalid("amounts.sane", "a refund tender amount is negative",
                            tender_type=tender["tender_type"], amount=tender["amount"])
    return None


def exchange_line_total(ret: ReturnRec) -> Decimal:
    """What the exchange items cost the customer: gross - discount + tax, per line."""
    return sum((cents(ex["quantity"] * ex["unit_price"]) - (ex.get("discount_amount") or Decimal(0))
                + ex["tax_amount"] for ex in ret.get("exchange_lines") or []), Decimal(0))


def rule_totals(ret: ReturnRec) -> Rejection | None:
    """refund_total, exchange_total and net_refund agree with the lines, to the cent."""
    refund = sum((ln["refund_amount"] + ln["tax_refund_amount"] for ln in ret["lines"]),
                 Decimal(0))
    exchange = exchange_line_total(ret)
    checks = (("refund_total", refund, ret["refund_total"]),
              ("exchange_total", exchange, ret["exchange_total"]),
              ("net_refund", refund - exchange, ret["net_refund"]))
    for name, computed, stated in checks:
        if computed != stated:
            return reject(Stage.VALIDATE, ReasonCode.TOTALS_MISMATCH, f"totals.{name}",
                          f"{name} is {stated} but lines give {computed}", field=name,
                          stated=stated, computed=computed, refund_total=refund,
                          exchange_total=exchange)
    return None


def rule_tenders(ret: ReturnRec) -> Rejection | None:
    """Tenders move exactly the net: paid out (net > 0) or collected for an uplift (< 0)."""
    tenders = ret.get("refund_tenders") or []
    tendered = sum((t["amount"] for t in tenders), Decimal(0))
    net = ret["net_refund"]
    if net > 0 and not tenders and ret["refund_method"] == "STORE_CREDIT":
        return None  # credit on account: no money changed hands
    if tendered != abs(net):
        return reject(Stage.VALIDATE, ReasonCode.TENDER_MISMATCH, "tenders.sum",
                      f"refund tenders add up to {tendered}, net refund is {net}",
                      tendered=tendered, net_refund=net, refund_method=ret["refund_method"],
                      tenders=",".join(t["tender_type"] for t in tenders))
    return None


RETURN_RULES = (rule_required, rule_amounts_sane, rule_totals, rule_tenders)


def validate_return(ret: ReturnRec) -> Rejection | None:
    """First failing rule's rejection, or None when the return may proceed."""
    for rule in RETURN_RULES:
        rejection = rule(ret)
        if rejection is not None:
            return rejection
    return None


# -- resolve -------------------------------------------------------------------------------

def original_ref(ret: ReturnRec) -> tuple[str | None, tuple[str, ...]]:
    """ExternalId of what is being returned and the record types it may be posted as.

    A POS sale is a cashSale, or an invoice in split-tender/sales-order mode; an online
    order is the ``ord`` salesOrder. A cross-store return names the original's store.
    """
    orig = ret["original"]
    if orig.get("channel") == "ONLINE" and (online_id := orig.get("online_order_id")):
        return order_external_id(online_id), ("salesOrder",)
    if pos_id := orig.get("pos_transaction_id"):
        return sale_id(orig.get("store_id") or ret["store_id"], pos_id), ("cashSale", "invoice")
    return None, ()


def _restock_location(code: str | None, line_no: int, store: StoreMapping,
                      maps: Mappings) -> str | Rejection:
    """A restock location is a store code of the mappings; none given: the return store."""
    if not code:
        return store.location
    mapped = maps.stores.get(code)
    if mapped is None:
        return reject(Stage.ENRICH, ReasonCode.UNKNOWN_STORE, "mapping.restock_location",
                      f"line {line_no}: restock location {code!r} has no NetSuite location "
                      "mapping", restock_location=code, line_no=line_no,
                      mappings_version=maps.version, known_stores=",".join(sorted(maps.stores)))
    return mapped.location


def _tax_code(code: str | None, taxable: Decimal, stated: Decimal, where: str,
              ref: ReferenceData, tolerance_cents: int) -> str | None | Rejection:
    """The line's NetSuite tax code: known, active, and its rate gives the stated tax."""
    if not code or not ref.tax_codes:
        return None
    tc = ref.tax_codes.get(code)
    if tc is None or not tc.active:
        reason = ReasonCode.UNKNOWN_TAX_CODE if tc is None else ReasonCode.INACTIVE_TAX_CODE
        return reject(Stage.ENRICH, reason, "tax.code_exists" if tc is None else "tax.code_active",
                      f"{where}: tax code {code!r} is {'unknown' if tc is None else 'inactive'}"
                      " in NetSuite", tax_code=code, where=where)
    expected = cents(taxable * tc.rate / 100)
    if abs(stated - expected) > CENT * tolerance_cents:
        return reject(Stage.ENRICH, ReasonCode.TAX_MISMATCH, "tax.amount",
                      f"{where}: tax {stated} but {taxable} at {tc.rate}% is {expected}",
                      where=where, tax_code=code, taxable=taxable, rate_expected=tc.rate,
                      tax_expected=expected, tax_stated=stated,
                      tolerance_cents=tolerance_cents)
    return tc.id


def _settlement_method(ret: ReturnRec, tender_methods: list[str], maps: Mappings,
                       ref: ReferenceData) -> str | None | Rejection:
    """The largest refund tender's method (first on ties), else the refund method's own.

    An unknown refund method is refused even with tenders: it decides the record type."""
    method = ret["refund_method"]
    if method not in REFUND_METHODS:
        return reject(Stage.ENRICH, ReasonCode.UNKNOWN_TENDER, "mapping.refund_method",
                      f"refund method {method!r} is not one tillbridge knows",
                      refund_method=method, known=",".join(sorted(REFUND_METHODS)))
    tenders = ret.get("refund_tenders") or []
    paying = [i for i, t in enumerate(tenders) if t["amount"] > 0]
    if paying:
        return tender_methods[max(paying, key=lambda i: tenders[i]["amount"])]
    return resolve_tender(method, maps, ref) if method in METHOD_TENDERS else None


def _is_stock(item_id: str, sku: str, maps: Mappings, ref: ReferenceData) -> bool:
    item = ref.find_item(maps.itemid(sku), maps.sku_ignore_case)
    itemtype = item.itemtype if item is not None and item.id == item_id else None
    return itemtype is None or itemtype in INVENTORY_TYPES  # unknown type: assume stock


def resolve_return(ret: ReturnRec, maps: Mappings, ref: ReferenceData, *,
                   write_off_account: str = DEFAULT_WRITE_OFF_ACCOUNT,
                   tax_tolerance_cents: int = 1) -> ReturnRefs | Rejection:
    """Validate, then resolve every NetSuite id the return needs, or the first rule broken."""
    rejection = validate_return(ret)
    if rejection is not None:
        return rejection
    store = resolve_store(ret["store_id"], maps)
    if isinstance(store, Rejection):
        return store
    # rule_location and resolve_item read only store_id / sku and line_no.
    rejection = rule_location(cast(SaleRec, ret), store, ref)
    if rejection is not None:
        return rejection
    items: list[str] = []
    locations: list[str] = []
    write_off: list[bool] = []
    taxes: list[str | None] = []
    for line in ret["lines"]:
        location = _restock_location(line.get("restock_location"), line["line_no"], store, maps)
        if isinstance(location, Rejection):
            return location
        item = resolve_item(cast(SaleLineRec, line), location, maps, ref)
        if isinstance(item, Rejection):
            return item
        tax = _tax_code(line.get("tax_code"), line["refund_amount"], line["tax_refund_amount"],
                        f"line {line['line_no']} ({line['sku']})", ref, tax_tolerance_cents)
        if isinstance(tax, Rejection):
            return tax
        items.append(item)
        locations.append(location)
        taxes.append(tax)
        write_off.append(line.get("disposition", "RESTOCK") != "RESTOCK"
                         and _is_stock(item, line["sku"], maps, ref))
    ex_items: list[str] = []
    ex_taxes: list[str | None] = []
    for ex in ret.get("exchange_lines") or []:
        item = resolve_item(cast(SaleLineRec, ex), store.location, maps, ref)
        if isinstance(item, Rejection):
            return item
        discount = ex.get("discount_amount") or Decimal(0)
        taxable = cents(ex["quantity"] * ex["unit_price"]) - discount
        tax = _tax_code(ex.get("tax_code"), taxable, ex["tax_amount"],
                        f"exchange line {ex['line_no']} ({ex['sku']})", ref, tax_tolerance_cents)
        if isinstance(tax, Rejection):
            return tax
        ex_items.append(item)
        ex_taxes.append(tax)
    discounts = sum((ex.get("discount_amount") or Decimal(0)
                     for ex in ret.get("exchange_lines") or []), Decimal(0))
    discount_item = maps.discount_item
    if discounts > 0 and not usable_item(discount_item, ref):
        return reject(Stage.ENRICH, ReasonCode.DISCOUNT_UNMAPPED, "discount.item",
                      f"the exchange has {discounts} of discounts but no usable discount item",
                      discount_item=discount_item, discount_total=discounts,
                      mappings_version=maps.version)
    tender_methods: list[str] = []
    for tender in ret.get("refund_tenders") or []:
        method = resolve_tender(tender["tender_type"], maps, ref)
        if isinstance(method, Rejection):
            return method
        tender_methods.append(method)
    settlement = _settlement_method(ret, tender_methods, maps, ref)
    if isinstance(settlement, Rejection):
        return settlement
    # Never a new customer: a return is no reason to open an account.
    known = match_known(ret["customer"], maps, ref)
    rule, customer = known if known is not None else ("guest_fallback", None)
    original, types = original_ref(ret)
    return ReturnRefs(store.location, store.subsidiary, items, locations, write_off, taxes,
                      ex_items, ex_taxes, settlement, customer, rule, maps.guest_customer,
                      original, types, discount_item, write_off_account, maps.version,
                      *_tax_model(maps, store.subsidiary))


def _tax_model(maps: Mappings, subsidiary: str) -> tuple[str, str | None]:
    setup = tax_setup(maps.document.get("tax"), subsidiary)
    return setup.model, setup.tax_type
