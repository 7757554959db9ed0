"""Each `enable_tls` mode against sinks whose certificates come from a test CA (trustme),
trusted through `[delivery] tls_ca_file`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.delivery.delivery_support import EngineFactory, MxLayout, SinkFactory, job
from tests.integration.delivery.sts_support import TestPki
from tests.support.tls import make_self_signed_context

RECONNECT = '["default"]\nopportunistic_tls_reconnect_on_failed_handshake = true\n'


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return TestPki(tmp_path)


async def test_opportunistic_verifies_a_trusted_certificate_and_records_tls(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    sink = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=pki.server_context("mx1.example.com")
    )
    engine = make_engine(mx.port, tls_ca_file=pki.ca_file)  # Opportunistic: the default
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert outcome.tls_protocol_version in {"TLSv1.2", "TLSv1.3"}
    assert outcome.tls_cipher
    assert sink.messages[0].tls


async def test_opportunistic_does_not_fall_back_to_plain_text_on_a_bad_certificate(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    mx1 = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=make_self_signed_context("mx1.example.com")
    )
    mx2 = await sink_factory(
        host=mx.mx2, port=mx.port, starttls=pki.server_context("other.example.org")
    )
    engine = make_engine(mx.port, tls_ca_file=pki.ca_file)
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert (outcome.kind, outcome.reply.enhanced, outcome.command) == (
        "transient",
        "4.7.5",
        "STARTTLS",
    )
    assert (mx1.connections, mx2.connections) == (1, 1)
    for sink in (mx1, mx2):  # neither host was reconnected to for plain text
        assert sink.commands == ["EHLO mta.test"]


async def test_opportunistic_reconnects_in_plain_text_when_the_path_allows_it(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    mx1 = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=make_self_signed_context("mx1.example.com")
    )
    engine = make_engine(mx.port, tls_ca_file=pki.ca_file, shaping=RECONNECT)
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert outcome.peer is not None and outcome.peer.name == "mx1.example.com"
    assert (outcome.tls_cipher, outcome.tls_protocol_version) == (None, None)
    assert mx1.connections == 2  # the failed handshake, then the plain-text connection
    assert not mx1.messages[0].tls
    assert mx1.commands.count("EHLO mta.test") == 2


async def test_the_reconnect_option_never_weakens_required(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    sinks = [
        await sink_factory(host=addr, port=mx.port, starttls=make_self_signed_context(name))
        for addr, name in ((mx.mx1, "mx1.example.com"), (mx.mx2, "mx2.example.com"))
    ]
    engine = make_engine(mx.port, tls_ca_file=pki.ca_file, enable_tls="Required", shaping=RECONNECT)
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert (outcome.kind, outcome.reply.enhanced) == ("transient", "4.7.5")
    assert [(sink.connections, sink.messages) for sink in sinks] == [(1, []), (1, [])]


async def test_opportunistic_stays_plain_when_starttls_is_not_offered(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    sink = await sink_factory(
        host=mx.mx1,
        port=mx.port,
        starttls=pki.server_context("mx1.example.com"),
        ehlo_extensions_hide={"STARTTLS"},
    )
    engine = make_engine(mx.port, tls_ca_file=pki.ca_file)
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert "STARTTLS" not in sink.commands and not sink.messages[0].tls


async def test_required_verifies_chain_and_host_name_against_tls_ca_file(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    mx1 = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=pki.server_context("mx1.example.com")
    )
    mx2 = await sink_factory(
        host=mx.mx2, port=mx.port, starttls=pki.server_context("other.example.org")
    )
    engine = make_engine(mx.port, tls_ca_file=pki.ca_file, enable_tls="Required")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]
    assert outcome.kind == "delivered" and mx1.messages[0].tls

    await mx1.stop()  # only mx2 is left: a trusted certificate, for another name
    outcome = (await engine.deliver(site, job("b@example.com", msg_id="m2")))["b@example.com"]
    assert (outcome.kind, outcome.reply.enhanced) == ("transient", "4.7.5")
    assert "Hostname mismatch" in outcome.reply.text
    assert not mx2.messages


async def test_required_without_the_test_ca_refuses_the_certificate(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    sinks = [
        await sink_factory(host=addr, port=mx.port, starttls=pki.server_context(name))
        for addr, name in ((mx.mx1, "mx1.example.com"), (mx.mx2, "mx2.example.com"))
    ]
    engine = make_engine(mx.port, enable_tls="Required")  # system store only
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "transient"
    assert "certificate verify failed" in outcome.reply.text
    assert not sinks[0].messages and not sinks[1].messages


async def test_required_insecure_encrypts_without_verifying_and_needs_starttls(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    mx1 = await sink_factory(host=mx.mx1, port=mx.port)  # no STARTTLS
    mx2 = await sink_factory(
        host=mx.mx2, port=mx.port, starttls=make_self_signed_context("mx2.example.com")
    )
    engine = make_engine(mx.port, enable_tls="RequiredInsecure")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered" and outcome.tls_protocol_version
    assert outcome.peer is not None and outcome.peer.name == "mx2.example.com"
    assert not mx1.messages and mx2.messages[0].tls


async def test_disabled_ignores_starttls(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, pki: TestPki
) -> None:
    sink = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=pki.server_context("mx1.example.com")
    )
    engine = make_engine(mx.port, tls_ca_file=pki.ca_file, enable_tls="Disabled")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered" and outcome.tls_cipher is None
    assert "STARTTLS" not in sink.commands
