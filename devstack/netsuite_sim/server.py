"""Run the simulator: in a background thread for tests, or blocking for the CLI."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from tillbridge.connectors.netsuite.auth import NetSuiteCredentials
from tillbridge.devstack.netsuite_sim.app import SimState, create_app


class SimServer:
    """uvicorn on 127.0.0.1, free port, background thread; real HTTP for client tests."""

    def __init__(
        self,
        seed_path: str | Path | None = None,
        credentials: NetSuiteCredentials | None = None,
        concurrency_limit: int = 15,
        latency_ms: float = 0,
        **app_kwargs: Any,
    ) -> None:
        self.credentials = credentials or NetSuiteCredentials.dev()
        self.app = create_app(seed_path, self.credentials, concurrency_limit, latency_ms,
                              **app_kwargs)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def state(self) -> SimState:
        """The account state (read it from tests; mutate only through HTTP while running)."""
        return self.app.state.sim

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (NetSuite paths hang off ``/services/rest``)."""
        if self._port is None:
            raise RuntimeError("SimServer is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self, timeout: float = 10.0) -> SimServer:
        """Bind a free port and serve until ``stop``; returns once accepting connections."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # uvicorn leaves a socket it is handed without TCP_NODELAY: every response with a
        # body then waits ~40 ms for the client's delayed ACK on a kept-alive connection.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                lifespan="off", backlog=512)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="netsuite-sim", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self._server.started:
            if not self._thread.is_alive() or waited >= timeout:
                raise RuntimeError("netsuite simulator failed to start")
            deadline.wait(0.01)
            waited += 0.01
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 8088,
    seed_path: str | Path | None = None,
    credentials: NetSuiteCredentials | None = None,
    concurrency_limit: int = 15,
    latency_ms: float = 0,
    log_level: str = "info",
    **app_kwargs: Any,
) -> None:
    """Blocking server for ``tillbridge netsuite-sim --host H --port P``.

    ``app_kwargs`` are ``create_app`` flags (faults such as ``error_rate``).
    """
    app = create_app(seed_path, credentials, concurrency_limit, latency_ms, **app_kwargs)
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="off")
