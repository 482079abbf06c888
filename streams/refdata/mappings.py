"""Mappings: what NetSuite does not hold (store -> location, tender -> payment method, POS
SKU -> variant itemid, POS promotion code -> discount item, customer strategy), as a
versioned JSON file checked on load; errors name the file and the entry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from tillbridge.streams.refdata.sync_modes import SyncConfigError, SyncModes
from tillbridge.streams.stages.business_day import DEFAULT_CUTOFF_HOURS, zone


class MappingError(ValueError):
    """A mappings file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class StoreMapping:
    location: str
    subsidiary: str
    tax_code: str | None = None
    #: IANA zone of the store: its business date is its local date (stages/business_day.py)
    timezone: str = "UTC"
    #: hours past local midnight that still count as the previous business day
    business_day_cutoff: float = DEFAULT_CUTOFF_HOURS


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


def _store_day(entry: dict[str, Any], where: str) -> tuple[str, float]:
    """A store's ``timezone`` (IANA, checked) and ``business_day_cutoff`` (hours, 0-12)."""
    tz = entry.get("timezone", "UTC")
    try:
        zone(str(tz))
    except ValueError as exc:
        raise MappingError(f"{where}.timezone: {exc}") from None
    raw = entry.get("business_day_cutoff", DEFAULT_CUTOFF_HOURS)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 12:
        raise MappingError(f"{where}.business_day_cutoff must be hours from 0 to 12, got {raw!r}")
    return str(tz), float(raw)


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
    #: ``sku_matching.ignore_case`` (default on): tills send "tee-001 " for "TEE-001";
    #: surrounding whitespace is always dropped.
    sku_ignore_case: bool = field(default=True, init=False)
    #: the ``sync`` section: each flow's mode (``refdata/sync_modes.py``), hybrid by default
    sync: SyncModes = field(default_factory=SyncModes, init=False, compare=False)
    _skus_folded: dict[str, str] = field(default_factory=dict, init=False, repr=False,
                                         compare=False)

    def __post_init__(self) -> None:
        matching = self.document.get("sku_matching") or {}
        if not isinstance(matching, dict):
            raise MappingError(f"{self.source}: sku_matching must be an object")
        object.__setattr__(self, "sku_ignore_case", bool(matching.get("ignore_case", True)))
        try:
            object.__setattr__(self, "sync", SyncModes.parse(self.document.get("sync"),
                                                             self.source))
        except SyncConfigError as exc:
            raise MappingError(str(exc)) from exc
        folded = {k.strip().casefold(): v for k, v in self.skus.items()}
        object.__setattr__(self, "_skus_folded", folded)

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
            tz, cutoff = _store_day(entry, f"{source}: stores.{code}")
            stores[code] = StoreMapping(str(entry["location"]), str(entry.get("subsidiary", "1")),
                                        str(tax) if tax else None, tz, cutoff)
        tenders = {}
        for code, method in doc["tenders"].items():
            if not method:
                raise MappingError(f"{source}: tenders.{code} has no payment method id")
            tenders[code] = str(method)
        _check_tax(doc.get("tax"), source)
        discount = doc.get("discount_item")
        return cls(int(doc["version"]), stores, tenders, str(doc["guest_customer"]),
                   str(discount) if discount else None, source,
                   _str_map(doc, "skus", source), _str_map(doc, "price_levels", source),
                   _strategy(doc.get("customer_strategy"), source),
                   _str_map(doc, "promotions", source), dict(doc))

    def itemid(self, sku: str) -> str:
        """The NetSuite itemid a POS SKU sells as (a variant mapping, else the SKU itself),
        forgiving surrounding whitespace and, unless switched off, case."""
        sku = sku.strip()
        found = self.skus.get(sku)
        if found is None and self.sku_ignore_case:
            found = self._skus_folded.get(sku.casefold())
        return found if found is not None else sku


def _check_tax(section: Any, source: str) -> None:
    """``tax``: ``{"default_model", "subsidiaries": {id: {"model", "tax_type"}},
    "line_rate_codes": [...]}``; a model is ``legacy`` or ``suitetax`` (ledger/tax.py)."""
    if section is None:
        return
    if not isinstance(section, dict):
        raise MappingError(f"{source}: tax must be an object")
    subs = section.get("subsidiaries") or {}
    if not isinstance(subs, dict):
        raise MappingError(f"{source}: tax.subsidiaries must be an object")
    entries = [("default_model", section.get("default_model"))]
    entries += [(f"subsidiaries.{k}.model", (v or {}).get("model") if isinstance(v, dict)
                 else v) for k, v in subs.items()]
    for where, model in entries:
        if model is not None and str(model).lower() not in ("legacy", "suitetax"):
            raise MappingError(f"{source}: tax.{where} must be legacy or suitetax, "
                               f"not {model!r}")
    if not isinstance(section.get("line_rate_codes") or [], list):
        raise MappingError(f"{source}: tax.line_rate_codes must be a list of tax codes")


Model = Literal["legacy", "suitetax"]


@dataclass(frozen=True, slots=True)
class TaxSetup:
    """How one subsidiary's account computes tax (mappings ``tax.subsidiaries.<id>``)."""

    model: Model = "legacy"
    #: SuiteTax: the tax type id sent on each ``taxDetails`` line (a tax code's type)
    tax_type: str | None = None

    @classmethod
    def of(cls, model: str, tax_type: str | None) -> TaxSetup:
        """From what travels on a record's refs as text (``ReturnRefs``, ``OrderRefs``)."""
        return cls("suitetax" if model == "suitetax" else "legacy", tax_type)


def tax_setup(config: Mapping[str, Any] | None, subsidiary: str) -> TaxSetup:
    """The subsidiary's setup from the mappings' ``tax`` section; legacy when unset."""
    subs = (config or {}).get("subsidiaries") or {}
    entry = subs.get(str(subsidiary)) or {}
    model = str(entry.get("model") or (config or {}).get("default_model") or "legacy").lower()
    if model not in ("legacy", "suitetax"):
        raise ValueError(f"tax model for subsidiary {subsidiary} must be legacy or suitetax, "
                         f"not {model!r}")
    tax_type = entry.get("tax_type")
    return TaxSetup("suitetax" if model == "suitetax" else "legacy",
                    str(tax_type) if tax_type else None)
