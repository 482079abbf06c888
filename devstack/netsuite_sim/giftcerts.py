"""Gift certificates: the liability a sold gift card is, and its redemptions.

NetSuite facts modelled (reference §5.1, §5.2, §5.3): a ``giftCertificate`` is read-only
through REST; it is created by selling a Gift Certificate item (item lines carry
``giftCertNumber``, ``giftCertRecipientName``, ``giftCertRecipientEmail``, ``giftCertFrom``,
``giftCertMessage``); a gift card tendered on a sale is a ``giftCertRedemption`` line
``{authCode: ref giftCertificate, authCodeApplied}`` and the body's ``giftCertApplied`` is
their sum. The certificate's remaining amount is what was sold less every redemption;
NetSuite refuses a redemption above it, or above the sale's total.

Certificates sold before go-live come from the seed (``gift_certificates``). The SuiteQL
table name and its columns (``giftcertificate``: ``giftcertcode``, ``originalamount``,
``amountremaining``) follow the record's field names; they are not in the reference [U].
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tillbridge.devstack.netsuite_sim.errors import SimError, invalid_value, required, user_error
from tillbridge.devstack.netsuite_sim.records import money, normalize_ref, to_decimal
from tillbridge.devstack.netsuite_sim.store import Record, Store
from tillbridge.devstack.netsuite_sim.txn import SELF_ID, ZERO, dec, request_lines

GROUP = "giftcertificate"
TYPE = "giftCertificate"
GIFT_ITEM = "GiftCert"
REDEEMING = ("cashSale", "invoice")  # records that take a giftCertRedemption sublist
_REDEEM_LINE = frozenset({"authCode", "authCodeApplied", "line", "links", "giftCertAvailable"})
SOLD_ON = "_soldOn"  # internal: the sale that created the certificate
COLUMNS = ("id", "giftcertcode", "originalamount", "amountremaining", "name", "email",
           "sender", "expirationdate")


def read_only(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """Create and update are refused: the record comes from selling a gift certificate item."""
    raise SimError(400, "USER_ERROR", "The gift certificate record is read-only; it is created "
                   "by selling a Gift Certificate item.")


def by_code(store: Store) -> dict[str, Record]:
    """Certificates by code (codes are matched case-insensitively, as the UI does)."""
    return store.index("giftcert-codes", lambda s: {
        str(r.fields.get("giftCertCode", "")).lower(): r for r in s.records(GROUP, TYPE)},
        [(GROUP, TYPE)])


def redeemed(store: Store, cert_id: str) -> Decimal:
    """Redeemed from a certificate by every record but the one being validated."""
    me = SELF_ID.get()
    uses = store.index("giftcert-uses", _uses, [("transaction", t) for t in REDEEMING])
    return sum((amount for rid, amount in uses.get(cert_id, ()) if rid != me), ZERO)


def _uses(store: Store) -> dict[str, list[tuple[str, Decimal]]]:
    out: dict[str, list[tuple[str, Decimal]]] = {}
    for record_type in REDEEMING:
        for rec in store.records("transaction", record_type):
            for line in (rec.fields.get("giftCertRedemption") or {}).get("items", []):
                cert = str((line.get("authCode") or {}).get("id"))
                out.setdefault(cert, []).append((rec.id, dec(line.get("authCodeApplied"))))
    return out


def remaining(store: Store, cert: Record) -> Decimal:
    return dec(cert.fields.get("originalAmount")) - redeemed(store, cert.id)


def derive(store: Store, cert: Record) -> dict[str, Any]:
    # The selling transaction ("soldon") is not accessible through REST (reference §5.1).
    shown = {k: v for k, v in cert.fields.items() if k != SOLD_ON}
    return {**shown, "amountRemaining": money(remaining(store, cert))}


def check_redemptions(store: Store, out: dict[str, Any]) -> None:
    """Validate ``giftCertRedemption`` against the priced record; sets ``giftCertApplied``."""
    applied = ZERO
    kept: list[dict[str, Any]] = []
    for base, line in request_lines(out, "giftCertRedemption", _REDEEM_LINE, need=False):
        if line.get("authCode") is None:
            raise required("Gift Certificate", f"{base}.authCode")
        line["authCode"] = normalize_ref(store, TYPE, line["authCode"], f"{base}.authCode")
        cert = store.get(GROUP, TYPE, line["authCode"]["id"])
        if cert is None:
            raise invalid_value(line["authCode"]["id"], "authCode", f"{base}.authCode")
        amount = to_decimal(line.get("authCodeApplied"), f"{base}.authCodeApplied")
        left = remaining(store, cert) - sum(
            (dec(k["authCodeApplied"]) for k in kept if k["authCode"] == line["authCode"]), ZERO)
        if amount <= 0 or amount > left:
            raise user_error(f"The amount applied ({amount}) exceeds the gift certificate's "
                             f"remaining amount ({left}).", f"{base}.authCodeApplied")
        kept.append({"authCode": line["authCode"], "authCodeApplied": money(amount)})
        applied += amount
    if not kept:
        out.pop("giftCertRedemption", None)
        out.pop("giftCertApplied", None)
        return
    if applied > dec(out.get("total")):
        raise user_error("The gift certificates applied exceed the total.", "giftCertRedemption")
    out["giftCertRedemption"] = {"items": kept}
    out["giftCertApplied"] = money(applied)


def check_sold(store: Store, out: dict[str, Any]) -> None:
    """Gift certificate item lines name a new, unique code and a recipient."""
    codes = by_code(store)
    seen: set[str] = set()
    for index, line in enumerate((out.get("item") or {}).get("items", [])):
        item = store.items.get(str((line.get("item") or {}).get("id")), {})
        if item.get("itemtype") != GIFT_ITEM:
            continue
        base = f"item.items[{index}]"
        code = str(line.get("giftCertNumber") or "")
        if not code:
            raise required("Gift Certificate Code", f"{base}.giftCertNumber")
        if not line.get("giftCertRecipientName"):
            raise required("To (Recipient Name)", f"{base}.giftCertRecipientName")
        issued = codes.get(code.lower())
        me = SELF_ID.get()  # set while a stored sale is updated: its own certificates
        mine = issued is not None and me is not None and issued.fields.get(SOLD_ON) == me
        if code.lower() in seen or (issued is not None and not mine):
            raise user_error(f"Gift certificate code {code} is already in use.",
                             f"{base}.giftCertNumber")
        seen.add(code.lower())


def issue(store: Store, record: Record) -> None:
    """A stored sale's gift certificate lines become certificates (the liability)."""
    if record.type not in REDEEMING:
        return
    for line in (record.fields.get("item") or {}).get("items", []):
        item = store.items.get(str((line.get("item") or {}).get("id")), {})
        if item.get("itemtype") != GIFT_ITEM:
            continue
        fields = {"giftCertCode": line.get("giftCertNumber"), "originalAmount": line.get("amount"),
                  "name": line.get("giftCertRecipientName"),
                  "email": line.get("giftCertRecipientEmail"), "sender": line.get("giftCertFrom"),
                  "message": line.get("giftCertMessage"), "item": dict(line["item"]),
                  SOLD_ON: record.id}
        store.put(Record(TYPE, store.new_id(GROUP), fields), GROUP)


def seed(store: Store, rows: list[dict[str, Any]]) -> None:
    """Certificates sold before go-live (the seed's ``gift_certificates``)."""
    for row in rows:
        fields = {k: v for k, v in row.items() if k != "id"}
        store.put(Record(TYPE, str(row["id"]), fields), GROUP)


def rows(store: Store) -> list[dict[str, Any]]:
    """The SuiteQL ``giftcertificate`` table."""
    return [{"id": r.id, "giftcertcode": r.fields.get("giftCertCode"),
             "originalamount": r.fields.get("originalAmount"),
             "amountremaining": money(remaining(store, r)), "name": r.fields.get("name"),
             "email": r.fields.get("email"), "sender": r.fields.get("sender"),
             "expirationdate": r.fields.get("expirationDate")}
            for r in store.records(GROUP, TYPE)]
