"""Sync modes per flow: the ``sync`` section of the mappings file (hot reloaded with it).

Each flow is posted ``realtime`` (one NetSuite write per event, as it comes), ``batch``
(events gathered in an event-time window per store and register, the window's records
written through NetSuite's async batch jobs when it closes) or, for sales only, ``summary``
(one summarised cashSale per store, register and window). A window is a length
(``"window": "4h"``, or ``"window_s": 14400``) or a schedule of local times in the store's
time zone (``"schedule": ["06:00", "14:00", "22:00"]``); without either, the worker's
``TILLBRIDGE_WINDOW_S``.

The default is the seed's hybrid: orders, payments, sales, returns and customers in real
time; inventory and settlement in batches. What each flow accepts is in ``ACCEPTED``:
inventory is aggregated by nature (one adjustment per location and window of
``TILLBRIDGE_WINDOW_S``) and settlement is a daily batch by nature (one Z-report per
register and business day, posted when it comes): for both, ``batch`` is the only mode
and their shape is not set here (``FIXED_SHAPE``). Payments, returns and orders take
``realtime`` or ``batch`` (their windows close after the sales' in the same pass: a sale
comes first, then orders, payments, returns; an order's events are written in their
sequence). Customers are ``realtime`` only: tillbridge writes a customer only as part of
the sale, order or loyalty record that needs it (matched or created just before it), so
there is no customer event to defer; batching the sale defers its customer with it
(``ONLY_REALTIME``). Sales take all three.

The mode in force when ingest routes an event travels with it (the ``tillbridge.mode``
hop header: ``ModeSpec.tag``), so a switch changes where *later* events go and never what
an open window already holds: that window still closes and posts its members.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["realtime", "batch", "summary"]
FLOWS = ("sales", "payments", "returns", "orders", "inventory", "settlement", "customers")
#: the flow name of the sync section for each Flow.kind
KIND_FLOW = {"sale": "sales", "payment": "payments", "return": "returns", "order": "orders",
             "inventory": "inventory", "settlement": "settlement", "customer": "customers"}
ACCEPTED: dict[str, tuple[Mode, ...]] = {
    "sales": ("realtime", "batch", "summary"),
    "payments": ("realtime", "batch"), "returns": ("realtime", "batch"),
    "orders": ("realtime", "batch"), "customers": ("realtime",),
    "inventory": ("batch",), "settlement": ("batch",),
}
HYBRID: dict[str, Mode] = {"sales": "realtime", "payments": "realtime", "returns": "realtime",
                           "orders": "realtime", "customers": "realtime",
                           "inventory": "batch", "settlement": "batch"}
#: flows whose batch has its own shape, not set here
FIXED_SHAPE = {
    "inventory": "inventory windows are TILLBRIDGE_WINDOW_S long (their externalIds carry "
                 "only the window start: another shape could meet an old window's id)",
    "settlement": "settlement is one post per register and business day, as its Z-report "
                  "comes",
}
#: flows whose batch / summary the window agent carries out (routed there by their mode);
#: inventory is windowed whatever the mode says, settlement is posted per register-day
BY_WINDOW_AGENT = frozenset({"sales", "payments", "returns", "orders"})
#: why a flow takes no other mode than realtime (said when a sync section asks for one)
ONLY_REALTIME = {
    "customers": "customers are written with the sale, order or loyalty record that needs "
                 "them, never as events of their own: batch the sales (or orders) instead",
}
H_MODE = "tillbridge.mode"
_LENGTH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class SyncConfigError(ValueError):
    """The sync section is malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class ModeSpec:
    """One flow's mode and its window (``window_s`` None: the worker's default length)."""

    mode: Mode = "realtime"
    window_s: float | None = None
    schedule: tuple[int, ...] = ()  # minutes after local midnight, ascending

    @property
    def windowed(self) -> bool:
        return self.mode != "realtime"

    @property
    def tag(self) -> str:
        """What travels with a routed event: mode and window, e.g. ``summary/14400s``,
        ``batch/at0600-1400-2200``, or ``summary/default`` (the worker's
        ``TILLBRIDGE_WINDOW_S``); also names the window engine, so window ids differ
        between modes and window shapes."""
        if self.schedule:
            shape = "at" + "-".join(f"{m // 60:02d}{m % 60:02d}" for m in self.schedule)
        elif self.window_s:
            shape = f"{self.window_s:g}s"
        else:
            shape = "default"
        return f"{self.mode}/{shape}"


def parse_tag(tag: str) -> tuple[Mode, float | None, tuple[int, ...]]:
    """Mode, window length and schedule back from a ``tag``."""
    mode, _, shape = tag.partition("/")
    if mode not in ("batch", "summary"):
        raise SyncConfigError(f"not a windowed mode tag: {tag!r}")
    if shape.startswith("at"):
        times = tuple(int(p[:2]) * 60 + int(p[2:]) for p in shape[2:].split("-") if p)
        return mode, None, times  # type: ignore[return-value]
    if shape == "default":
        return mode, None, ()  # type: ignore[return-value]
    return mode, float(shape.rstrip("s")), ()  # type: ignore[return-value]


def _length(raw: object, where: str) -> float:
    match = _LENGTH.match(str(raw))
    if match is None:
        raise SyncConfigError(f"{where}: window {raw!r} is not a length like 4h, 30m, 90s")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise SyncConfigError(f"{where}: window must be at least 1 s")
    return seconds


def _schedule(raw: object, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        raise SyncConfigError(f"{where}: schedule must be a list of local times HH:MM")
    minutes = []
    for item in raw:
        match = _CLOCK.match(str(item))
        if match is None:
            raise SyncConfigError(f"{where}: schedule time {item!r} is not HH:MM")
        minutes.append(int(match.group(1)) * 60 + int(match.group(2)))
    if len(set(minutes)) != len(minutes):
        raise SyncConfigError(f"{where}: schedule repeats a time")
    return tuple(sorted(minutes))


def _entry(flow: str, raw: Any, where: str) -> ModeSpec:
    if isinstance(raw, str):
        raw = {"mode": raw}
    if not isinstance(raw, dict):
        raise SyncConfigError(f"{where}: expected a mode name or an object")
    mode = raw.get("mode", HYBRID[flow])
    if mode not in ACCEPTED[flow]:
        why = f": {ONLY_REALTIME[flow]}" if flow in ONLY_REALTIME else ""
        raise SyncConfigError(f"{where}: mode {mode!r} not accepted for {flow} "
                              f"(accepted: {', '.join(ACCEPTED[flow])}){why}")
    window = raw.get("window", raw.get("window_s"))
    schedule = raw.get("schedule")
    if flow in FIXED_SHAPE and (window is not None or schedule is not None):
        raise SyncConfigError(f"{where}: {FIXED_SHAPE[flow]}")
    if window is not None and schedule is not None:
        raise SyncConfigError(f"{where}: give a window length or a schedule, not both")
    return ModeSpec(mode, _length(window, where) if window is not None else None,
                    _schedule(schedule, where) if schedule is not None else ())


@dataclass(frozen=True, slots=True)
class SyncModes:
    """Every flow's mode (absent flows: the hybrid default)."""

    flows: tuple[tuple[str, ModeSpec], ...] = ()

    def window_tag(self, kind: str) -> str | None:
        """The mode tag when a ``Flow.kind``'s events go to the window agent by their mode
        (sales in ``batch`` or ``summary``, payments and returns in ``batch``); None: the
        flow's own route."""
        spec = self.of(kind)
        return spec.tag if spec.windowed and KIND_FLOW.get(kind) in BY_WINDOW_AGENT else None

    def of(self, flow: str) -> ModeSpec:
        """``flow`` by sync name (``sales``) or Flow.kind (``sale``)."""
        name = KIND_FLOW.get(flow, flow)
        for known, spec in self.flows:
            if known == name:
                return spec
        return ModeSpec(HYBRID.get(name, "realtime"))

    @classmethod
    def parse(cls, section: Any, source: str = "<memory>") -> SyncModes:
        """The ``sync`` section, checked: unknown flows, modes a flow does not accept, bad
        windows and schedules are errors naming the entry."""
        if section is None:
            return cls()
        if not isinstance(section, dict):
            raise SyncConfigError(f"{source}: sync must be an object of flow -> mode")
        out = []
        for flow, raw in section.items():
            if flow not in ACCEPTED:
                raise SyncConfigError(f"{source}: sync.{flow}: unknown flow "
                                      f"(flows: {', '.join(FLOWS)})")
            out.append((flow, _entry(flow, raw, f"{source}: sync.{flow}")))
        return cls(tuple(out))

    def describe(self) -> dict[str, str]:
        """flow -> mode tag (``realtime``, ``batch/default``, ``summary/14400s``...)."""
        return {flow: self.of(flow).tag if self.of(flow).windowed else "realtime"
                for flow in FLOWS}
