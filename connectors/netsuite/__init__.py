"""Client for NetSuite's SuiteTalk REST API (record service, SuiteQL) with TBA auth."""

from .auth import NetSuiteCredentials, TbaSigner, default_base_url
from .client import NetSuiteClient, id_from_location
from .errors import NetSuiteError

__all__ = [
    "NetSuiteClient",
    "NetSuiteCredentials",
    "NetSuiteError",
    "TbaSigner",
    "default_base_url",
    "id_from_location",
]
