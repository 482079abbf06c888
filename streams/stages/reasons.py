"""The dead-letter reason catalogue: stable codes, what each means and what to do.

Codes are part of the public contract (DLQ headers, metrics labels, `tillbridge dlq` filters):
never rename one; add a new code instead. ``tillbridge reasons`` prints this table and the
README's copy is checked against it by a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tillbridge.connectors.kafka.topics import Stage

__all__ = ["CATALOGUE", "Reason", "ReasonCode", "Stage", "markdown_table", "reason"]


class ReasonCode(StrEnum):
    """Every dead-letter reason code. A ``StrEnum`` so a member *is* its code string: headers,
    metric labels and JSON carry the plain code, and plain header text looks one up. A new
    code needs a catalogue row below (a test checks both ways)."""

    NOT_AVRO = "not_avro"
    UNKNOWN_SCHEMA_ID = "unknown_schema_id"
    SCHEMA_MISMATCH = "schema_mismatch"
    MISSING_FIELD = "missing_field"
    MISSING_TAX_CODE = "missing_tax_code"
    MISSING_LOCATION = "missing_location"
    INVALID_AMOUNT = "invalid_amount"
    TOTALS_MISMATCH = "totals_mismatch"
    TENDER_MISMATCH = "tender_mismatch"
    UNKNOWN_STORE = "unknown_store"
    SETTLEMENT_UNMAPPED = "settlement_unmapped"
    UNKNOWN_SKU = "unknown_sku"
    INACTIVE_ITEM = "inactive_item"
    UNKNOWN_TENDER = "unknown_tender"
    INVALID_DISCOUNT = "invalid_discount"
    UNKNOWN_VARIANT = "unknown_variant"
    ITEM_NOT_STOCKED = "item_not_stocked"
    INVALID_LOCATION = "invalid_location"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    UNKNOWN_TAX_CODE = "unknown_tax_code"
    INACTIVE_TAX_CODE = "inactive_tax_code"
    TAX_MISMATCH = "tax_mismatch"
    DISCOUNT_UNMAPPED = "discount_unmapped"
    NETSUITE_REJECTED = "netsuite_rejected"
    NETSUITE_AUTH = "netsuite_auth"
    NETSUITE_UNAVAILABLE = "netsuite_unavailable"
    ORPHAN_DEPENDENCY = "orphan_dependency"
    INTERNAL_ERROR = "internal_error"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    CONFLICTING_RESEND = "conflicting_resend"
    UNKNOWN_MOVEMENT_REASON = "unknown_movement_reason"
    WINDOW_CONFLICT = "window_conflict"
    STORE_CREDIT_UNAVAILABLE = "store_credit_unavailable"
    GIFT_CARD_UNAVAILABLE = "gift_card_unavailable"
    WINDOW_EXPIRED = "window_expired"


@dataclass(frozen=True, slots=True)
class Reason:
    """One catalogue row: what a code means and what an operator should do about it."""

    code: ReasonCode
    stage: Stage
    meaning: str
    cause: str
    fix: str
    #: True when replaying the unchanged record can succeed once something outside it is fixed.
    replayable: bool


_CATALOGUE = (
    Reason(ReasonCode.NOT_AVRO, Stage.DECODE, "The value is not in Confluent Avro wire format.",
           "A producer wrote JSON/plain bytes, or a truncated message.",
           "Fix the producer; the original bytes are in the DLQ record for inspection.", False),
    Reason(ReasonCode.UNKNOWN_SCHEMA_ID, Stage.DECODE,
           "The schema id in the message is not in the registry.",
           "Producer registered against another registry, or the registry lost its data.",
           "Point the producer and worker at the same registry; replay.", True),
    Reason(ReasonCode.SCHEMA_MISMATCH, Stage.DECODE,
           "The body does not decode with the schema its id names.",
           "Corrupted message or a producer bug.", "Fix the producer; discard.", False),
    Reason(ReasonCode.MISSING_FIELD, Stage.VALIDATE, "A required field is empty.",
           "POS export left out a field (transaction id, lines, tenders).",
           "Fix the POS export and republish.", False),
    Reason(ReasonCode.MISSING_TAX_CODE, Stage.VALIDATE, "A sale line has no tax code.",
           "Item not assigned to a tax group at the till.",
           "Assign the tax group in the POS item master and republish.", False),
    Reason(ReasonCode.MISSING_LOCATION, Stage.VALIDATE, "The sale names no store.",
           "Register not configured with a store code.",
           "Configure the register's store code and republish.", False),
    Reason(ReasonCode.INVALID_AMOUNT, Stage.VALIDATE,
           "A quantity is not positive or a price/amount negative.",
           "Till bug or a manual override.", "Correct the sale at the POS and republish.", False),
    Reason(ReasonCode.TOTALS_MISMATCH, Stage.VALIDATE,
           "Lines - discounts + tax does not equal the total, to the cent.",
           "Rounding bug or a tampered/partial receipt.",
           "Compare the receipt with the DLQ record's rule inputs; fix the POS.", False),
    Reason(ReasonCode.TENDER_MISMATCH, Stage.VALIDATE, "Tenders do not add up to the sale total.",
           "Missing tender line (failed card retried as cash) or change not deducted.",
           "Correct the tenders at the POS and republish.", False),
    Reason(ReasonCode.UNKNOWN_STORE, Stage.ENRICH,
           "The store code has no NetSuite location mapping.",
           "New store not yet added to the mappings file.",
           "Add the store to the mappings file, then `tillbridge dlq replay`.", True),
    Reason(ReasonCode.SETTLEMENT_UNMAPPED, Stage.ENRICH,
           "A register close cannot be posted: the mappings file has no usable `settlement` "
           "section (bank and over/short accounts, mode).",
           "Settlement accounts not configured yet, or a mode other than deposit/journal.",
           "Add `settlement` to the mappings file (see the example), then replay.", True),
    Reason(ReasonCode.UNKNOWN_SKU, Stage.ENRICH, "A line's SKU is not a NetSuite item.",
           "Item not yet created in NetSuite or a mistyped SKU (see closest match).",
           "Create/map the item in NetSuite, then replay.", True),
    Reason(ReasonCode.INACTIVE_ITEM, Stage.ENRICH, "A line's NetSuite item is inactive.",
           "Item retired in NetSuite but still sold at the till.",
           "Reactivate or remap the item, then replay.", True),
    Reason(ReasonCode.UNKNOWN_TENDER, Stage.ENRICH,
           "A tender code maps to no NetSuite payment method.",
           "New tender type at the till.", "Add the tender to the mappings file, then replay.",
           True),
    # -- added with the business rules (issue: customer, item/location, tender, tax,
    # -- discount and promotion rules). Appended, never renamed.
    Reason(ReasonCode.INVALID_DISCOUNT, Stage.VALIDATE,
           "A discount is negative, or larger than the amount it discounts.",
           "Coupon applied to the wrong line, or stacked promotions exceeding the price.",
           "Correct the discount at the POS and republish.", False),
    Reason(ReasonCode.UNKNOWN_VARIANT, Stage.ENRICH,
           "A SKU mapped under `skus` names a NetSuite itemid that does not exist.",
           "Variant (matrix child) not created yet, renamed, or a typo in the mapping "
           "(see closest match).",
           "Fix the `skus` entry in the mappings file or create the variant, then replay.",
           True),
    Reason(ReasonCode.ITEM_NOT_STOCKED, Stage.ENRICH,
           "A line's item is not stocked at the sale's NetSuite location.",
           "The item's Locations sublist lacks the store's location.",
           "Add the location to the item in NetSuite (or fix the store mapping), then replay.",
           True),
    Reason(ReasonCode.INVALID_LOCATION, Stage.ENRICH,
           "The store's mapped NetSuite location is missing or inactive.",
           "Location deactivated in NetSuite, or a wrong id in the store mapping.",
           "Reactivate the location or fix the store's mapping, then replay.", True),
    Reason(ReasonCode.INVALID_PAYMENT_METHOD, Stage.ENRICH,
           "A tender maps to a payment method NetSuite does not have or has inactive.",
           "Payment method retired in NetSuite, or a wrong id in the tender mapping.",
           "Reactivate the payment method or remap the tender, then replay.", True),
    Reason(ReasonCode.UNKNOWN_TAX_CODE, Stage.ENRICH,
           "A line's tax code is not a NetSuite tax code.",
           "POS tax group not set up as a NetSuite sales tax item, or spelt differently.",
           "Create the tax code in NetSuite or fix the POS tax group, then replay.", True),
    Reason(ReasonCode.INACTIVE_TAX_CODE, Stage.ENRICH, "A line's tax code is inactive in NetSuite.",
           "Tax code retired in NetSuite (rate change) while the till still uses it.",
           "Reactivate the tax code or update the POS tax group, then replay.", True),
    Reason(ReasonCode.TAX_MISMATCH, Stage.ENRICH,
           "A line's tax differs from its taxable amount at the store's jurisdiction rate "
           "by more than the tolerance.",
           "Wrong rate at the till, or a stale rate or store tax code in NetSuite/mappings.",
           "Compare rate_expected with the till's rate in the DLQ inputs; fix the side that "
           "is wrong, then replay (or republish).", True),
    Reason(ReasonCode.DISCOUNT_UNMAPPED, Stage.ENRICH,
           "The sale has discounts but no usable NetSuite discount item to book them.",
           "`discount_item` unset in the mappings file, or that item missing or inactive.",
           "Set or repair `discount_item`, then replay.", True),
    Reason(ReasonCode.NETSUITE_REJECTED, Stage.SINK,
           "NetSuite refused the record (4xx validation error).",
           "Reference data changed after enrichment, or a field NetSuite requires.",
           "Read o:errorDetails in the headers, fix the data in NetSuite, then replay.", True),
    Reason(ReasonCode.NETSUITE_AUTH, Stage.SINK, "NetSuite refused the credentials (401/403).",
           "Expired or revoked token, wrong account id or role without permission.",
           "Fix the NETSUITE_* credentials or role, restart, then replay the DLQ.", True),
    Reason(ReasonCode.NETSUITE_UNAVAILABLE, Stage.SINK,
           "NetSuite kept failing this record (5xx/timeouts) past the retry budget while "
           "answering other requests.",
           "A record NetSuite cannot process (a script or server error on it). An outage "
           "pauses the sink instead and never dead-letters.",
           "Check the record in NetSuite's logs (the error details are in the headers); "
           "replay.", True),
    Reason(ReasonCode.ORPHAN_DEPENDENCY, Stage.SINK,
           "The NetSuite record this event depends on (a refund's sale, a payment's order, a "
           "fulfilment's order) did not appear within the parking timeout.",
           "The original is dead-lettered or was never published, or the event names the "
           "wrong original.",
           "Fix and replay the original first (see the dependency header), then replay this "
           "record.", True),
    Reason(ReasonCode.INTERNAL_ERROR, Stage.ANY, "tillbridge itself failed on this record.",
           "A bug: the record did not fit an assumption in the code.",
           "Report it with the DLQ record; replay after the fix.", True),
    # -- added with the poison-record hardening: a dead letter that cannot hold the original.
    Reason(ReasonCode.PAYLOAD_TOO_LARGE, Stage.DECODE,
           "The record (or its dead letter) is larger than the DLQ topic accepts: the DLQ "
           "record holds its coordinates, size, SHA-256 and first bytes, not the original.",
           "A producer published an oversized value, key or headers (e.g. a whole journal "
           "in one sale), or the DLQ topic's max.message.bytes is below the input's.",
           "Fetch the original from the source topic at the coordinates in the headers "
           "(check the SHA-256), fix the producer and republish.", False),
    # -- a POS transaction id sent again with other content: never dropped as a duplicate.
    Reason(ReasonCode.CONFLICTING_RESEND, Stage.SINK,
           "A POS transaction id already posted came again with a different basket, tenders "
           "or totals; the posted record was left as it was.",
           "The till edited a completed sale and re-sent it under the same id, or two tills "
           "share a transaction numbering.",
           "Compare the DLQ record's inputs (posted vs resent total, lines added/removed/"
           "changed). If the posted version is wrong, void or credit it at the POS and ring "
           "the sale again under a new id (or publish the change as a return/amendment); "
           "do not replay this record.", False),
    # -- added with the window engine (inventory windows).
    Reason(ReasonCode.UNKNOWN_MOVEMENT_REASON, Stage.VALIDATE,
           "An inventory movement's reason is none of SALE, RETURN, SHRINK, DAMAGE, "
           "ADJUSTMENT, FOUND, TRANSFER, RECEIPT.",
           "A new movement type at the POS or store system, or a typo in its export.",
           "Map the movement to a documented reason at the source and republish; a new kind "
           "of movement needs a rule in tillbridge first.", False),
    Reason(ReasonCode.WINDOW_CONFLICT, Stage.SINK,
           "NetSuite already holds this window's record (same externalId) with other "
           "content: the window is never posted again with different content.",
           "The window book was lost and the movements were read again in another "
           "grouping, or someone edited or re-created the record in NetSuite.",
           "Compare the NetSuite record (externalId in the inputs) with this window's "
           "movements; correct the record in NetSuite if it is wrong, then discard these "
           "dead letters, or delete the record and replay them (late: they join the next "
           "open window).", True),
    # -- added with traceable tenders (issue 10, section 2).
    Reason(ReasonCode.STORE_CREDIT_UNAVAILABLE, Stage.SINK,
           "A STORE_CREDIT tender cannot be booked: the customer's open credit in NetSuite "
           "(credit memos not yet applied) is less than the tender. Nothing was written.",
           "The return or goodwill credit that issued the store credit is not in NetSuite "
           "(dead-lettered, still in flight, issued before go-live), or it was issued to "
           "another customer (the sale rang as a walk-in).",
           "Find the credit in the DLQ record's inputs (customer, open credit, tender). Post "
           "or replay the return that issued it, or enter the credit memo for this customer "
           "in NetSuite; then `tillbridge dlq replay`. A sale rung to the wrong customer is "
           "voided and rung again at the POS.", True),
    Reason(ReasonCode.GIFT_CARD_UNAVAILABLE, Stage.SINK,
           "A GIFT_CARD tender cannot be redeemed: NetSuite has no gift certificate with the "
           "card's code, or its remaining balance is less than the tender. Nothing was "
           "written.",
           "The card was sold before go-live or by another channel and never loaded into "
           "NetSuite, its sale is not posted yet, or the till sent no card code.",
           "Check the card code and the balance in the DLQ record's inputs. Post the card's "
           "sale (or load the card as a gift certificate in NetSuite), then `tillbridge dlq "
           "replay`; a card with no code is fixed at the POS and republished.", True),
    Reason(ReasonCode.WINDOW_EXPIRED, Stage.SINK,
           "A windowed event older than its key's retention horizon (latest closed window's "
           "end minus TILLBRIDGE_WINDOW_RETAIN_S) that the window book no longer knows: it "
           "may belong to a forgotten window, so it is not counted again.",
           "A replay or a POS re-send of an event whose window posted long ago, or an "
           "event delayed by more than the retention.",
           "Look up the NetSuite record of its window (externalId from the key and the "
           "event time); if the event is not in it, book it by hand or re-send it with a "
           "current event time; else discard the dead letter.", False),
)

#: Keyed by ``ReasonCode``; typed by ``str`` so code text read back from a header (``tillbridge
#: dlq``) looks a row up directly, as members and their strings hash alike.
CATALOGUE: dict[str, Reason] = {r.code: r for r in _CATALOGUE}


def markdown_table() -> str:
    """The README's reason table, generated so the manual cannot drift from the code."""
    rows = ["| code | stage | meaning | typical cause | what to do | replayable |",
            "|---|---|---|---|---|---|"]
    rows += [f"| `{r.code}` | {r.stage} | {r.meaning} | {r.cause} | {r.fix} | "
             f"{'yes' if r.replayable else 'no'} |" for r in _CATALOGUE]
    return "\n".join(rows)


def reason(code: ReasonCode | str) -> Reason:
    """Look up a code; unknown codes are a programming error, caught by the tests."""
    return CATALOGUE[code]
