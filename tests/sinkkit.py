"""Events through the real sink against the NetSuite simulator, without a broker.

The Avro codec is stood in by the event itself (``EventCodec``): the codec is not what
these tests are about, and the routed record's headers are built as ingest builds them
(``routed``). ``sink_session`` opens the real client, loads reference data from the
simulator and gives the pipeline a client that does not retry, so an error shows at once.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.netsuite import NetSuiteClient, NetSuiteCredentials
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.streams.flows.pipeline import Pipeline
from tillbridge.streams.refdata.mappings import Mappings
from tillbridge.streams.refdata.snapshot import ReferenceData
from tillbridge.streams.stages import route
from tillbridge.streams.stages.enrich import Enrichment, enrich_sale
from tillbridge.streams.stages.messages import Source


class EventCodec:
    """Stands in for the Avro codec: every routed value decodes to (a copy of) ``event``."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    def decode(self, value: bytes, topic: str) -> dict[str, Any]:
        return copy.deepcopy(self.event)


def routed(offset: int, enr: Enrichment | None = None, *, topic: str = "pos.sale.v1",
           partition: int = 0, extra: Sequence[tuple[str, bytes]] = ()) -> Source:
    """The routed record ingest would have produced for the event at ``offset``."""
    headers = [(route.H_SRC_TOPIC, topic.encode()),
               (route.H_SRC_PARTITION, str(partition).encode()),
               (route.H_SRC_OFFSET, str(offset).encode()), *extra]
    if enr is not None:
        headers.insert(0, (route.H_ENRICHMENT, enr.to_json()))
    return Source(topics.ROUTED_REALTIME, partition, offset, b"k", b"v", headers)


@asynccontextmanager
async def sink_session(sim: SimServer, pipe: Pipeline, sale: dict[str, Any] | None = None,
                       maps: Mappings | None = None, *, refdata: bool = False,
                       ) -> AsyncIterator[tuple[NetSuiteClient, Enrichment | None]]:
    """The client, and ``sale`` enriched against the simulator's reference data."""
    async with NetSuiteClient(sim.base_url, NetSuiteCredentials.dev()) as client:
        ref = ReferenceData()
        await ref.load(client)
        if refdata:  # flows that look up reference data themselves (orders)
            pipe.refdata = ref
        pipe.reliable = ReliableClient(client, RetryPolicy(max_attempts=1))
        enr = None
        if sale is not None:
            enr = enrich_sale(sale, maps or pipe.mappings, ref)  # type: ignore[arg-type]
            assert isinstance(enr, Enrichment), enr
        yield client, enr
