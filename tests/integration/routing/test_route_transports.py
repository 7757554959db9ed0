"""The delivery engine on routed sites: a relay with implicit TLS and a password from the
environment, credentials never sent without TLS, and LMTP over a unix socket."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mta.config import DeliveryConfig, DnsConfig, RouteAuthConfig
from mta.delivery import DeliveryEngine, Job, MxResolver
from mta.routing import Destination
from mta.units import Duration
from tests.support.route_sinks import LmtpSink, SmartHost
from tests.support.smtp_sink import ScriptedSink

T = Duration(3.0)
JOB = Job("m1", "app@example.org", ("bob@example.com",), b"Subject: hi\r\n\r\nHello\r\n")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[DeliveryEngine]:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"")
    config = DeliveryConfig(
        connect_timeout=T, ehlo_timeout=T, mail_from_timeout=T, rcpt_to_timeout=T,
        data_timeout=T, data_dot_timeout=T, tls_ca_file=None,
    )  # fmt: skip
    engine = DeliveryEngine(config, MxResolver(DnsConfig()), ehlo_name="mta.test")
    yield engine
    await engine.close()


def relay(port: int, tls: str, auth: RouteAuthConfig | None) -> Destination:
    return Destination("relay", (f"127.0.0.1:{port}",), tls, False, auth)  # type: ignore[arg-type]


async def test_implicit_tls_and_password_env(
    engine: DeliveryEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PASSWORD", "pw")
    auth = RouteAuthConfig(username="u", password_env="RELAY_PASSWORD")
    async with SmartHost({"u": "pw"}, implicit_tls=True) as host:
        site = await engine.site_for("example.com", relay(host.port, "implicit", auth))
        outcomes = await engine.deliver(site, JOB)
    assert outcomes["bob@example.com"].kind == "delivered", outcomes
    assert outcomes["bob@example.com"].tls_cipher is not None
    assert host.messages[0].tls and host.messages[0].user == "u"


async def test_credentials_never_sent_in_plain_text(engine: DeliveryEngine, sink_factory) -> None:
    sink: ScriptedSink = await sink_factory()  # no STARTTLS offered
    auth = RouteAuthConfig(username="u", password_env="UNUSED")
    outcomes = await engine.deliver(
        await engine.site_for("example.com", relay(sink.port, "starttls", auth)), JOB
    )
    reply = outcomes["bob@example.com"].reply
    assert reply.is_transient and "TLS" in reply.text
    assert not any(command.upper().startswith("AUTH") for command in sink.commands)
    assert not sink.messages


async def test_lmtp_over_unix_socket(engine: DeliveryEngine) -> None:
    with tempfile.TemporaryDirectory() as tmp:  # short: unix socket paths are limited
        path = f"{tmp}/lmtp.sock"
        async with LmtpSink(socket_path=path, replies={"b@l.test": "550 5.1.1 unknown"}) as sink:
            site = await engine.site_for("l.test", Destination("lmtp", (f"unix:{path}",)))
            outcomes = await engine.deliver(site, Job("m2", "", ("a@l.test", "b@l.test"), b"x\r\n"))
    assert outcomes["a@l.test"].kind == "delivered"
    assert outcomes["b@l.test"].kind == "permanent"
    assert sink.messages[0].rcpt_tos == ["a@l.test"]
    assert site.name == f"lmtp:unix:{path}"
