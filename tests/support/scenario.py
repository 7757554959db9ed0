"""Building blocks of end-to-end scenarios: sinks behind MX records or behind a relay route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.dns_server import TestDNSServer
from tests.support.net import free_port, unused_loopback_address
from tests.support.smtp_sink import ScriptedSink


@dataclass
class MxSink:
    """A sink that receives a domain's mail through MX `mx.<domain>` on its own address."""

    sink: ScriptedSink
    host: str
    port: int


async def mx_sink(
    dns_server: TestDNSServer,
    sink_factory: Any,
    domain: str,
    *,
    host: str | None = None,
    port: int | None = None,
    **script: Any,
) -> MxSink:
    """Publish `domain MX 10 mx.<domain>` -> a loopback address with a sink on it.

    Delivery uses one port for every MX, so sinks of one test share `port`.
    """
    host = host or unused_loopback_address()
    port = port or free_port(host)
    sink = await sink_factory(host=host, port=port, **script)
    dns_server.add(domain, "MX", f"10 mx.{domain}.")
    dns_server.add(f"mx.{domain}", "A", host)
    return MxSink(sink, host, port)


@dataclass
class RelayTarget:
    """Where a `[[routes]]` relay sends every domain; the sink may be started later."""

    host: str
    port: int

    @property
    def routes(self) -> list[dict[str, Any]]:
        return [{"domains": ["*"], "relay": f"{self.host}:{self.port}"}]

    async def start_sink(self, sink_factory: Any, **script: Any) -> ScriptedSink:
        sink: ScriptedSink = await sink_factory(host=self.host, port=self.port, **script)
        return sink


def relay_target() -> RelayTarget:
    host = unused_loopback_address()
    return RelayTarget(host, free_port(host))
