"""Start what is not configured: the embedded broker, registry and NetSuite simulator, and
worker processes. Used by the demo, the tests and the benchmark.

A worker runs as its own process (`tillbridge worker`), as in production, so tests can kill
and restart it mid-stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from tillbridge.connectors.kafka import topics
from tillbridge.connectors.kafka.admin import ensure_topics
from tillbridge.devstack.broker import EmbeddedBroker, free_port
from tillbridge.devstack.netsuite_sim import SimServer
from tillbridge.devstack.registry import RegistryServer
from tillbridge.streams.runtime.auth_config import tba_credentials
from tillbridge.streams.runtime.settings import Settings

ALL_TOPICS = ([t.name for t in topics.EVENT_TOPICS] + [topics.ROUTED_REALTIME, topics.ROUTED_WINDOW,
                                                   topics.RESULTS, topics.WINDOWS]
              + list(topics.DLQ_TOPICS) + [topics.DLQ_AUDIT, topics.AUDIT_PROMOTIONS,
                                           topics.CONTROL, topics.PARKED,
                                           topics.AUDIT_PAYMENTS, topics.AUDIT_LOYALTY,
                                           topics.AUDIT_BUSINESS_DATES])


@dataclasses.dataclass
class Stack:
    settings: Settings
    sim: SimServer | None


class SimProcess:
    """The NetSuite simulator in its own process (`tillbridge netsuite-sim`).

    In-process (a thread) is enough for tests; benchmarks and the demo use a process so the
    simulator's Python does not share a GIL with the code measuring it.
    """

    def __init__(self, settings: Settings, latency_ms: float = 0.0,
                 seed_path: Path | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **settings_env(settings)}
        seed = ["--seed", str(seed_path)] if seed_path is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tillbridge.streams.ops.cli", "netsuite-sim", "--host",
             "127.0.0.1", "--port", str(self.port), "--latency-ms", str(latency_ms), *seed],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"simulator exited with {self.proc.returncode}")
            try:
                httpx.get(f"{self.base_url}/__sim/stats", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError("simulator did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@contextlib.contextmanager
def local_stack(settings: Settings, *, sim_latency_ms: float = 0.0,
                sim_process: bool = False, sim_seed: Path | None = None) -> Iterator[Stack]:
    """Yield settings pointing at running services, starting embedded ones where unset
    (``sim_seed``: the simulated account's seed, default the packaged sandbox)."""
    with contextlib.ExitStack() as stack:
        overrides: dict[str, object] = {}
        if not settings.kafka_bootstrap_servers:
            broker = stack.enter_context(EmbeddedBroker())
            overrides["kafka_bootstrap_servers"] = broker.bootstrap
        if not settings.schema_registry_url:
            registry = stack.enter_context(RegistryServer())
            overrides["schema_registry_url"] = registry.url
        sim = None
        if not settings.netsuite_base_url and sim_process:
            proc = SimProcess(settings, sim_latency_ms, sim_seed)
            stack.callback(proc.stop)
            overrides["netsuite_base_url"] = proc.base_url
        elif not settings.netsuite_base_url:
            sim = SimServer(sim_seed, credentials=tba_credentials(settings),
                            latency_ms=sim_latency_ms)
            stack.enter_context(sim)
            overrides["netsuite_base_url"] = sim.base_url
        resolved = settings.replace(**overrides)
        ensure_topics(resolved.kafka_bootstrap_servers or "", ALL_TOPICS,
                      partitions=resolved.topic_partitions)
        yield Stack(resolved, sim)




def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce ``settings`` in a child process.

    Every setting is passed (None as empty, read as unset), so the parent's own environment
    cannot stand in for one. That includes the NetSuite credentials: a worker pointed at the
    simulator has ``NETSUITE_BASE_URL`` set, so it must be given them explicitly.
    """
    return settings.to_env()


class WorkerProcess:
    """A `tillbridge worker` child process with its own web port and state dir.

    ``data_dir`` reuses a state dir (a worker restarted on its own tables); by default each
    worker gets a fresh one. ``restart`` starts it again on the same dir and web port.
    """

    def __init__(self, settings: Settings, log_path: Path | None = None,
                 data_dir: str | None = None, **env: str) -> None:
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="tillbridge-worker-")
        self.settings = settings.replace(web_port=free_port(), data_dir=self.data_dir)
        self._log: IO[bytes] | None = None
        self.extra_env = env
        self.log_path = log_path or Path(self.data_dir) / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    def start(self, ready_timeout: float = 60.0, wait: bool = True) -> WorkerProcess:
        env = {**os.environ, **settings_env(self.settings), **self.extra_env}
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tillbridge.streams.ops.cli", "worker"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            self.wait_ready(ready_timeout)
        return self

    def restart(self, ready_timeout: float = 60.0, wait: bool = True,
                settings: Settings | None = None) -> WorkerProcess:
        """Start again on the same data dir and web port (after ``kill`` or ``stop``).
        ``settings`` may change what else the worker is given (e.g. a new broker)."""
        if self.proc is not None:
            self.stop()
        if settings is not None:
            self.settings = settings.replace(web_port=self.settings.web_port,
                                             data_dir=self.data_dir)
        return self.start(ready_timeout, wait)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}); log:\n"
                                   + self.log_tail())
            try:
                if httpx.get(self.url + "/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s; log:\n{self.log_tail()}")

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=5.0).text

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop (SIGTERM: Faust commits what is done), then kill."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """Hard stop (SIGKILL): no commit, no flush — what a crash looks like."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
