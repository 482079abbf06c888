"""The reference snapshot the enrich stage resolves against, indexed for the hot path.

Items (with matrix parent/child), stocking and availability, locations, subsidiaries,
payment methods, tax codes, sales reps, promotions, price levels and prices and customers
come from NetSuite over SuiteQL (``refdata/queries.py``). A worker refuses to enrich against
an empty snapshot: ``ReferenceData.ready`` gates the readiness endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation

from tillbridge.streams.refdata.queries import RefRows, SuiteQL, fetch_rows


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

    def _keys(self) -> tuple[dict[str, str], dict[str, str]]:
        """(internal id -> itemid, folded itemid -> itemid), rebuilt when ``items`` is
        swapped or changes size. Keys, not items: an item replaced in place (say,
        deactivated) is still read fresh from ``items``."""
        sig = (id(self.items), len(self.items))
        cached = self.__dict__.get("_key_index")
        if cached is None or cached[0] != sig:
            by_id = {i.id: k for k, i in self.items.items()}
            folded = {k.strip().casefold(): k for k in self.items}
            cached = (sig, by_id, folded)
            self.__dict__["_key_index"] = cached
        return cached[1], cached[2]

    def item_by_id(self, item_id: str) -> ItemRef | None:
        key = self._keys()[0].get(item_id)
        item = self.items.get(key) if key is not None else None
        if item is not None and item.id == item_id:
            return item
        return next((i for i in self.items.values() if i.id == item_id), None)

    def find_item(self, itemid: str, ignore_case: bool = True) -> ItemRef | None:
        """An item by its itemid (as a till may send it: surrounding whitespace dropped,
        case ignored unless ``ignore_case`` is off)."""
        itemid = itemid.strip()
        item = self.items.get(itemid)
        if item is None and ignore_case:
            key = self._keys()[1].get(itemid.casefold())
            item = self.items.get(key) if key is not None else None
        return item

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
            tax = TaxCodeRef(r["id"], str(r.get("itemid") or r["id"]), rate,
                             r.get("isinactive") != "T")
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

