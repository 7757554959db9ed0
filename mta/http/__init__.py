"""The HTTP API: KumoMTA's inject and liveness endpoints, admin, metrics, health probes."""

from mta.http.health import HealthLike, NodeHealth
from mta.http.inject_route import InjectServiceLike
from mta.http.server import HttpServer

__all__ = ["HealthLike", "HttpServer", "InjectServiceLike", "NodeHealth"]
