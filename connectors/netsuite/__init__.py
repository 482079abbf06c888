"""Client for NetSuite's SuiteTalk REST API (record service, SuiteQL), TBA or OAuth 2.0 M2M,
with a reliability layer: concurrency governance, retry policy and circuit breaker."""

from tillbridge.connectors.netsuite.auth import (
    Authenticator,
    NetSuiteCredentials,
    TbaSigner,
    default_base_url,
)
from tillbridge.connectors.netsuite.breaker import BreakerState, CircuitBreaker
from tillbridge.connectors.netsuite.client import NetSuiteClient, id_from_location
from tillbridge.connectors.netsuite.errors import (
    AlreadyExists,
    AmbiguousFailure,
    AuthFailed,
    ConnectionFailed,
    NetSuiteError,
    NetSuiteUnavailable,
    NotFound,
    Rejected,
    RetryableError,
    ServerError,
    Throttled,
    TimedOut,
    error_class,
)
from tillbridge.connectors.netsuite.governance import ConcurrencyLimiter, fair_share
from tillbridge.connectors.netsuite.oauth2 import OAuth2ClientCredentials, OAuth2Credentials
from tillbridge.connectors.netsuite.retry import ReliableClient, RetryPolicy, classify

__all__ = [
    "AlreadyExists",
    "AmbiguousFailure",
    "AuthFailed",
    "Authenticator",
    "BreakerState",
    "CircuitBreaker",
    "ConcurrencyLimiter",
    "ConnectionFailed",
    "NetSuiteClient",
    "NetSuiteCredentials",
    "NetSuiteError",
    "NetSuiteUnavailable",
    "NotFound",
    "OAuth2ClientCredentials",
    "OAuth2Credentials",
    "Rejected",
    "ReliableClient",
    "RetryPolicy",
    "RetryableError",
    "ServerError",
    "TbaSigner",
    "Throttled",
    "TimedOut",
    "classify",
    "default_base_url",
    "error_class",
    "fair_share",
    "id_from_location",
]
