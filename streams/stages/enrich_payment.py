"""Validate and resolve a POS payment event (``payment.avsc``) for ``ledger.payment``. Pure.

Only APPROVED and REFUNDED events can become NetSuite records, so only they are held to the
mapping rules: a declined card on a tender nobody mapped is still an attempt worth
auditing, not a dead letter. Every status must still name its payment and transaction.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from tillbridge.streams.ledger.ids import external_id, sale_id
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages.enrich import resolve_store, resolve_tender
from tillbridge.streams.stages.reasons import ReasonCode, Stage
from tillbridge.streams.stages.records import PaymentRec, Rejection, reject

#: Statuses that move money NetSuite has to know about; the rest are audited and skipped.
POSTING_STATUSES = frozenset({"APPROVED", "REFUNDED"})


@dataclass(frozen=True, slots=True)
class PaymentRefs:
    """NetSuite ids and the externalIds a payment event is posted and looked up by."""

    status: str
    payment: str  # externalId of this payment's own record (kind ``pay``)
    sale: str  # the POS transaction as a sale (cashSale / salesOrder / invoice)
    exchange: str  # the POS transaction as a return's exchange sale (an uplift payment)
    refund: str  # the POS transaction as a return (a refund tender of a return)
    original_payment: str | None  # REFUNDED: the payment record being refunded
    location: str | None = None
    subsidiary: str | None = None
    payment_method: str | None = None
    mappings_version: int = 0

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PaymentRefs:
        return cls(**json.loads(raw))


def validate_payment(pay: PaymentRec) -> Rejection | None:
    """Ids every status needs; a positive amount and, for a refund, what it refunds."""
    for name in ("payment_id", "pos_transaction_id", "register_id", "business_date", "status",
                 "tender_type"):
        if not pay.get(name):
            return reject(Stage.VALIDATE, ReasonCode.MISSING_FIELD, "required", f"{name} is empty",
                          field=name, payment_id=pay.get("payment_id"))
    if not pay.get("store_id"):
        return reject(Stage.VALIDATE, ReasonCode.MISSING_LOCATION, "required.store",
                      "store_id is empty", payment_id=pay["payment_id"])
    if pay["status"] not in POSTING_STATUSES:
        return None
    if pay["amount"] <= 0:
        return reject(Stage.VALIDATE, ReasonCode.INVALID_AMOUNT, "amounts.sane",
                      f"{pay['status']} payment amount must be > 0", amount=pay["amount"],
                      payment_id=pay["payment_id"])
    if pay["status"] == "REFUNDED" and not pay.get("original_payment_id"):
        return reject(Stage.VALIDATE, ReasonCode.MISSING_FIELD, "required.original_payment_id",
                      "a REFUNDED payment names no original_payment_id",
                      field="original_payment_id", payment_id=pay["payment_id"])
    return None


def resolve_payment(pay: PaymentRec, maps: Mappings,
                    ref: ReferenceData) -> PaymentRefs | Rejection:
    """Validate, then map store and tender for the statuses that post; ids for all."""
    rejection = validate_payment(pay)
    if rejection is not None:
        return rejection
    store_id, txn = pay["store_id"], pay["pos_transaction_id"]
    original = pay.get("original_payment_id")
    refs = PaymentRefs(
        pay["status"], external_id("pay", store_id, pay["payment_id"]), sale_id(store_id, txn),
        external_id("exch", store_id, txn), external_id("rtn", store_id, txn),
        external_id("pay", store_id, original) if original else None,
        mappings_version=maps.version)
    if pay["status"] not in POSTING_STATUSES:
        return refs
    store = resolve_store(store_id, maps)
    if isinstance(store, Rejection):
        return store
    method = resolve_tender(pay["tender_type"], maps, ref)
    if isinstance(method, Rejection):
        return method
    return replace(refs, location=store.location, subsidiary=store.subsidiary,
                   payment_method=method)
