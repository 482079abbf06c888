"""Serve the registry: on a background thread for tests and the dev stack, or in the
foreground for ``tillbridge registry``."""

from __future__ import annotations

import os
import socket
import threading

import uvicorn

from tillbridge.devstack.registry.api import create_app
from tillbridge.devstack.registry.store import SchemaStore


class RegistryServer:
    """The registry served by uvicorn on a background thread.

    Binds its own socket (port 0 = any free port) before starting, so ``url``
    is known immediately and tests can run many registries side by side.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.store = SchemaStore(path)
        self._host = host
        self._port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("registry not started")
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 10.0) -> RegistryServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see netsuite_sim.server
        sock.bind((self._host, self._port))
        self._socket = sock
        config = uvicorn.Config(
            create_app(self.store), log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="schema-registry", daemon=True
        )
        self._thread.start()
        ready = threading.Event()
        while not ready.wait(0.01):
            if self._server.started:
                ready.set()
            elif not self._thread.is_alive() or (timeout := timeout - 0.01) <= 0:
                self.stop()
                raise RuntimeError("schema registry failed to start")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1", port: int = 8081, path: str | os.PathLike[str] | None = None
) -> None:
    """Run the registry in the foreground until interrupted (for the CLI)."""
    uvicorn.run(create_app(SchemaStore(path)), host=host, port=port, log_level="info")
