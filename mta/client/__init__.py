"""A small synchronous client for a node's HTTP API, used by the `mta` command line."""

from mta.client.admin import AdminClient
from mta.client.transport import DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, ClientError

__all__ = ["DEFAULT_ENDPOINT", "DEFAULT_TIMEOUT", "AdminClient", "ClientError"]
