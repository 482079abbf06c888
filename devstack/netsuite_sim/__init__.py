"""A fake NetSuite account speaking the SuiteTalk REST API, for tests and local runs."""

from tillbridge.devstack.netsuite_sim.app import SimState, create_app
from tillbridge.devstack.netsuite_sim.governance import SimConfig
from tillbridge.devstack.netsuite_sim.server import SimServer, serve

__all__ = ["SimConfig", "SimServer", "SimState", "create_app", "serve"]
