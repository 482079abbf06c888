"""One simulated NetSuite account's state (:class:`SimState`) and what configures it.

Apart from the app so the request handlers (:mod:`.handlers`) and the app wiring them
(:mod:`.app`) can both name it without importing each other.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials
from tillbridge.devstack.netsuite_sim.auth import SimAuth
from tillbridge.devstack.netsuite_sim.faults import CommitThenTimeout, ErrorRate, Latency, Outage
from tillbridge.devstack.netsuite_sim.governance import ConcurrencyGate, Fault, SimConfig
from tillbridge.devstack.netsuite_sim.jobs import JobQueue
from tillbridge.devstack.netsuite_sim.store import Store


@dataclass
class SimState:
    """Everything one simulated account holds; ``reset`` returns it to its start."""

    seed: dict[str, Any]
    credentials: NetSuiteCredentials
    initial_config: SimConfig
    initial_outage_s: float = 0.0
    #: M2M mappings present from the start (``{client_id, certificate_id, public_key_pem}``);
    #: ``reset`` keeps these and forgets the ones added through ``/__sim/oauth2``.
    oauth2_clients: tuple[Mapping[str, str], ...] = ()
    config: SimConfig = field(init=False)
    store: Store = field(init=False)
    gate: ConcurrencyGate = field(init=False)
    auth: SimAuth = field(init=False)
    rng: random.Random = field(init=False)
    outage: Outage = field(init=False)
    jobs: JobQueue = field(init=False)
    faults: list[Fault] = field(init=False)

    def __post_init__(self) -> None:
        self.config = SimConfig(**self.initial_config.as_dict())
        self.config.check()
        self.store = Store(self.seed)
        self.gate = ConcurrencyGate(self.config)
        self.auth = SimAuth(self.credentials)
        for client in self.oauth2_clients:
            register_oauth2(self.auth, client, startup=True)
        self.rng = random.Random(self.config.seed)
        self.outage = Outage(self.count_fault)
        self.jobs = JobQueue(self.config)
        # Order matters: an outage answers before anything else; errors before latency.
        self.faults = [self.outage, ErrorRate(self.config, self.rng, self.count_fault),
                       Latency(self.config, self.rng),
                       CommitThenTimeout(self.config, self.rng, self.count_fault)]
        if self.initial_outage_s > 0:
            self.outage.start(self.initial_outage_s)

    def count_fault(self, name: str) -> None:
        self.store.stats.faults[name] += 1

    def configure(self, values: dict[str, Any]) -> None:
        """``/__sim/config``: SimConfig keys, plus ``outage_s`` (starts an outage now)."""
        values = dict(values)
        outage_s = values.pop("outage_s", None)
        self.config.update(values)
        if "seed" in values:
            self.rng.seed(self.config.seed)
        if outage_s is not None:
            self.outage.start(float(outage_s))

    def reset(self) -> None:
        """Reload the seed, forget records/stats/jobs/nonces/tokens; restore the start-up
        config and M2M mappings."""
        self.config.update(self.initial_config.as_dict())
        self.store = Store(self.seed)
        self.auth.reset()
        self.gate.peak = 0
        self.rng.seed(self.config.seed)
        self.outage.stop()
        self.jobs.reset()


def register_oauth2(auth: SimAuth, values: Mapping[str, object], *,
                    startup: bool = False) -> dict[str, Any]:
    """Map a certificate to an integration (the M2M Setup page); ``ValueError`` if unfit."""
    try:
        client = auth.m2m.register(
            str(values["client_id"]), str(values["certificate_id"]),
            str(values["public_key_pem"]).encode(), role=str(values.get("role", "3")),
            entity=str(values.get("entity", "-5")), startup=startup)
    except KeyError as exc:
        raise ValueError(f"missing {exc}") from None
    return client.describe()
