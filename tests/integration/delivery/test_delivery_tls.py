"""STARTTLS policy against sinks with self-signed certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.delivery.delivery_support import (
    EngineFactory,
    MxLayout,
    SinkFactory,
    job,
)
from tests.support.tls import make_self_signed_cert, make_self_signed_context


async def test_opportunistic_insecure_uses_starttls_when_offered(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=make_self_signed_context("mx1.example.com")
    )
    engine = make_engine(mx.port, enable_tls="OpportunisticInsecure")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert outcome.tls_protocol_version in {"TLSv1.2", "TLSv1.3"}
    assert outcome.tls_cipher
    [message] = sink.messages
    assert message.tls
    assert sink.commands.count("EHLO mta.test") == 2  # EHLO again after STARTTLS


async def test_opportunistic_without_starttls_stays_plain(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port)
    engine = make_engine(mx.port, enable_tls="OpportunisticInsecure")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert (outcome.tls_cipher, outcome.tls_protocol_version) == (None, None)
    assert not sink.messages[0].tls


async def test_required_rejects_a_self_signed_certificate(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    context = make_self_signed_context("mx1.example.com")
    mx1 = await sink_factory(host=mx.mx1, port=mx.port, starttls=context)
    mx2 = await sink_factory(host=mx.mx2, port=mx.port, starttls=context)
    engine = make_engine(mx.port, enable_tls="Required")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "transient"
    assert (outcome.reply.code, outcome.reply.enhanced) == (451, "4.7.5")
    assert "certificate verify failed" in outcome.reply.text
    assert outcome.command == "STARTTLS"
    assert (mx1.connections, mx2.connections) == (1, 1)  # tried both hosts
    assert not mx1.messages and not mx2.messages


async def test_required_insecure_accepts_a_self_signed_certificate(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=make_self_signed_context("mx1.example.com")
    )
    engine = make_engine(mx.port, enable_tls="RequiredInsecure")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert outcome.tls_protocol_version
    assert sink.messages[0].tls


async def test_required_fails_over_when_starttls_is_not_offered(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    mx1 = await sink_factory(host=mx.mx1, port=mx.port)  # no STARTTLS
    mx2 = await sink_factory(
        host=mx.mx2, port=mx.port, starttls=make_self_signed_context("mx2.example.com")
    )
    engine = make_engine(mx.port, enable_tls="RequiredInsecure")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert outcome.peer is not None and outcome.peer.name == "mx2.example.com"
    assert not mx1.messages and mx2.messages[0].tls


async def test_required_without_starttls_anywhere_is_transient(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    await sink_factory(host=mx.mx1, port=mx.port)
    await sink_factory(host=mx.mx2, port=mx.port)
    engine = make_engine(mx.port, enable_tls="Required")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert (outcome.kind, outcome.reply.enhanced) == ("transient", "4.7.4")
    assert "not offered by mx" in outcome.reply.text


async def test_disabled_never_sends_starttls(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(
        host=mx.mx1, port=mx.port, starttls=make_self_signed_context("mx1.example.com")
    )
    engine = make_engine(mx.port, enable_tls="Disabled")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "delivered"
    assert "STARTTLS" not in sink.commands
    assert not sink.messages[0].tls


async def test_required_verifies_the_mx_host_name(
    mx: MxLayout,
    sink_factory: SinkFactory,
    make_engine: EngineFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Trust both test certificates through OpenSSL's standard variable; the engine builds
    # its verifying context from the default trust store on first use.
    good = make_self_signed_cert("mx1.example.com")
    wrong_name = make_self_signed_cert("other.example.org")
    bundle = tmp_path / "trusted.pem"
    bundle.write_text(good.cert_pem + wrong_name.cert_pem)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    mx1 = await sink_factory(host=mx.mx1, port=mx.port, starttls=good.server_context())
    mx2 = await sink_factory(host=mx.mx2, port=mx.port, starttls=wrong_name.server_context())
    engine = make_engine(mx.port, enable_tls="Required")
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]
    assert outcome.kind == "delivered"
    assert mx1.messages[0].tls

    await mx1.stop()  # now only mx2 is left, with a trusted certificate for another name
    outcome = (await engine.deliver(site, job("b@example.com", msg_id="m2")))["b@example.com"]
    assert outcome.kind == "transient"
    assert "mx2.example.com" in outcome.reply.text
    assert "Hostname mismatch" in outcome.reply.text
    assert not mx2.messages
