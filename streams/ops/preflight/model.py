"""Preflight's vocabulary: rollout steps, the check catalogue, typed inputs and the report.

Kept apart from the checks so the inputs can be built (from files, Kafka, SuiteQL, or by
hand in tests) without pulling in the command line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Literal

from tillbridge.streams.refdata.mappings import CustomerStrategy, Mappings

Severity = Literal["error", "warning"]

#: Tier a POS line without a price level is sold at.
BASE_TIER = "BASE"

# -- rollout steps and the check catalogue ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title: str


STEPS: tuple[Step, ...] = (
    Step("items", "Item and SKU alignment"),
    Step("customers", "Customer record strategy"),
    Step("tenders", "Payment gateway reconciliation"),
    Step("stores", "Stores, locations and tax codes"),
    Step("traffic", "Real transaction flows"),
)


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    step: str
    severity: Severity
    fix: str


def _checks(*rows: tuple[str, str, Severity, str]) -> dict[str, Check]:
    return {r[0]: Check(*r) for r in rows}


CHECKS: dict[str, Check] = _checks(
    ("items.no_source", "items", "warning",
     "Pass --catalogue FILE (POS catalogue export) and/or --from-topic."),
    ("item.missing", "items", "error",
     "Create the item in NetSuite with itemid = POS SKU, or map the SKU under `skus` "
     "in the mappings file (variants: map to the matrix child)."),
    ("item.inactive", "items", "error",
     "Reactivate the item in NetSuite, or retire the SKU at the POS."),
    ("item.matrix_parent", "items", "error",
     "Map the POS SKU to the matrix child (size/colour variant) under `skus`."),
    ("item.not_sellable", "items", "error",
     "Point the SKU at an inventory/non-inventory item, not an accounting item."),
    ("item.no_tax_schedule", "items", "error", "Set a tax schedule on the item in NetSuite."),
    ("item.tax_schedule_unverified", "items", "warning",
     "Grant SuiteQL access to item.taxschedule, or check tax schedules by hand."),
    ("item.not_stocked", "items", "error",
     "Add the store's location to the item (Locations sublist) or stop selling it there."),
    ("item.stocking_unverified", "items", "warning",
     "Grant SuiteQL access to aggregateitemlocation, or check item locations by hand."),
    ("item.price_missing", "items", "error",
     "Add a price for that price level on the item (Pricing sublist)."),
    ("item.price_mismatch", "items", "warning",
     "Align the POS price with the NetSuite price level, or accept that NetSuite books "
     "the POS amount."),
    ("price.level_unmapped", "items", "error",
     "Create the price level in NetSuite or map the POS tier under `price_levels`."),
    ("price.unverified", "items", "warning",
     "NetSuite did not expose per-level prices to SuiteQL; check this tier on the items "
     "by hand (or grant access to the pricing table)."),
    ("discount.item_unset", "items", "warning",
     "Set `discount_item` in the mappings file to the NetSuite discount item."),
    ("discount.item_missing", "items", "error",
     "Create the discount item in NetSuite or fix `discount_item` in the mappings file."),
    ("discount.item_inactive", "items", "error", "Reactivate the discount item in NetSuite."),
    ("customer.guest_missing", "customers", "error",
     "Create the guest (walk-in) customer in NetSuite and set `guest_customer` to its id."),
    ("customer.guest_inactive", "customers", "error",
     "Reactivate the guest customer in NetSuite."),
    ("customer.guest_subsidiary", "customers", "warning",
     "Give the guest customer a subsidiary the stores book to (or one per subsidiary)."),
    ("customer.loyalty_field_missing", "customers", "error",
     "Create the custom entity field custentity_loyalty_id so shoppers can be matched."),
    ("tender.unmapped", "tenders", "error",
     "Map the tender code under `tenders` in the mappings file to a payment method id."),
    ("tender.method_missing", "tenders", "error",
     "Fix the payment method id under `tenders`, or create the method in NetSuite."),
    ("tender.method_inactive", "tenders", "error", "Reactivate the payment method in NetSuite."),
    ("tender.split_code", "tenders", "error",
     "Configure the POS to send one tender line per payment method for split payments."),
    ("tender.shared_method", "tenders", "warning",
     "Give gift cards and store credit their own payment method (they redeem a liability)."),
    ("store.unmapped", "stores", "error",
     "Add the store under `stores` in the mappings file with its NetSuite location."),
    ("store.location_missing", "stores", "error",
     "Fix the location id under `stores`, or create the location in NetSuite."),
    ("store.location_inactive", "stores", "error", "Reactivate the location in NetSuite."),
    ("store.subsidiary_mismatch", "stores", "error",
     "Set the store's `subsidiary` to the location's subsidiary."),
    ("store.subsidiary_missing", "stores", "error",
     "Fix the store's `subsidiary` id in the mappings file."),
    ("store.tax_code_unset", "stores", "warning",
     "Set the store's `tax_code` (NetSuite tax code id) in the mappings file."),
    ("store.tax_code_missing", "stores", "error",
     "Fix the store's `tax_code`, or create the tax code in NetSuite."),
    ("store.tax_code_inactive", "stores", "error", "Reactivate the tax code in NetSuite."),
    ("tax.code_unknown", "stores", "error",
     "Create the tax code in NetSuite (itemid = POS tax code) or fix the POS tax table."),
    ("tax.code_inactive", "stores", "error", "Reactivate the tax code in NetSuite."),
    ("traffic.empty", "traffic", "warning",
     "Publish real till traffic to the topic (or check the topic name) and rerun."),
    ("traffic.undecodable", "traffic", "warning",
     "Some messages are not Avro the registry knows; see `tillbridge reasons` (decode)."),
)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    severity: Severity
    step: str
    subject: str
    message: str
    fix: str


def finding(check: str, subject: str, message: str) -> Finding:
    """A finding of catalogued ``check``; severity, step and fix come from the catalogue."""
    spec = CHECKS[check]
    return Finding(check, spec.severity, spec.step, subject or "(blank)", message, spec.fix)


# -- inputs ----------------------------------------------------------------------------------

def normalise_tier(tier: str | None) -> str:
    """POS price level as a tier name; a line without one sells at the base price."""
    return (tier or "").strip().upper() or BASE_TIER


@dataclass
class SkuUse:
    """How the POS uses one SKU: stores selling it, price tiers (POS price if known), tax codes."""

    sku: str
    stores: set[str] = field(default_factory=set)
    prices: dict[str, Decimal | None] = field(default_factory=dict)
    tax_codes: set[str] = field(default_factory=set)
    description: str | None = None


@dataclass
class PosUsage:
    """Every code the POS uses, merged from a catalogue export and/or observed traffic."""

    skus: dict[str, SkuUse] = field(default_factory=dict)
    tenders: dict[str, int] = field(default_factory=dict)  # code -> times seen (0: listed)
    stores: set[str] = field(default_factory=set)
    split_sales: int = 0

    def use_sku(self, sku: str, *, store: str | None = None, tier: str | None = None,
                price: Decimal | None = None, tax_code: str | None = None,
                description: str | None = None) -> SkuUse:
        use = self.skus.setdefault(sku, SkuUse(sku))
        if store is not None:
            use.stores.add(store)
            self.stores.add(store)
        if tier is not None or price is not None:
            tier = normalise_tier(tier)
            if price is not None or tier not in use.prices:
                use.prices[tier] = price
        if tax_code:
            use.tax_codes.add(tax_code)
        if description and not use.description:
            use.description = description
        return use

    def use_tender(self, code: str, times: int = 1) -> None:
        self.tenders[code] = self.tenders.get(code, 0) + times

    def merge(self, other: PosUsage) -> PosUsage:
        for sku, use in other.skus.items():
            mine = self.use_sku(sku, description=use.description)
            mine.stores |= use.stores
            mine.tax_codes |= use.tax_codes
            for tier, price in use.prices.items():
                if price is not None or tier not in mine.prices:
                    mine.prices[tier] = price
        for code, n in other.tenders.items():
            self.use_tender(code, n)
        self.stores |= other.stores
        self.split_sales += other.split_sales
        return self

    @property
    def tax_codes(self) -> set[str]:
        return {c for use in self.skus.values() for c in use.tax_codes}


@dataclass(frozen=True, slots=True)
class TrafficSummary:
    topic: str
    events: int
    undecodable: int = 0
    other: int = 0  # decoded but not sales (e.g. another record type)


@dataclass(frozen=True)
class RolloutConfig:
    """The mappings file plus the optional rollout keys preflight understands.

    The keys are parsed by :class:`Mappings` (the worker uses them too); this names them
    as the checks use them.
    """

    mappings: Mappings

    @property
    def skus(self) -> dict[str, str]:
        """POS SKU -> NetSuite itemid."""
        return self.mappings.skus

    @property
    def price_levels(self) -> dict[str, str]:
        """POS tier -> price level id or name."""
        return self.mappings.price_levels

    @property
    def customer(self) -> CustomerStrategy:
        return self.mappings.customer_strategy

    def itemid(self, sku: str) -> str:
        return self.mappings.itemid(sku)


@dataclass(frozen=True, slots=True)
class NsItem:
    id: str
    itemid: str
    active: bool = True
    itemtype: str | None = None
    taxschedule: str | None = None
    baseprice: Decimal | None = None
    matrix_parent: bool = False


@dataclass(frozen=True, slots=True)
class NsRef:
    """A named NetSuite record with an active flag (location, tax code, method, customer)."""

    id: str
    name: str = ""
    active: bool = True
    subsidiary: str | None = None


@dataclass
class NetSuiteSnapshot:
    """What preflight read from NetSuite. ``None`` members could not be read (not exposed)."""

    items: dict[str, NsItem] = field(default_factory=dict)  # by itemid
    stocked: dict[str, set[str]] | None = field(default_factory=dict)  # item id -> locations
    locations: dict[str, NsRef] = field(default_factory=dict)
    subsidiaries: dict[str, NsRef] | None = field(default_factory=dict)
    tax_codes: dict[str, NsRef] = field(default_factory=dict)  # by id; name = tax code itemid
    payment_methods: dict[str, NsRef] = field(default_factory=dict)
    guest: NsRef | None = None
    loyalty_field: bool = True
    price_levels: dict[str, str] | None = None  # id -> name
    prices: dict[tuple[str, str], Decimal | None] | None = None  # (item id, level id) -> price
    has_taxschedule: bool = True
    has_baseprice: bool = True

    def item_by_id(self, item_id: str) -> NsItem | None:
        return next((i for i in self.items.values() if i.id == item_id), None)


# -- the report ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StepResult:
    id: str
    title: str
    status: Literal["pass", "warn", "fail", "skipped"]
    checked: int
    errors: int
    warnings: int
    detail: str


@dataclass(frozen=True)
class Report:
    steps: list[StepResult]
    findings: list[Finding]
    sources: dict[str, object] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def as_json(self) -> dict[str, object]:
        return {
            "ok": not self.errors,
            "exit_code": self.exit_code,
            "sources": self.sources,
            "steps": [asdict(s) for s in self.steps],
            "findings": [asdict(f) for f in self.findings],
            "summary": {"errors": self.errors, "warnings": self.warnings,
                        "steps_failed": sum(s.status == "fail" for s in self.steps),
                        "by_check": dict(sorted(Counter(f.check for f in self.findings)
                                                .items()))},
        }
