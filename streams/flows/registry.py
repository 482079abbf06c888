"""Which flow handles which input topic: one ``Flow`` per POS event family.

Route keys put an event on the routed partition of the record it depends on: a payment
and a return under their sale's POS transaction id (the sale's own key), every event of
an omnichannel order under the order id. Then one sink task sees them in order, and the
parking table's owner is the worker that will write the dependency.
"""

from __future__ import annotations

from decimal import Decimal

from tillbridge.streams.flows.base import Flow
from tillbridge.streams.flows.order import OrderFlow
from tillbridge.streams.flows.payment import PaymentFlow
from tillbridge.streams.flows.returns import ReturnFlow
from tillbridge.streams.flows.sale import SaleFlow
from tillbridge.streams.flows.settlement import SettlementFlow
from tillbridge.streams.flows.stock import InventoryFlow


def default_flows(double_scan_window_s: float = 600.0,
                  reconcile_drift_threshold_cents: int = 0) -> dict[str, Flow]:
    """Every family the pipeline carries (inventory through a window), by input topic
    (fresh instances: a flow may keep per-worker state, e.g. the sale's double-scan
    window)."""
    flows: list[Flow] = [SaleFlow(double_scan_window_s), ReturnFlow(), PaymentFlow(),
                         OrderFlow(),
                         SettlementFlow(Decimal(reconcile_drift_threshold_cents) / 100),
                         InventoryFlow()]
    return {flow.topic: flow for flow in flows}
