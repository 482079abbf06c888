"""The dead-letter reason catalogue: stable codes, what each means and what to do.

Codes are part of the public contract (DLQ headers, metrics labels, `tillbridge dlq` filters):
never rename one; add a new code instead. ``tillbridge reasons`` prints this table and the
README's copy is checked against it by a test.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    stage: str
    meaning: str
    cause: str
    fix: str
    #: True when replaying the unchanged record can succeed once something outside it is fixed.
    replayable: bool


_CATALOGUE = (
    Reason("not_avro", "decode", "The value is not in Confluent Avro wire format.",
           "A producer wrote JSON/plain bytes, or a truncated message.",
           "Fix the producer; the original bytes are in the DLQ record for inspection.", False),
    Reason("unknown_schema_id", "decode", "The schema id in the message is not in the registry.",
           "Producer registered against another registry, or the registry lost its data.",
           "Point the producer and worker at the same registry; replay.", True),
    Reason("schema_mismatch", "decode", "The body does not decode with the schema its id names.",
           "Corrupted message or a producer bug.", "Fix the producer; discard.", False),
    Reason("missing_field", "validate", "A required field is empty.",
           "POS export left out a field (transaction id, lines, tenders).",
           "Fix the POS export and republish.", False),
    Reason("missing_tax_code", "validate", "A sale line has no tax code.",
           "Item not assigned to a tax group at the till.",
           "Assign the tax group in the POS item master and republish.", False),
    Reason("missing_location", "validate", "The sale names no store.",
           "Register not configured with a store code.",
           "Configure the register's store code and republish.", False),
    Reason("invalid_amount", "validate", "A quantity is not positive or a price/amount negative.",
           "Till bug or a manual override.", "Correct the sale at the POS and republish.", False),
    Reason("totals_mismatch", "validate",
           "Lines - discounts + tax does not equal the total, to the cent.",
           "Rounding bug or a tampered/partial receipt.",
           "Compare the receipt with the DLQ record's rule inputs; fix the POS.", False),
    Reason("tender_mismatch", "validate", "Tenders do not add up to the sale total.",
           "Missing tender line (failed card retried as cash) or change not deducted.",
           "Correct the tenders at the POS and republish.", False),
    Reason("unknown_store", "enrich", "The store code has no NetSuite location mapping.",
           "New store not yet added to the mappings file.",
           "Add the store to the mappings file, then `tillbridge dlq replay`.", True),
    Reason("unknown_sku", "enrich", "A line's SKU is not a NetSuite item.",
           "Item not yet created in NetSuite or a mistyped SKU (see closest match).",
           "Create/map the item in NetSuite, then replay.", True),
    Reason("inactive_item", "enrich", "A line's NetSuite item is inactive.",
           "Item retired in NetSuite but still sold at the till.",
           "Reactivate or remap the item, then replay.", True),
    Reason("unknown_tender", "enrich", "A tender code maps to no NetSuite payment method.",
           "New tender type at the till.", "Add the tender to the mappings file, then replay.",
           True),
    Reason("netsuite_rejected", "sink", "NetSuite refused the record (4xx validation error).",
           "Reference data changed after enrichment, or a field NetSuite requires.",
           "Read o:errorDetails in the headers, fix the data in NetSuite, then replay.", True),
    Reason("netsuite_auth", "sink", "NetSuite refused the credentials (401/403).",
           "Expired or revoked token, wrong account id or role without permission.",
           "Fix the NETSUITE_* credentials or role, restart, then replay the DLQ.", True),
    Reason("netsuite_unavailable", "sink",
           "NetSuite kept failing (429/5xx/timeouts) past the retry budget.",
           "Outage or sustained governance limits.",
           "Check NetSuite status and the concurrency share; replay.", True),
    Reason("internal_error", "any", "tillbridge itself failed on this record.",
           "A bug: the record did not fit an assumption in the code.",
           "Report it with the DLQ record; replay after the fix.", True),
)

CATALOGUE: dict[str, Reason] = {r.code: r for r in _CATALOGUE}


def reason(code: str) -> Reason:
    """Look up a code; unknown codes are a programming error, caught by the tests."""
    return CATALOGUE[code]
