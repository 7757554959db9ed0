"""Helpers shared by the delivery tests (fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mta.config import DeliveryConfig
from mta.delivery import DeliveryEngine, Job, Site
from mta.units import Duration
from tests.support.smtp_sink import ScriptedSink

EngineFactory = Callable[..., DeliveryEngine]
SinkFactory = Callable[..., Awaitable[ScriptedSink]]

SHORT = Duration(2.0)


@dataclass(frozen=True)
class MxLayout:
    """example.com: MX 10 mx1.example.com (mx1), MX 20 mx2.example.com (mx2), one port."""

    port: int
    mx1: str
    mx2: str
    domain: str = "example.com"


def delivery_config(port: int, **overrides: Any) -> DeliveryConfig:
    settings: dict[str, Any] = {
        "smtp_port": port,
        "connect_timeout": SHORT,
        "ehlo_timeout": SHORT,
        "mail_from_timeout": SHORT,
        "rcpt_to_timeout": SHORT,
        "data_timeout": SHORT,
        "data_dot_timeout": SHORT,
        "idle_timeout": Duration(10.0),
        "allowed_private_networks": ("127.0.0.0/8",),  # the sinks live on loopback
    }
    settings.update(overrides)
    return DeliveryConfig(**settings)


def job(
    *recipients: str, data: bytes = b"Subject: test\r\n\r\nHello\r\n", msg_id: str = "m1"
) -> Job:
    return Job(msg_id, "sender@origin.test", recipients, data)


async def mx1_delivery(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, **script: Any
) -> tuple[ScriptedSink, DeliveryEngine, Site]:
    """A scripted sink on mx1, an engine delivering to its port, and example.com's site."""
    sink = await sink_factory(host=mx.mx1, port=mx.port, **script)
    engine = make_engine(mx.port)
    site = await engine.site_for(mx.domain, None)
    return sink, engine, site
