"""`tillbridge demo`: the whole job on the embedded defaults, with figures read back.

Every number in the summary comes from Kafka (read, not from watermarks) or the NetSuite
simulator, never from the generator's own tally, so the identity
published == posted + dead-lettered + duplicates prevented is a real check.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.reader import TopicTail
from tillbridge.connectors.pos.generator import generate
from tillbridge.connectors.pos.publish import publish_generated

from .deadletter import H_REASON
from .settings import Settings
from .stack import WorkerProcess, local_stack


@dataclass
class Tally:
    published: int = 0
    posted: dict[str, int] = field(default_factory=dict)
    customers_created: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    duplicates_prevented: int = 0
    elapsed_s: float = 0.0

    @property
    def settled(self) -> int:
        return sum(self.posted.values()) + sum(self.dead_lettered.values()) + \
            self.duplicates_prevented

    def as_json(self) -> dict[str, Any]:
        return {"published": self.published, "posted": self.posted,
                "customers_created": self.customers_created,
                "dead_lettered": dict(sorted(self.dead_lettered.items())),
                "duplicates_prevented": self.duplicates_prevented,
                "elapsed_s": round(self.elapsed_s, 2)}


def sim_counts(base_url: str) -> tuple[dict[str, int], int]:
    """(records created per transaction type, customers created) from the simulator."""
    stats = httpx.get(f"{base_url}/__sim/stats", timeout=10).json()
    created = {rt: int(v.get("created", 0)) for rt, v in stats["records"].items()}
    customers = created.pop("customer", 0)
    return {rt: n for rt, n in created.items() if n}, customers


class Watch:
    """Reads input, results and DLQ topics to tell when every event has an outcome."""

    def __init__(self, bootstrap: str) -> None:
        self.tail = TopicTail(bootstrap, [topics.SALE.name, topics.RESULTS, *topics.DLQ_TOPICS])

    def outcomes(self) -> tuple[int, int, collections.Counter[str]]:
        results = self.tail.records[topics.RESULTS]
        dups = sum(1 for r in results if r.header("tillbridge.outcome") == "duplicate")
        dead: collections.Counter[str] = collections.Counter()
        for name in topics.DLQ_TOPICS:
            for r in self.tail.records[name]:
                dead[r.header(H_REASON) or "unknown"] += 1
        return len(results) - dups, dups, dead

    def settled(self) -> int:
        posted, dups, dead = self.outcomes()
        return posted + dups + sum(dead.values())


def run_demo(settings: Settings, *, events: int = 2000, dirty: float = 0.05, seed: int = 42,
             rate: float | None = None, timeout: float = 300.0,
             console: Console | None = None) -> Tally:
    quiet = console is None
    console = console or Console(quiet=True)
    started = time.monotonic()
    with local_stack(settings, sim_process=True) as stack:
        s = stack.settings
        console.log(f"broker {s.kafka_bootstrap_servers}, registry {s.schema_registry_url}, "
                    f"NetSuite {s.netsuite_base_url}")
        with WorkerProcess(s) as worker:
            console.log(f"worker ready at {worker.url} (/metrics, /ready)")
            watch = Watch(s.kafka_bootstrap_servers or "")
            with Progress(TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                          console=console, disable=quiet) as progress:
                pub = progress.add_task("published", total=events)
                done = progress.add_task("settled", total=events)
                publish_generated(s.kafka_bootstrap_servers or "", s.schema_registry_url or "",
                                  generate(events, seed=seed, dirty=dirty), rate=rate,
                                  progress=lambda n: progress.update(pub, completed=n))
                watch.tail.wait_for(lambda t: t.count(topics.SALE.name) >= events, 60)
                published = watch.tail.count(topics.SALE.name)
                progress.update(pub, completed=published, total=published)
                progress.update(done, total=published)

                def on_progress(_: TopicTail) -> None:
                    progress.update(done, completed=watch.settled())
                    if worker.proc is None or worker.proc.poll() is not None:
                        raise RuntimeError("worker exited; log:\n" + worker.log_tail())

                watch.tail.wait_for(lambda t: watch.settled() >= published, timeout,
                                    on_progress=on_progress)
            _, dups, dead = watch.outcomes()
            posted, customers = sim_counts(s.netsuite_base_url or "")
            watch.tail.close()
        tally = Tally(published, posted, customers, dict(dead), dups,
                      time.monotonic() - started)
    return tally


def summary_table(t: Tally) -> Table:
    table = Table(title="tillbridge demo", show_header=True)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_row("published (read back from Kafka)", str(t.published))
    for rt, n in sorted(t.posted.items()):
        table.add_row(f"posted: {rt} (NetSuite simulator)", str(n))
    table.add_row("customers created", str(t.customers_created))
    for reason, n in sorted(t.dead_lettered.items()):
        table.add_row(f"dead-lettered: {reason}", str(n))
    table.add_row("duplicates prevented", str(t.duplicates_prevented))
    ok = t.settled == t.published
    table.add_row("[bold]settled = posted + dead + duplicates[/]",
                  f"[{'green' if ok else 'red'}]{t.settled}[/]")
    table.add_row("elapsed", f"{t.elapsed_s:.1f}s")
    return table
