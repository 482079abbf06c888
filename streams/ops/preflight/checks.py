"""Preflight's checks: one pure function per rollout step, and :func:`run_checks` over all.

A POS cannot post a sale NetSuite cannot book, so before go-live (and after every catalogue,
store or tender change) every code the tills use must resolve to something active in
NetSuite. The checks are pure functions over typed inputs -- what the POS uses
(:class:`PosUsage`), what NetSuite holds (:class:`NetSuiteSnapshot`) and the mappings
(:class:`RolloutConfig`), all in :mod:`.model` -- so each finding can be tested without a
network.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from tillbridge.streams.ops.preflight.model import (
    BASE_TIER,
    STEPS,
    Finding,
    NetSuiteSnapshot,
    NsItem,
    PosUsage,
    Report,
    RolloutConfig,
    SkuUse,
    StepResult,
    TrafficSummary,
    finding,
)

#: Tenders every rollout must decide on, whether or not the tills have used them yet.
ALWAYS_DECIDE: tuple[str, ...] = ("GIFT_CARD", "STORE_CREDIT")
#: Tender codes some tills send for a split payment instead of one tender line per method.
SPLIT_MARKERS = frozenset({"SPLIT", "MIXED", "MULTI", "MULTIPLE", "MULTI_TENDER"})
#: Tenders that draw down a liability: they must not share a card clearing method.
LIABILITY_TENDERS = frozenset({"GIFT_CARD", "STORE_CREDIT"})
#: NetSuite item types that are accounting lines, not goods a till can sell.
NOT_SELLABLE = frozenset({"Discount", "Subtotal", "Markup", "Payment", "Description"})
#: Item types NetSuite tracks per location (others have no aggregateitemlocation rows).
STOCKED_TYPES = frozenset({"InvtPart", "Assembly"})

# -- checks ----------------------------------------------------------------------------------

def _closest(name: str, known: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; closest NetSuite itemid: {match[0]!r}" if match else ""


def resolve_price_level(tier: str, configured: dict[str, str],
                        levels: dict[str, str]) -> str | None:
    """NetSuite price level id for a POS tier: mapped id/name, else the level named like it."""
    wanted = configured.get(tier)
    names = {tier.lower(), f"{tier.lower()} price"} if wanted is None else {wanted.lower()}
    if wanted is not None and wanted in levels:
        return wanted
    for level_id, name in levels.items():
        if name.lower() in names:
            return level_id
    return None


def check_items(usage: PosUsage, cfg: RolloutConfig, ns: NetSuiteSnapshot) -> list[Finding]:
    """Step 1: every SKU exists, is active and sellable, taxed, priced and stocked."""
    out: list[Finding] = []
    if not usage.skus:
        out.append(finding("items.no_source", "SKUs", "no POS SKUs to check"))
    unverified: dict[str, int] = {}
    unmapped_tiers: dict[str, int] = {}
    for sku, use in sorted(usage.skus.items()):
        target = cfg.itemid(sku)
        via = f" (mapped to NetSuite itemid {target!r} via `skus`)" if target != sku else ""
        item = ns.items.get(target)
        if item is None:
            out.append(finding("item.missing", sku, f"POS SKU {sku!r}{via} is not a NetSuite "
                               f"item{_closest(target, ns.items)}"))
            continue
        if not item.active:
            out.append(finding("item.inactive", sku, f"item {target!r} (id {item.id}){via} is "
                               "inactive"))
            continue
        if item.matrix_parent:
            out.append(finding("item.matrix_parent", sku, f"item {target!r}{via} is a matrix "
                               "parent; sales must book to a variant"))
        if item.itemtype in NOT_SELLABLE:
            out.append(finding("item.not_sellable", sku, f"item {target!r}{via} is a "
                               f"{item.itemtype} item"))
        if ns.has_taxschedule and not item.taxschedule:
            out.append(finding("item.no_tax_schedule", sku, f"item {target!r}{via} has no tax "
                               "schedule"))
        out += _stocking(sku, item, use, cfg, ns)
        for tier, pos_price in sorted(use.prices.items()):
            out += _price(sku, item, tier, pos_price, cfg, ns, unverified, unmapped_tiers)
    if usage.skus and not ns.has_taxschedule:
        out.append(finding("item.tax_schedule_unverified", "tax schedules",
                           "item.taxschedule is not readable over SuiteQL"))
    if usage.skus and ns.stocked is None:
        out.append(finding("item.stocking_unverified", "locations",
                           "aggregateitemlocation is not readable over SuiteQL"))
    for tier, n in sorted(unmapped_tiers.items()):
        out.append(finding("price.level_unmapped", f"price level {tier}",
                           f"POS tier {tier!r} ({n} SKUs) matches no NetSuite price level"))
    for tier, n in sorted(unverified.items()):
        out.append(finding("price.unverified", f"price level {tier}",
                           f"{n} SKUs sell at tier {tier!r}; NetSuite does not expose "
                           "per-level prices here, so it could not be verified"))
    out += _discount_item(cfg, ns)
    return out


def _stocking(sku: str, item: NsItem, use: SkuUse, cfg: RolloutConfig,
              ns: NetSuiteSnapshot) -> list[Finding]:
    if ns.stocked is None or (item.itemtype is not None and item.itemtype not in STOCKED_TYPES):
        return []
    at = ns.stocked.get(item.id, set())
    stores = cfg.mappings.stores
    # Unmapped stores and unknown locations are the stores step's findings, not this one's.
    gaps = [f"{code} (location {stores[code].location})" for code in sorted(use.stores)
            if code in stores and stores[code].location in ns.locations
            and stores[code].location not in at]
    if not gaps:
        return []
    return [finding("item.not_stocked", sku, f"item {item.itemid!r} is sold at "
                    f"{', '.join(gaps)} but not stocked there")]


def _price(sku: str, item: NsItem, tier: str, pos_price: Decimal | None, cfg: RolloutConfig,
           ns: NetSuiteSnapshot, unverified: dict[str, int],
           unmapped: dict[str, int]) -> list[Finding]:
    ns_price: Decimal | None = None
    if ns.prices is not None and ns.price_levels is not None:
        level = resolve_price_level(tier, cfg.price_levels, ns.price_levels)
        if level is None:
            unmapped[tier] = unmapped.get(tier, 0) + 1
            return []
        if (item.id, level) not in ns.prices:
            return [finding("item.price_missing", sku, f"item {item.itemid!r} has no price at "
                            f"level {ns.price_levels[level]!r} (POS tier {tier})")]
        ns_price = ns.prices[(item.id, level)]
    elif tier == BASE_TIER and ns.has_baseprice:
        if item.baseprice is None:
            return [finding("item.price_missing", sku, f"item {item.itemid!r} has no base "
                            "price")]
        ns_price = item.baseprice
    else:
        unverified[tier] = unverified.get(tier, 0) + 1
        return []
    if pos_price is not None and ns_price is not None and pos_price != ns_price:
        return [finding("item.price_mismatch", sku, f"POS {tier} price {pos_price} differs "
                        f"from NetSuite {ns_price}")]
    return []


def _discount_item(cfg: RolloutConfig, ns: NetSuiteSnapshot) -> list[Finding]:
    ref = cfg.mappings.discount_item
    if not ref:
        return [finding("discount.item_unset", "discount_item",
                        "no discount item: POS discounts cannot be booked as lines")]
    item = ns.item_by_id(ref)
    if item is None:
        return [finding("discount.item_missing", f"item {ref}",
                        f"discount item id {ref} is not a NetSuite item")]
    if not item.active:
        return [finding("discount.item_inactive", f"item {ref}",
                        f"discount item {item.itemid!r} (id {ref}) is inactive")]
    return []


def check_customers(cfg: RolloutConfig, ns: NetSuiteSnapshot) -> list[Finding]:
    """Step 2: the guest customer every anonymous sale books to exists and is usable."""
    out: list[Finding] = []
    gid = cfg.mappings.guest_customer
    guest = ns.guest
    if guest is None:
        out.append(finding("customer.guest_missing", f"customer {gid}",
                           f"guest customer id {gid} is not a NetSuite customer"))
    elif not guest.active:
        out.append(finding("customer.guest_inactive", f"customer {gid}",
                           f"guest customer {guest.name!r} (id {gid}) is inactive"))
    else:
        subs = {m.subsidiary for m in cfg.mappings.stores.values()}
        if guest.subsidiary and subs and guest.subsidiary not in subs:
            out.append(finding("customer.guest_subsidiary", f"customer {gid}",
                               f"guest customer is in subsidiary {guest.subsidiary}; stores "
                               f"book to {', '.join(sorted(subs))}"))
    if not ns.loyalty_field:
        out.append(finding("customer.loyalty_field_missing", "custentity_loyalty_id",
                           "customer.custentity_loyalty_id is not readable: identified "
                           "shoppers cannot be matched"))
    return out


def check_tenders(usage: PosUsage, cfg: RolloutConfig, ns: NetSuiteSnapshot,
                  listed: Iterable[str] = ()) -> list[Finding]:
    """Step 3: every tender code maps to an active payment method; split tenders come apart."""
    out: list[Finding] = []
    tenders = cfg.mappings.tenders
    for code in sorted(_tender_codes(usage, cfg, listed)):
        seen = usage.tenders.get(code, 0)
        note = f" (seen on {seen} tender lines)" if seen else ""
        if code.upper() in SPLIT_MARKERS:
            out.append(finding("tender.split_code", code, f"tender code {code!r}{note} stands "
                               "for a split payment; NetSuite needs each part's method"))
            continue
        method_id = tenders.get(code)
        if method_id is None:
            out.append(finding("tender.unmapped", code, f"tender {code!r}{note} maps to no "
                               "NetSuite payment method"))
            continue
        method = ns.payment_methods.get(method_id)
        if method is None:
            out.append(finding("tender.method_missing", code, f"tender {code!r} maps to "
                               f"payment method id {method_id}, which NetSuite does not have"))
        elif not method.active:
            out.append(finding("tender.method_inactive", code, f"tender {code!r} maps to "
                               f"payment method {method.name!r} (id {method_id}), inactive"))
    for code in sorted(LIABILITY_TENDERS & set(tenders)):
        shared = sorted(c for c, m in tenders.items() if m == tenders[code] and c != code)
        if shared:
            out.append(finding("tender.shared_method", code, f"{code} shares payment method "
                               f"{tenders[code]} with {', '.join(shared)}"))
    return out


def _tender_codes(usage: PosUsage, cfg: RolloutConfig, listed: Iterable[str]) -> set[str]:
    """Mapped, always-decided, seen and listed tender codes."""
    return set(cfg.mappings.tenders) | set(ALWAYS_DECIDE) | set(usage.tenders) | set(listed)


def _store_codes(usage: PosUsage, cfg: RolloutConfig) -> set[str]:
    """Mapped and seen store codes."""
    return set(cfg.mappings.stores) | usage.stores


def check_stores(usage: PosUsage, cfg: RolloutConfig, ns: NetSuiteSnapshot) -> list[Finding]:
    """Step 4: every store maps to an active location in the right subsidiary, with tax."""
    out: list[Finding] = []
    stores = cfg.mappings.stores
    for code in sorted(_store_codes(usage, cfg)):
        m = stores.get(code)
        if m is None:
            used = sorted(s for s, u in usage.skus.items() if code in u.stores)
            what = f" (sells {len(used)} SKUs)" if used else ""
            out.append(finding("store.unmapped", code, f"store {code!r}{what} has no NetSuite "
                               "location mapping"))
            continue
        loc = ns.locations.get(m.location)
        if loc is None:
            out.append(finding("store.location_missing", code, f"store {code!r} maps to "
                               f"location id {m.location}, which NetSuite does not have"))
        elif not loc.active:
            out.append(finding("store.location_inactive", code, f"location {loc.name!r} "
                               f"(id {m.location}) is inactive"))
        elif loc.subsidiary and loc.subsidiary != m.subsidiary:
            out.append(finding("store.subsidiary_mismatch", code, f"mapping says subsidiary "
                               f"{m.subsidiary}; location {loc.name!r} is in {loc.subsidiary}"))
        if ns.subsidiaries is not None and m.subsidiary not in ns.subsidiaries:
            out.append(finding("store.subsidiary_missing", code, f"subsidiary id {m.subsidiary} "
                               "is not a NetSuite subsidiary"))
        if not m.tax_code:
            out.append(finding("store.tax_code_unset", code, f"store {code!r} has no tax code"))
        elif m.tax_code not in ns.tax_codes:
            out.append(finding("store.tax_code_missing", code, f"tax code id {m.tax_code} is "
                               "not a NetSuite tax code"))
        elif not ns.tax_codes[m.tax_code].active:
            out.append(finding("store.tax_code_inactive", code, f"tax code "
                               f"{ns.tax_codes[m.tax_code].name!r} (id {m.tax_code}) is inactive"))
    by_name = {t.name: t for t in ns.tax_codes.values()}
    for code in sorted(usage.tax_codes):
        tax = by_name.get(code) or ns.tax_codes.get(code)
        if tax is None:
            out.append(finding("tax.code_unknown", code, f"POS tax code {code!r} matches no "
                               "NetSuite tax code"))
        elif not tax.active:
            out.append(finding("tax.code_inactive", code, f"tax code {code!r} (id {tax.id}) is "
                               "inactive"))
    return out


def check_traffic(traffic: TrafficSummary | None) -> list[Finding]:
    """Step 5: real till traffic was there to check against (the seed's last step)."""
    if traffic is None:
        return []
    out: list[Finding] = []
    if traffic.events == 0:
        out.append(finding("traffic.empty", traffic.topic, "no sales read from the topic"))
    if traffic.undecodable:
        out.append(finding("traffic.undecodable", traffic.topic, f"{traffic.undecodable} of "
                           f"{traffic.events + traffic.undecodable} messages did not decode"))
    return out


def run_checks(usage: PosUsage, cfg: RolloutConfig, ns: NetSuiteSnapshot, *,
               traffic: TrafficSummary | None = None, listed_tenders: Iterable[str] = (),
               sources: dict[str, object] | None = None) -> Report:
    """Run every step in rollout order and summarise each one."""
    listed = list(listed_tenders)
    tender_codes = _tender_codes(usage, cfg, listed)
    store_codes = _store_codes(usage, cfg)
    per_step: dict[str, tuple[list[Finding], int, str]] = {
        "items": (check_items(usage, cfg, ns), len(usage.skus),
                  f"{len(usage.skus)} SKUs, {len(cfg.skus)} variant mappings"),
        "customers": (check_customers(cfg, ns), 1, cfg.customer.describe()),
        "tenders": (check_tenders(usage, cfg, ns, listed), len(tender_codes),
                    f"{len(tender_codes)} tender codes; {usage.split_sales} split-tender sales "
                    "seen"),
        "stores": (check_stores(usage, cfg, ns), len(store_codes),
                   f"{len(store_codes)} stores, "
                   f"{len(usage.tax_codes)} POS tax codes"),
        "traffic": (check_traffic(traffic), traffic.events if traffic else 0,
                    f"{traffic.events} sales from {traffic.topic}" if traffic
                    else "not read (pass --from-topic)"),
    }
    steps, findings = [], []
    for step in STEPS:
        found, checked, detail = per_step[step.id]
        errors = sum(f.severity == "error" for f in found)
        warnings = len(found) - errors
        status: Literal["pass", "warn", "fail", "skipped"] = (
            "fail" if errors else "warn" if warnings else "pass")
        if step.id == "traffic" and traffic is None:
            status = "skipped"
        steps.append(StepResult(step.id, step.title, status, checked, errors, warnings, detail))
        findings += sorted(found, key=lambda f: (f.severity != "error", f.check, f.subject))
    return Report(steps, findings, dict(sources or {}))
