"""Client for NetSuite's SuiteTalk REST API (record service, SuiteQL), TBA or OAuth 2.0 M2M,
with a reliability layer: concurrency governance, retry policy and circuit breaker."""

from .auth import Authenticator, NetSuiteCredentials, TbaSigner, default_base_url
from .breaker import BreakerState, CircuitBreaker
from .client import NetSuiteClient, id_from_location
from .errors import NetSuiteError, NetSuiteUnavailable
from .governance import ConcurrencyLimiter, fair_share
from .oauth2 import OAuth2ClientCredentials, OAuth2Credentials
from .retry import ReliableClient, RetryPolicy, classify

__all__ = [
    "Authenticator",
    "BreakerState",
    "CircuitBreaker",
    "ConcurrencyLimiter",
    "NetSuiteClient",
    "NetSuiteCredentials",
    "NetSuiteError",
    "NetSuiteUnavailable",
    "OAuth2ClientCredentials",
    "OAuth2Credentials",
    "ReliableClient",
    "RetryPolicy",
    "TbaSigner",
    "classify",
    "default_base_url",
    "fair_share",
    "id_from_location",
]
