"""`tillbridge demo`: the whole job on the embedded defaults, with figures read back.

Every number in the summary comes from Kafka (read, not from watermarks) or the NetSuite
simulator, never from the generator's own tally, so the identity, per event family
(sales, payments, returns, omnichannel orders, inventory movements),
published == posted + updated + duplicate + skipped + dead-lettered is a real check. A parked
event (a return before its sale) counts once it is released and posted, or
dead-lettered as an orphan.
"""

from __future__ import annotations

import asyncio
import collections
import json
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import Record, TopicTail
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.pos.events import GeneratedEvent
from tillbridge.connectors.pos.publish import publish_generated
from tillbridge.devstack import availability_demo, demo_account
from tillbridge.devstack.books import Mismatch, read_books
from tillbridge.devstack.pos.followups import with_followups
from tillbridge.devstack.pos.generator import generate
from tillbridge.devstack.pos.inventory import with_movements
from tillbridge.devstack.pos.orders import generate_orders
from tillbridge.devstack.pos.recon_day import CLEAN, DIRTY
from tillbridge.devstack.recon_demo import run_day
from tillbridge.devstack.stack import Stack, WorkerProcess, local_stack
from tillbridge.devstack.tender_books import situations_of
from tillbridge.streams.refdata.mappings import Mappings, tax_setup
from tillbridge.streams.runtime.settings import Settings
from tillbridge.streams.stages.deadletter import H_REASON

#: Input topic -> event family (the results' ``event_type``; sales carry none).
FAMILIES = {topics.SALE.name: "sale", topics.PAYMENT.name: "payment",
            topics.RETURN.name: "return", topics.OMNICHANNEL.name: "order",
            topics.INVENTORY.name: "inventory"}
#: "parked" is not final: a post or a dead letter follows it.
FINAL = ("posted", "updated", "duplicate", "skipped")


@dataclass
class Tally:
    """Per event family: published, and how each event ended (read back from Kafka)."""

    published: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # family -> outcome
    dead_lettered: dict[str, int] = field(default_factory=dict)  # reason -> count
    records_created: dict[str, int] = field(default_factory=dict)  # NetSuite simulator
    customers_created: int = 0
    parked_then_released: int = 0
    elapsed_s: float = 0.0
    #: the settlement and reconciliation block (``devstack/recon_demo.py``)
    settlement: dict[str, Any] | None = None
    #: posted POS sales whose NetSuite total and taxTotal equal the receipt's, of those read
    books: dict[str, Any] = field(default_factory=dict)
    #: inventory windows: one inventoryAdjustment per location and window (the simulator)
    inventory: dict[str, Any] = field(default_factory=dict)
    #: NetSuite back to the stores: availability, signals, order status (availability_demo)
    stores: dict[str, Any] = field(default_factory=dict)

    def settled(self, family: str) -> int:
        return sum(self.outcomes.get(family, {}).values())

    @property
    def balanced(self) -> bool:
        """Every published event of every family ended posted, duplicate, skipped or DLQ."""
        return all(self.settled(f) == n for f, n in self.published.items())

    def as_json(self) -> dict[str, Any]:
        return {"published": self.published, "outcomes": self.outcomes,
                "dead_lettered": dict(sorted(self.dead_lettered.items())),
                "records_created": self.records_created,
                "customers_created": self.customers_created,
                "parked_then_released": self.parked_then_released,
                "books": {k: v for k, v in self.books.items() if k != "money"},
                "money": self.books.get("money"), "balanced": self.balanced,
                "inventory": self.inventory, "stores": self.stores,
                "elapsed_s": round(self.elapsed_s, 2),
                **({"settlement": compact(self.settlement)} if self.settlement else {})}

    @property
    def money_drift(self) -> bool:
        """NetSuite's totals or tax differ from the POS's over the sales read back."""
        money = self.books.get("money")
        return money is not None and (Decimal(money["drift"]) != 0
                                      or bool(self.books.get("mismatches")))

    @property
    def reconciled(self) -> bool:
        """The clean store balances (exit 0); the dirty one names every injected difference."""
        if self.settlement is None:
            return True
        recon = self.settlement["reconciliation"]
        named = {d["pos_transaction_id"] for d in recon[DIRTY]["differences"]}
        return recon[CLEAN]["exit_code"] == 0 and recon[DIRTY]["exit_code"] == 1 and \
            named == set(self.settlement["injected"].values())


def compact(block: dict[str, Any]) -> dict[str, Any]:
    """The demo's JSON view of the block: deposits per register, what waits, and each
    store's reconciliation with the differences named by transaction id."""
    return {"business_date": block["business_date"],
            "deposits": {f"{b['store_id']}/{b['register_id']}": b.get("deposit_total")
                         for b in block["banked"]},
            "over_short_journals": {f"{b['store_id']}/{b['register_id']}": b["over_short"]
                                    for b in block["banked"] if b.get("over_short")},
            "waiting": {f"{b['store_id']}/{b['register_id']}": waits["waiting_for"]
                        for b in block["banked"]
                        if (waits := block["settlements"].get(b["settlement_id"], {}))
                        .get("outcome") == "parked"},
            "injected": block["injected"],
            "reconciliation": {store: {"exit_code": r["exit_code"],
                                       "drift_count": r["drift_count"],
                                       "drift_amount": r["drift_amount"],
                                       "named": {d["pos_transaction_id"]:
                                                 f"{d['problem']} ({d['state']})"
                                                 for d in r["differences"]}}
                               for store, r in sorted(block["reconciliation"].items())}}


def books_match(base_url: str, events: list[tuple[str, dict[str, Any]]],
                maps: Mappings | None = None) -> dict[str, Any]:
    """Read every record back from NetSuite and hold each against its clean POS event, per
    POS transaction (``devstack/books.py``): sale total, tax and money per payment method,
    return refunds and tax, exchange sales, loyalty movements and balances. ``money``: the
    sums over the sales read back, and the drift of every money figure compared."""
    books = read_books(base_url, events)
    sales = topics.SALE.name
    tenders = {"checked": sum(1 for topic, _ in events if topic == sales) - books.missing["sale"],
               "situations": dict(sorted(collections.Counter(
                   k for topic, ev in events if topic == sales
                   for k in situations_of(ev)).items()))}  # type: ignore[arg-type]
    wrong = {m.pos_transaction_id for m in books.mismatches
             if m.what in ("sale total", "sale tax", "summary total", "summary tax")}
    read_back = books.checked["sale total"] + books.summarised
    maps = maps or Mappings.load()
    models = collections.Counter(
        tax_setup(maps.document.get("tax"), maps.stores[ev["store_id"]].subsidiary).model
        for topic, ev in events if topic == sales and ev["store_id"] in maps.stores)
    return {"sales_read_back": read_back, "total_and_tax_match": read_back - len(wrong),
            "sales_by_tax_model": dict(sorted(models.items())),
            "checked": dict(sorted(books.checked.items())),
            "missing": dict(books.missing), "tenders": tenders,
            "mismatches": [vars_of(m) for m in books.mismatches[:20]],
            "money": books.money()}


def vars_of(m: Mismatch) -> dict[str, str]:
    return {"pos_transaction_id": m.pos_transaction_id, "what": m.what, "pos": m.pos,
            "netsuite": m.netsuite}


def sim_counts(base_url: str) -> tuple[dict[str, int], int]:
    """(records created per transaction type, customers created) from the simulator."""
    stats = httpx.get(f"{base_url}/__sim/stats", timeout=10).json()
    created = {rt: int(v.get("created", 0)) for rt, v in stats["records"].items()}
    customers = created.pop("customer", 0)
    return {rt: n for rt, n in created.items() if n}, customers


class Watch:
    """Reads input, results and DLQ topics to tell when every event has a final outcome."""

    def __init__(self, bootstrap: str) -> None:
        self.tail = TopicTail(bootstrap, [*FAMILIES, topics.RESULTS, *topics.DLQ_TOPICS])
        # Counted as records arrive: each progress tick reads only what is new.
        self._read = dict.fromkeys([topics.RESULTS, *topics.DLQ_TOPICS], 0)
        self._by_family: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter)
        self._dead: collections.Counter[str] = collections.Counter()
        self._parked: set[str] = set()
        self._released = 0

    def published(self) -> dict[str, int]:
        return {family: self.tail.count(topic) for topic, family in FAMILIES.items()}

    def _new(self, topic: str) -> list[Record]:
        records = self.tail.records[topic]
        new, self._read[topic] = records[self._read[topic]:], len(records)
        return new

    def outcomes(self) -> tuple[dict[str, collections.Counter[str]], collections.Counter[str],
                                int]:
        """(family -> final outcome counts incl. dead_lettered, DLQ reasons, released)."""
        by_family, parked = self._by_family, self._parked
        for r in self._new(topics.RESULTS):
            doc = json.loads(r.value or b"{}")
            family = doc.get("event_type", "sale")
            outcome = doc.get("outcome", "?")
            ident = str(doc.get("payment_id") or doc.get("movement_id") or (
                f"{doc['order_id']}#{doc.get('sequence')}" if family == "order"
                else doc.get("pos_transaction_id")))
            if outcome == "parked":
                parked.add(f"{family}/{ident}")
                continue
            if outcome in FINAL:
                by_family[family][outcome] += 1
                self._released += f"{family}/{ident}" in parked
        for name in topics.DLQ_TOPICS:
            for r in self._new(name):
                self._dead[r.header(H_REASON) or "unknown"] += 1
                family = FAMILIES.get(r.header("__connect.errors.topic") or "", "sale")
                by_family[family]["dead_lettered"] += 1
        return by_family, self._dead, self._released

    def settled(self) -> int:
        by_family, _, _ = self.outcomes()
        return sum(sum(c.values()) for c in by_family.values())


#: The demo runs hybrid: inventory through windows of a few seconds (event time), closed by
#: the stores' later movements or, once a store is quiet, by the wall clock.
DEMO_WINDOWS = {"window_s": 5.0, "window_grace_s": 1.0, "window_idle_s": 2.0,
                "window_tick_s": 0.5}


def inventory_windows(base_url: str) -> dict[str, Any]:
    """The inventory windows NetSuite holds: one adjustment per location and window (the
    ``pos-adj-`` externalIds; a return's disposal adjustments are ``pos-disp-``)."""
    async def read() -> dict[str, Any]:
        async with NetSuiteClient(base_url, NetSuiteCredentials.dev()) as c:
            heads = await c.suiteql("SELECT id, externalid, memo FROM transaction WHERE "
                                    "recordtype = 'inventoryadjustment'")
            lines = await c.suiteql("SELECT transaction, item, quantity, location FROM "
                                    "transactionline WHERE mainline = 'F'")
        ids = {h["id"]: h for h in heads if str(h["externalid"]).startswith("pos-adj-")}
        per: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for ln in lines:
            if ln["transaction"] in ids:
                per[ln["transaction"]].append(ln)
        adjustments = [{"external_id": ids[i]["externalid"],
                        "location": (per[i][0]["location"] if per[i] else None),
                        "lines": len(per[i]),
                        "net_quantity": str(sum(Decimal(ln["quantity"]) for ln in per[i]))}
                       for i in sorted(ids, key=lambda i: ids[i]["externalid"])]
        return {"windows": len(adjustments), "adjustments": adjustments}

    return asyncio.run(read())


def _demo_stack(settings: Settings, directory: Path) -> AbstractContextManager[Stack]:
    """The demo's stack. When the demo starts the simulator on the packaged mappings, the
    account has S004 on a SuiteTax subsidiary (``demo_account.py``), so the day books tax
    both ways; a configured NetSuite or mappings file is used as it is."""
    if settings.netsuite_base_url or settings.mappings_path:
        return local_stack(settings, sim_process=True)
    seed, mappings = demo_account.write(directory)
    return local_stack(settings.replace(mappings_path=str(mappings)), sim_process=True,
                       sim_seed=seed)


def clean_sales_and_returns(stream: list[GeneratedEvent]) -> list[tuple[str, dict[str, Any]]]:
    """(topic, event) of the clean sales and returns: what the books are held against."""
    return [(e.topic.name, e.value) for e in stream
            if e.topic in (topics.SALE, topics.RETURN)
            and e.dirty_kind is None and isinstance(e.value, dict)]


def run_demo(settings: Settings, *, events: int = 2000, dirty: float = 0.05, seed: int = 42,
             rate: float | None = None, timeout: float = 300.0, return_rate: float = 0.05,
             orders: int | None = None, settle: bool = True,
             console: Console | None = None) -> Tally:
    quiet = console is None
    console = console or Console(quiet=True)
    started = time.monotonic()
    settings = settings.replace(**DEMO_WINDOWS, **availability_demo.SETTINGS)
    with tempfile.TemporaryDirectory(prefix="tillbridge-demo-") as tmp, \
            _demo_stack(settings, Path(tmp)) as stack:
        s = stack.settings
        console.log(f"broker {s.kafka_bootstrap_servers}, registry {s.schema_registry_url}, "
                    f"NetSuite {s.netsuite_base_url}")
        availability_demo.prepare(s.netsuite_base_url or "")
        with WorkerProcess(s) as worker:
            console.log(f"worker ready at {worker.url} (/metrics, /ready)")
            watch = Watch(s.kafka_bootstrap_servers or "")
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                          console=console, disable=quiet) as progress:
                stream = list(with_movements(with_followups(
                    generate(events, seed=seed, dirty=dirty), seed=seed,
                    return_rate=return_rate), seed=seed))
                stream += generate_orders(events // 10 if orders is None else orders, seed)
                pub = progress.add_task("published", total=len(stream))
                done = progress.add_task("settled", total=len(stream))
                publish_generated(s.kafka_bootstrap_servers or "", s.schema_registry_url or "",
                                  stream, rate=rate,
                                  progress=lambda n: progress.update(pub, completed=n))
                watch.tail.wait_for(
                    lambda t: sum(watch.published().values()) >= len(stream), 60)
                published = sum(watch.published().values())
                progress.update(pub, completed=published, total=published)
                progress.update(done, total=published)

                def on_progress(_: TopicTail) -> None:
                    progress.update(done, completed=watch.settled())
                    if worker.proc is None or worker.proc.poll() is not None:
                        raise RuntimeError("worker exited; log:\n" + worker.log_tail())

                watch.tail.wait_for(lambda t: watch.settled() >= published, timeout,
                                    on_progress=on_progress)
            by_family, dead, released = watch.outcomes()
            per_family = watch.published()
            created, customers = sim_counts(s.netsuite_base_url or "")
            books = books_match(s.netsuite_base_url or "", clean_sales_and_returns(stream),
                                Mappings.load(s.mappings_path))
            windows = inventory_windows(s.netsuite_base_url or "")
            stores = availability_demo.gather(s, {str(e.value["order_id"]) for e in stream
                                                  if e.topic == topics.OMNICHANNEL
                                                  and isinstance(e.value, dict)})
            watch.tail.close()
            elapsed = time.monotonic() - started
            # After the tally: its figures stay those of the main run.
            console.log("settlement and reconciliation of one more business day")
            block = run_day(s, timeout=min(timeout, 120.0)) if settle else None
        tally = Tally(per_family, {f: dict(c) for f, c in sorted(by_family.items())},
                      dict(dead), created, customers, released, elapsed, block, books,
                      windows, stores)
    return tally


def summary_table(t: Tally) -> Table:
    table = Table(title="tillbridge demo", show_header=True)
    table.add_column("event family / outcome")
    table.add_column("count", justify="right")
    for family, n in t.published.items():
        ok = t.settled(family) == n
        table.add_row(f"[bold]{family}[/]: published (read back from Kafka)", str(n))
        for outcome, count in sorted(t.outcomes.get(family, {}).items()):
            table.add_row(f"  {outcome}", str(count))
        table.add_row("  settled = posted + updated + duplicate + skipped + DLQ",
                      f"[{'green' if ok else 'red'}]{t.settled(family)}[/]")
    for reason, n in sorted(t.dead_lettered.items()):
        table.add_row(f"dead-lettered: {reason}", str(n))
    table.add_row("parked, then released when their sale landed", str(t.parked_then_released))
    for rt, n in sorted(t.records_created.items()):
        table.add_row(f"NetSuite records created: {rt}", str(n))
    table.add_row("NetSuite customers created", str(t.customers_created))
    if t.books:
        table.add_row("POS sales whose NetSuite total and taxTotal match the receipt",
                      f"{t.books['total_and_tax_match']} of {t.books['sales_read_back']}")
        money = t.books["money"]
        table.add_row("money: POS total / NetSuite total",
                      f"{money['pos_total']} / {money['netsuite_total']}")
        table.add_row("money: POS tax / NetSuite tax",
                      f"{money['tax_pos']} / {money['tax_netsuite']}")
        table.add_row("money: drift", f"[{'red' if t.money_drift else 'green'}]"
                                      f"{money['drift']}[/]")
    if t.settlement:
        block = compact(t.settlement)
        for register, total in block["deposits"].items():
            waits = block["waiting"].get(register)
            table.add_row(f"deposit {register} {block['business_date']}",
                          str(total or (f"waits for {waits}" if waits else "none")))
        for store, r in block["reconciliation"].items():
            table.add_row(f"reconcile {store}: exit {r['exit_code']}",
                          f"{r['drift_count']} ({r['drift_amount']})")
            for txn, what in r["named"].items():
                table.add_row(f"  {txn}", what)
    for adj in t.inventory.get("adjustments", []):
        table.add_row(f"inventory window {adj['external_id']} (location {adj['location']})",
                      f"{adj['lines']} lines, net {adj['net_quantity']}")
    for name, value in availability_demo.rows(t.stores):
        table.add_row(name, value)
    table.add_row("elapsed", f"{t.elapsed_s:.1f}s")
    return table
