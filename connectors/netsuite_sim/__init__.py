"""A fake NetSuite account speaking the SuiteTalk REST API, for tests and local runs."""

from .app import SimState, create_app
from .governance import SimConfig
from .server import SimServer, serve

__all__ = ["SimConfig", "SimServer", "SimState", "create_app", "serve"]
