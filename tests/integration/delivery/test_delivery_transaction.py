"""One transaction against a scripted sink: per-recipient outcomes, failures, wire bytes."""

from __future__ import annotations

from mta.delivery import Job
from tests.integration.delivery.delivery_support import (
    EngineFactory,
    MxLayout,
    SinkFactory,
    job,
    mx1_delivery,
)


async def test_each_recipient_gets_its_own_outcome(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx,
        sink_factory,
        make_engine,
        rcpt_replies={
            "gone@example.com": "550 5.1.1 no such user",
            "full@example.com": "450 4.2.2 mailbox full",
        },
    )

    outcomes = await engine.deliver(
        site, job("ok@example.com", "gone@example.com", "full@example.com")
    )

    assert {rcpt: o.kind for rcpt, o in outcomes.items()} == {
        "ok@example.com": "delivered",
        "gone@example.com": "permanent",
        "full@example.com": "transient",
    }
    assert str(outcomes["gone@example.com"].reply) == "550 5.1.1 no such user"
    assert outcomes["gone@example.com"].command == "RCPT"
    assert outcomes["full@example.com"].reply.enhanced == "4.2.2"
    [message] = sink.messages
    assert message.rcpt_tos == ["ok@example.com"]


async def test_data_451_makes_every_accepted_recipient_transient(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx,
        sink_factory,
        make_engine,
        data_reply="451 4.3.0 try again later",
        rcpt_replies={"gone@example.com": "550 5.1.1 no such user"},
    )

    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com", "gone@example.com"))

    for rcpt in ("a@example.com", "b@example.com"):
        assert outcomes[rcpt].kind == "transient"
        assert str(outcomes[rcpt].reply) == "451 4.3.0 try again later"
        assert outcomes[rcpt].command == "."
    assert outcomes["gone@example.com"].kind == "permanent"
    assert not sink.messages


async def test_mail_rejection_answers_every_recipient(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, mail_reply="550 5.7.1 sender blocked"
    )

    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com"))

    assert {o.kind for o in outcomes.values()} == {"permanent"}
    assert {o.command for o in outcomes.values()} == {"MAIL"}
    assert not any(cmd.startswith("RCPT") for cmd in sink.commands)


async def test_no_data_when_every_recipient_is_refused(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, rcpt_replies={"a@example.com": "550 5.1.1 no"}
    )

    outcomes = await engine.deliver(site, job("a@example.com"))
    assert outcomes["a@example.com"].kind == "permanent"
    assert "DATA" not in sink.commands

    # the open transaction is reset before the pooled session carries the next one
    outcomes = await engine.deliver(site, job("b@example.com", msg_id="m2"))
    assert outcomes["b@example.com"].kind == "delivered"
    size = len(job("b@example.com").data)
    assert sink.commands[-4:] == [
        "RSET",
        f"MAIL FROM:<sender@origin.test> SIZE={size}",
        "RCPT TO:<b@example.com>",
        "DATA",
    ]
    assert sink.connections == 1


async def test_connection_dropped_in_data_is_transient_for_all(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx,
        sink_factory,
        make_engine,
        drop_after="DATA",
        rcpt_replies={"gone@example.com": "550 5.1.1 no such user"},
    )

    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com", "gone@example.com"))

    for rcpt in ("a@example.com", "b@example.com"):
        outcome = outcomes[rcpt]
        assert outcome.kind == "transient"
        assert (outcome.reply.code, outcome.reply.enhanced) == (451, "4.4.2")
        assert outcome.reply.text == f"connection lost with mx1.example.com[{mx.mx1}] in reply to ."
        assert outcome.command == "."
    assert outcomes["gone@example.com"].kind == "permanent"
    assert engine.idle_connections(site.name) == 0  # the broken session is not pooled

    sink.drop_after = None
    outcomes = await engine.deliver(site, job("a@example.com", msg_id="m2"))
    assert outcomes["a@example.com"].kind == "delivered"
    assert sink.connections == 2


async def test_connection_dropped_at_rcpt(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    await sink_factory(host=mx.mx1, port=mx.port, drop_after="RCPT")
    engine = make_engine(mx.port)
    site = await engine.site_for("example.com", None)

    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com"))

    assert {(o.kind, o.command) for o in outcomes.values()} == {("transient", "RCPT")}


async def test_rcpt_timeout_is_transient(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    await sink_factory(host=mx.mx1, port=mx.port, stall="RCPT", stall_seconds=5)
    engine = make_engine(mx.port, rcpt_to_timeout=0.3)
    site = await engine.site_for("example.com", None)

    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert outcome.kind == "transient"
    assert outcome.reply.text.startswith("timed out waiting for mx1.example.com")
    assert outcome.command == "RCPT"


async def test_final_dot_reply_has_its_own_timeout(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink = await sink_factory(host=mx.mx1, port=mx.port, stall="DATA", stall_seconds=0.6)
    slow = make_engine(mx.port, data_timeout=0.2, data_dot_timeout=2.0)
    site = await slow.site_for("example.com", None)

    outcome = (await slow.deliver(site, job("a@example.com")))["a@example.com"]
    assert outcome.kind == "delivered"  # waited 0.6 s after the dot, longer than data_timeout

    impatient = make_engine(mx.port, data_timeout=2.0, data_dot_timeout=0.2)
    site = await impatient.site_for("example.com", None)  # timeouts come with the site's path
    outcome = (await impatient.deliver(site, job("a@example.com", msg_id="m2")))["a@example.com"]
    assert (outcome.kind, outcome.command) == ("transient", ".")
    assert len(sink.messages) == 1


async def test_dot_stuffing_round_trip(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)
    data = b".starts with a dot\r\n\r\nbody\r\n.hidden\r\n.\r\n..two\r\nend.\r\n"

    outcomes = await engine.deliver(site, job("a@example.com", data=data))

    assert outcomes["a@example.com"].kind == "delivered"
    assert [m.data for m in sink.messages] == [data]  # intact, and only once


async def test_mail_parameters_follow_extensions(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)
    data = "Subject: café\r\n\r\nhé\r\n".encode()

    outcomes = await engine.deliver(site, Job("m1", "", ("ü@example.com",), data))

    assert outcomes["ü@example.com"].kind == "delivered"
    assert f"MAIL FROM:<> SIZE={len(data)} BODY=8BITMIME SMTPUTF8" in sink.commands
    [message] = sink.messages
    assert (message.mail_from, message.rcpt_tos, message.data) == ("", ["ü@example.com"], data)


async def test_no_parameters_that_the_server_does_not_advertise(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, ehlo_extensions_hide={"SIZE", "8BITMIME", "SMTPUTF8"}
    )

    outcomes = await engine.deliver(
        site, Job("m1", "s@origin.test", ("a@example.com", "ü@example.com"), "é\r\n".encode())
    )

    assert "MAIL FROM:<s@origin.test>" in sink.commands
    assert outcomes["a@example.com"].kind == "delivered"
    assert (outcomes["ü@example.com"].kind, outcomes["ü@example.com"].reply.enhanced) == (
        "permanent",
        "5.6.7",
    )


async def test_helo_fallback_when_ehlo_is_refused(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, ehlo_reply="502 5.5.1 no EHLO here"
    )

    outcomes = await engine.deliver(site, job("a@example.com"))

    assert outcomes["a@example.com"].kind == "delivered"
    assert "HELO mta.test" in sink.commands
    assert "MAIL FROM:<sender@origin.test>" in sink.commands  # no SIZE without EHLO
