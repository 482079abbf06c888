"""Faust's aiokafka transport with a configurable fetch wait.

Faust hard-codes ``fetch_max_wait_ms=1500``. Apache Kafka answers a waiting fetch as soon as
data arrives, so there it only bounds idle polling; Tansu 0.6 does not wake a waiting fetch,
so every hop would add ~750 ms on average. The wait comes from the settings object
(``Settings.fetch_max_wait_ms``, which ``build_app`` puts on the app) and is set before the
consumer starts (aiokafka reads it at start()).
Registered as the ``tillbridge://`` broker scheme.
"""

from __future__ import annotations

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

DEFAULT_FETCH_MAX_WAIT_MS = 50


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport,
                                ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Private attribute, read once in AIOKafkaConsumer.start(); checked by a test so an
        # aiokafka upgrade that renames it fails loudly instead of silently reverting.
        consumer._fetch_max_wait_ms = getattr(self.consumer.app, "fetch_max_wait_ms",
                                              DEFAULT_FETCH_MAX_WAIT_MS)
        return consumer


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


def register() -> None:
    """Make ``tillbridge://host:port`` resolve to this transport."""
    drivers.TRANSPORTS.aliases.setdefault("tillbridge", f"{__name__}:Transport")


register()
