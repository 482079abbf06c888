"""Reference data the POS simulator sells from: the NetSuite sandbox seed and the mappings.

Both files ship as package data of ``tillbridge.connectors`` (``data/*.json``),
so the generator sells exactly what the NetSuite simulator knows about and a
clean generated sale always enriches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any


def load_data(file_name: str) -> dict[str, Any]:
    """Parsed JSON of a file in ``tillbridge.connectors`` ``data/`` (fresh copy each call)."""
    pkg = resources.files("tillbridge.connectors").joinpath("data", file_name)
    return json.loads(pkg.read_text(encoding="utf-8"))


#: NetSuite item types that are accounting lines, not goods a till scans.
_NOT_MERCHANDISE = frozenset(
    {"Discount", "Subtotal", "Markup", "Payment", "Description", "OthCharge", "GiftCert"}
)


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    name: str
    base_price: Decimal


@dataclass(frozen=True, slots=True)
class Store:
    """A POS store: its code, NetSuite location, tax code and what it stocks."""

    code: str
    location_id: str
    tax_code: str  # the tax code's itemid, as a till prints it (e.g. TAX-CA-SF)
    tax_rate: Decimal  # percent
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    loyalty_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None


@dataclass(frozen=True, slots=True)
class Reference:
    stores: tuple[Store, ...]
    customers: tuple[Customer, ...]
    employees: tuple[str, ...]  # POS employee ids
    known_skus: frozenset[str]  # every SKU NetSuite has, active or not
    tenders: tuple[str, ...]  # POS tender codes with a payment-method mapping


@cache
def reference() -> Reference:
    """The sandbox as the generator needs it (cached; immutable)."""
    sandbox = load_data("sandbox.json")
    mappings = load_data("mappings.json")
    tax_by_id = {t["id"]: t for t in sandbox["tax_codes"] if not t.get("isinactive")}
    locations = {
        loc["store_code"]: loc
        for loc in sandbox["locations"]
        if not loc.get("isinactive") and loc.get("makeInventoryAvailableStore")
    }
    stores = []
    for code, mapping in sorted(mappings["stores"].items()):
        location = locations.get(code)
        tax = tax_by_id.get(mapping.get("tax_code", ""))
        if location is None or tax is None:
            continue
        items = tuple(
            Item(i["itemid"], i.get("displayname") or i["itemid"], Decimal(i["basePrice"]))
            for i in sandbox["items"]
            if not i.get("isinactive")
            and i.get("itemtype", "InvtPart") not in _NOT_MERCHANDISE
            and Decimal(i.get("basePrice", "0")) > 0
            and location["id"] in i.get("locations", [])
        )
        if items:
            stores.append(Store(code, location["id"], tax["itemid"], Decimal(tax["rate"]), items))
    customers = tuple(
        Customer(
            c["id"],
            c["loyalty_id"],
            c.get("email"),
            c.get("phone"),
            c.get("firstname"),
            c.get("lastname"),
        )
        for c in sandbox["customers"]
        if c.get("loyalty_id") and not c.get("isinactive")
    )
    employees = tuple(
        e["pos_employee_id"] for e in sandbox["employees"] if e.get("pos_employee_id")
    )
    return Reference(
        stores=tuple(stores),
        customers=customers,
        employees=employees,
        known_skus=frozenset(i["itemid"] for i in sandbox["items"]),
        tenders=tuple(mappings["tenders"]),
    )
