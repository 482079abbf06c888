"""Reference data the enrich stage resolves against: mappings files and NetSuite snapshots.

Mappings (store -> location, tender -> payment method) are versioned JSON files that NetSuite
does not hold. Items and customers come from NetSuite over SuiteQL. A worker refuses to
enrich against an empty snapshot: `ReferenceData.ready` gates the readiness endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol


class MappingError(ValueError):
    """A mappings file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class StoreMapping:
    location: str
    subsidiary: str
    tax_code: str | None = None


@dataclass(frozen=True)
class Mappings:
    version: int
    stores: dict[str, StoreMapping]
    tenders: dict[str, str]
    guest_customer: str
    discount_item: str | None = None
    source: str = "<memory>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> Mappings:
        """Load and check a mappings file (default: the packaged example)."""
        if path is None:
            ref = resources.files("tillbridge.connectors").joinpath("data/mappings.json")
            text, source = ref.read_text(encoding="utf-8"), "packaged mappings.json"
        else:
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MappingError(f"{source}: not JSON: {exc}") from exc
        return cls.from_dict(doc, source)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "<memory>") -> Mappings:
        for key in ("version", "stores", "tenders", "guest_customer"):
            if key not in doc:
                raise MappingError(f"{source}: missing top-level key {key!r}")
        stores = {}
        for code, entry in doc["stores"].items():
            if not isinstance(entry, dict) or not entry.get("location"):
                raise MappingError(f"{source}: stores.{code} needs a 'location' id")
            stores[code] = StoreMapping(str(entry["location"]), str(entry.get("subsidiary", "1")),
                                        entry.get("tax_code"))
        tenders = {}
        for code, method in doc["tenders"].items():
            if not method:
                raise MappingError(f"{source}: tenders.{code} has no payment method id")
            tenders[code] = str(method)
        discount = doc.get("discount_item")
        return cls(int(doc["version"]), stores, tenders, str(doc["guest_customer"]),
                   str(discount) if discount else None, source)


@dataclass(frozen=True, slots=True)
class ItemRef:
    id: str
    sku: str
    active: bool


class SuiteQL(Protocol):
    async def suiteql(self, query: str, limit: int = 1000) -> list[dict[str, Any]]: ...


@dataclass
class ReferenceData:
    """NetSuite reference snapshot used by enrich. Empty until `load` completes."""

    items: dict[str, ItemRef] = field(default_factory=dict)
    customers_by_loyalty: dict[str, str] = field(default_factory=dict)
    ready: bool = False

    async def load(self, client: SuiteQL) -> None:
        rows = await client.suiteql("SELECT id, itemid, isinactive FROM item")
        self.items = {r["itemid"]: ItemRef(r["id"], r["itemid"], r.get("isinactive") != "T")
                      for r in rows}
        custs = await client.suiteql(
            "SELECT id, custentity_loyalty_id FROM customer")
        self.customers_by_loyalty = {
            r["custentity_loyalty_id"]: r["id"] for r in custs if r.get("custentity_loyalty_id")}
        self.ready = bool(self.items)
