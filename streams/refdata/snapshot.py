"""Reference data the enrich stage resolves against: mappings files and NetSuite snapshots.

Mappings (store -> location, tender -> payment method, POS SKU -> variant itemid, POS
promotion code -> discount item, customer strategy) are versioned JSON files that NetSuite
does not hold. Items (with matrix parent/child), stocking and availability, locations,
subsidiaries, payment methods, tax codes, sales reps, promotions, price levels and prices
and customers come from NetSuite over SuiteQL (paged by the client). A worker refuses
to enrich against an empty snapshot: `ReferenceData.ready` gates the readiness endpoint.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

from tillbridge.connectors.netsuite.errors import NetSuiteError

log = logging.getLogger(__name__)


class MappingError(ValueError):
    """A mappings file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class StoreMapping:
    location: str
    subsidiary: str
    tax_code: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerStrategy:
    """Which shoppers become NetSuite customers (seed: create all, above a threshold, or guest).

    ``guest`` with ``enrich`` (the default) books walk-ins to the guest customer and upserts
    identified shoppers (today's behaviour); ``guest`` without ``enrich`` books every shopper
    not already in NetSuite to the guest customer and never updates customers.
    """

    mode: Literal["guest", "create_all", "threshold"] = "guest"
    threshold: Decimal | None = None
    enrich: bool = True
    configured: bool = False

    def describe(self) -> str:
        if self.mode == "create_all":
            text = "create every identified shopper as a customer"
        elif self.mode == "threshold":
            text = f"create a customer only for sales of {self.threshold} or more"
        else:
            text = "book to the guest customer"
            if self.enrich:
                text += ", enrich identified shoppers by loyalty id"
        return text + ("" if self.configured else " (default: not set in mappings)")

    def creates(self, total: Decimal) -> bool:
        """Whether an identified shopper NetSuite does not know becomes a new customer."""
        if self.mode == "create_all":
            return True
        if self.mode == "threshold":
            return self.threshold is not None and total >= self.threshold
        return self.enrich


_MODES = ("guest", "create_all", "threshold")


def _str_map(doc: dict[str, Any], key: str, source: str) -> dict[str, str]:
    raw = doc.get(key) or {}
    if not isinstance(raw, dict) or not all(v for v in raw.values()):
        raise MappingError(f"{source}: {key} must map codes to non-empty values")
    return {str(k): str(v) for k, v in raw.items()}


def _strategy(raw: object, source: str) -> CustomerStrategy:
    if raw is None:
        return CustomerStrategy()
    spec: dict[str, Any] = {"mode": raw} if isinstance(raw, str) else raw  # type: ignore[assignment]
    if not isinstance(spec, dict) or spec.get("mode") not in _MODES:
        raise MappingError(f"{source}: customer_strategy.mode must be one of {', '.join(_MODES)}")
    threshold = None
    if spec["mode"] == "threshold":
        try:
            threshold = Decimal(str(spec.get("threshold", spec.get("amount"))))
        except InvalidOperation:
            threshold = None
        if threshold is None or not threshold.is_finite() or threshold <= 0:
            raise MappingError(f"{source}: customer_strategy threshold needs a positive "
                               "'threshold' amount")
    return CustomerStrategy(spec["mode"], threshold, bool(spec.get("enrich", True)), True)


@dataclass(frozen=True)
class Mappings:
    version: int
    stores: dict[str, StoreMapping]
    tenders: dict[str, str]
    guest_customer: str
    discount_item: str | None = None
    source: str = "<memory>"
    #: POS SKU -> NetSuite itemid, for variants (matrix children) whose itemid differs.
    skus: dict[str, str] = field(default_factory=dict)
    #: POS price tier -> NetSuite price level id or name.
    price_levels: dict[str, str] = field(default_factory=dict)
    customer_strategy: CustomerStrategy = CustomerStrategy()
    #: POS discount/promotion code -> NetSuite discount item id; wins over the promotion's own
    #: discount item (NetSuite reference data) and the catch-all ``discount_item``.
    promotions: dict[str, str] = field(default_factory=dict)
    #: The whole document, for optional sections other modules read themselves (e.g. the
    #: order-side ``locations`` / ``tax_jurisdictions``: ``enrich_order.OrderMappings``).
    document: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Mappings:
        """Load and check a mappings file (default: the packaged example)."""
        if path is None:
            ref = resources.files("tillbridge.connectors").joinpath("data/mappings.json")
            text, source = ref.read_text(encoding="utf-8"), "packaged mappings.json"
        else:
            try:
                text, source = Path(path).read_text(encoding="utf-8"), str(path)
            except OSError as exc:
                raise MappingError(f"{path}: cannot read mappings file: {exc.strerror}") from exc
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MappingError(f"{source}: not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise MappingError(f"{source}: expected a JSON object")
        return cls.from_dict(doc, source)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], source: str = "<memory>") -> Mappings:
        for key in ("version", "stores", "tenders", "guest_customer"):
            if key not in doc:
                raise MappingError(f"{source}: missing top-level key {key!r}")
        for key in ("stores", "tenders"):
            if not isinstance(doc[key], dict):
                raise MappingError(f"{source}: {key} must be an object")
        stores = {}
        for code, entry in doc["stores"].items():
            if not isinstance(entry, dict) or not entry.get("location"):
                raise MappingError(f"{source}: stores.{code} needs a 'location' id")
            tax = entry.get("tax_code")
            stores[code] = StoreMapping(str(entry["location"]), str(entry.get("subsidiary", "1")),
                                        str(tax) if tax else None)
        tenders = {}
        for code, method in doc["tenders"].items():
            if not method:
                raise MappingError(f"{source}: tenders.{code} has no payment method id")
            tenders[code] = str(method)
        discount = doc.get("discount_item")
        return cls(int(doc["version"]), stores, tenders, str(doc["guest_customer"]),
                   str(discount) if discount else None, source,
                   _str_map(doc, "skus", source), _str_map(doc, "price_levels", source),
                   _strategy(doc.get("customer_strategy"), source),
                   _str_map(doc, "promotions", source), dict(doc))

    def itemid(self, sku: str) -> str:
        """The NetSuite itemid a POS SKU sells as (a variant mapping, else the SKU itself)."""
        return self.skus.get(sku, sku)


@dataclass(frozen=True, slots=True)
class ItemRef:
    id: str
    sku: str
    active: bool
    itemtype: str | None = None
    taxschedule: str | None = None
    #: internal id of the matrix parent, for a matrix child (a size/colour variant)
    parent: str | None = None
    #: a matrix parent is a template: sales must book to one of its children
    matrix_parent: bool = False


@dataclass(frozen=True, slots=True)
class PromotionRef:
    """A NetSuite promotion code and the discount item it books to."""

    id: str
    code: str
    name: str
    discount_item: str | None
    active: bool = True


@dataclass(frozen=True, slots=True)
class NamedRef:
    """A location or payment method: enough to say whether it can be used."""

    id: str
    name: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class TaxCodeRef:
    """A sales tax item (legacy tax): ``rate`` is a percentage, as NetSuite shows it."""

    id: str
    itemid: str
    rate: Decimal
    active: bool = True


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """What post-purchase enrichment compares an event's shopper details with."""

    id: str
    loyalty_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class SuiteQL(Protocol):
    async def suiteql(self, query: str, limit: int = 1000) -> list[dict[str, Any]]: ...


def norm_email(value: str | None) -> str | None:
    """Emails match case-insensitively, ignoring surrounding blanks."""
    return value.strip().lower() or None if value else None


def norm_phone(value: str | None) -> str | None:
    """Phones match on their digits; fewer than 7 digits is not a usable key."""
    digits = "".join(ch for ch in value or "" if ch.isdigit())
    return digits if len(digits) >= 7 else None


def _unique_index(pairs: list[tuple[str | None, str]]) -> dict[str, str]:
    """key -> id, leaving out keys shared by several customers (ambiguous: never guessed)."""
    seen: dict[str, str | None] = {}
    for key, cid in pairs:
        if key:
            seen[key] = cid if seen.get(key, cid) == cid else None
    return {k: v for k, v in seen.items() if v is not None}


@dataclass
class ReferenceData:
    """NetSuite reference snapshot used by enrich. Empty until `load` completes.

    Every field is a plain dict. Optional tables that an account does not expose leave
    their dict empty (``item_locations`` None), and the rule that needs them is skipped
    rather than failing every sale.
    """

    items: dict[str, ItemRef] = field(default_factory=dict)
    customers_by_loyalty: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    #: item internal id -> location ids it is stocked at; None when not readable.
    item_locations: dict[str, frozenset[str]] | None = None
    locations: dict[str, NamedRef] = field(default_factory=dict)
    payment_methods: dict[str, NamedRef] = field(default_factory=dict)
    #: keyed by internal id and by itemid (POS lines name the itemid, mappings the id)
    tax_codes: dict[str, TaxCodeRef] = field(default_factory=dict)
    customers_by_email: dict[str, str] = field(default_factory=dict)
    customers_by_phone: dict[str, str] = field(default_factory=dict)
    customers: dict[str, CustomerRef] = field(default_factory=dict)
    subsidiaries: dict[str, NamedRef] = field(default_factory=dict)
    #: POS employee id (custentity_pos_employee_id) -> NetSuite employee id, active reps only
    sales_reps: dict[str, str] = field(default_factory=dict)
    #: promotion code -> promotion (active and inactive: the sink skips inactive ones)
    promotions: dict[str, PromotionRef] = field(default_factory=dict)
    #: price level id -> name
    price_levels: dict[str, str] = field(default_factory=dict)
    #: (item id, price level id) -> unit price
    prices: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    #: item id -> location id -> quantity available (empty when the column is not read)
    item_availability: dict[str, dict[str, Decimal]] = field(default_factory=dict)

    def item_by_id(self, item_id: str) -> ItemRef | None:
        return next((i for i in self.items.values() if i.id == item_id), None)

    async def load(self, client: SuiteQL) -> None:
        """Fetch every table from NetSuite and index it (tests, preflight, one-off tools)."""
        fresh = ReferenceData.from_rows(await fetch_rows(client))
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    @classmethod
    def from_rows(cls, rows: RefRows) -> ReferenceData:
        """Index raw SuiteQL rows by kind (see ``QUERIES``); a kind mapped to None was not
        readable in this account, and the rule that needs it is skipped."""
        ref = cls()
        item_rows = rows.get("item") or []
        # A parent is known from its children's ``parent`` column (matrixtype is not a
        # column every account exposes); an explicit matrixtype is honoured too.
        parents = {str(r["parent"]) for r in item_rows if r.get("parent")}
        ref.items = {r["itemid"]: ItemRef(
            r["id"], r["itemid"], r.get("isinactive") != "T", r.get("itemtype"),
            r.get("taxschedule"), r.get("parent"),
            r["id"] in parents or str(r.get("matrixtype", "")).upper() == "PARENT")
            for r in item_rows}
        stocked = rows.get("stock")
        if stocked is not None:
            by_item: dict[str, set[str]] = {}
            for r in stocked:
                by_item.setdefault(str(r["item"]), set()).add(str(r["location"]))
                qty = _decimal(r.get("quantityavailable"))
                if qty is not None:
                    ref.item_availability.setdefault(str(r["item"]), {})[
                        str(r["location"])] = qty
            ref.item_locations = {k: frozenset(v) for k, v in by_item.items()}
        for attr, kind in (("locations", "location"), ("payment_methods", "paymentmethod"),
                           ("subsidiaries", "subsidiary")):
            setattr(ref, attr, {r["id"]: NamedRef(r["id"], r.get("name", ""),
                                                  r.get("isinactive") != "T")
                                for r in rows.get(kind) or []})
        taxes: dict[str, TaxCodeRef] = {}
        for r in rows.get("taxcode") or []:
            try:
                rate = Decimal(str(r.get("rate") or "0").rstrip("%"))
            except InvalidOperation:
                continue
            tax = TaxCodeRef(r["id"], r.get("itemid", r["id"]), rate, r.get("isinactive") != "T")
            taxes[tax.itemid] = taxes[tax.id] = tax
        ref.tax_codes = taxes
        active = [r for r in rows.get("customer") or [] if r.get("isinactive") != "T"]
        ref.customers_by_loyalty = {r["custentity_loyalty_id"]: r["id"] for r in active
                                    if r.get("custentity_loyalty_id")}
        ref.customers = {r["id"]: CustomerRef(r["id"], r.get("custentity_loyalty_id"),
                                              r.get("email"), r.get("phone"),
                                              r.get("firstname"), r.get("lastname"))
                         for r in active}
        ref.customers_by_email = _unique_index([(norm_email(r.get("email")), r["id"])
                                                for r in active])
        ref.customers_by_phone = _unique_index([(norm_phone(r.get("phone")), r["id"])
                                                for r in active])
        ref.sales_reps = {r["custentity_pos_employee_id"]: r["id"]
                          for r in rows.get("employee") or []
                          if r.get("custentity_pos_employee_id") and r.get("isinactive") != "T"}
        ref.promotions = {r["code"]: PromotionRef(r["id"], r["code"], r.get("name", ""),
                                                  r.get("discount"), r.get("isinactive") != "T")
                          for r in rows.get("promotion") or [] if r.get("code")}
        ref.price_levels = {r["id"]: r.get("name", "") for r in rows.get("pricelevel") or []
                            if r.get("isinactive") != "T"}
        for r in rows.get("pricing") or []:
            price = _decimal(r.get("unitprice"))
            if price is not None:
                ref.prices.setdefault((str(r["item"]), str(r["pricelevel"])), price)
        ref.ready = bool(ref.items)
        return ref


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


#: kind -> (SuiteQL query, required). A required table that cannot be read fails the load
#: (the worker stays not-ready); an optional one only switches its rule off.
#:
#: The item query is required, so it names only columns every account has: itemtype,
#: parent (set on matrix children) and taxschedule are standard item columns. baseprice and
#: matrixtype are left out on purpose: not every account exposes them to SuiteQL (prices
#: come from the optional ``pricing`` kind; a parent is recognised by its children).
#: Less certain columns sit in optional kinds, where a 400 only switches that kind off:
#: quantityavailable on aggregateitemlocation, the employee custom field
#: custentity_pos_employee_id, promotioncode's code/discount (SuitePromotions accounts
#: only) and the pricing table (multiple-prices feature).
QUERIES: dict[str, tuple[str, bool]] = {
    "item": ("SELECT id, itemid, itemtype, isinactive, parent, taxschedule, lastmodifieddate "
             "FROM item", True),
    "customer": ("SELECT id, custentity_loyalty_id, email, phone, firstname, lastname, "
                 "isinactive, lastmodifieddate FROM customer", True),
    "stock": ("SELECT item, location, quantityavailable FROM aggregateitemlocation", False),
    "location": ("SELECT id, name, isinactive FROM location", False),
    "paymentmethod": ("SELECT id, name, isinactive FROM paymentmethod", False),
    "taxcode": ("SELECT id, itemid, rate, isinactive FROM salestaxitem", False),
    "subsidiary": ("SELECT id, name, isinactive FROM subsidiary", False),
    "employee": ("SELECT id, entityid, custentity_pos_employee_id, isinactive FROM employee "
                 "WHERE issalesrep = 'T'", False),
    "promotion": ("SELECT id, code, name, discount, isinactive FROM promotioncode", False),
    "pricelevel": ("SELECT id, name, isinactive FROM pricelevel", False),
    "pricing": ("SELECT item, pricelevel, unitprice FROM pricing", False),
}
#: kinds that can be refreshed incrementally by lastmodifieddate
INCREMENTAL = ("item", "customer")

RefRows = dict[str, list[dict[str, Any]] | None]


def row_key(kind: str, row: dict[str, Any]) -> str:
    """Stable key of a reference row: its internal id, or the pair a link row stands for
    (item/location for stock, item/price level for pricing: neither has an id)."""
    if kind == "stock":
        return f"{row['item']}/{row['location']}"
    if kind == "pricing":
        return f"{row['item']}/{row['pricelevel']}"
    return str(row["id"])


async def fetch_rows(client: SuiteQL, since: str | None = None,
                     kinds: tuple[str, ...] | None = None) -> RefRows:
    """Raw rows per kind. With ``since`` ('YYYY-MM-DD HH:MM:SS', UTC) the incremental kinds
    (items, customers: the big tables) return only rows modified since then; the others
    have no modification date in SuiteQL and are read in full."""
    out: RefRows = {}
    for kind, (query, required) in QUERIES.items():
        if kinds is not None and kind not in kinds:
            continue
        if since is not None and kind in INCREMENTAL:
            query += (" WHERE lastmodifieddate >= "
                      f"TO_DATE('{since}', 'YYYY-MM-DD HH24:MI:SS')")
        out[kind] = await client.suiteql(query) if required else await _rows(client, query)
    return out


async def _rows(client: SuiteQL, query: str) -> list[dict[str, Any]] | None:
    """Rows, or None when the account refuses the query (400: table/column not exposed).

    Anything else (auth, outage) propagates so the load is retried as a whole.
    """
    try:
        return await client.suiteql(query)
    except NetSuiteError as exc:
        if exc.status != 400:
            raise
        log.warning("reference data: %s not readable (%s); its rule is skipped",
                    query.split(" FROM ")[-1], exc.code)
        return None
