"""PIPELINING (RFC 2920): the envelope and DATA go out as one write when the server
offers it, the replies are read in order, and the outcomes match the lock-step ones."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from aiosmtplib.protocol import SMTPProtocol

from mta.config import DnsConfig, RouteConfig
from mta.delivery import DeliveryEngine, MxResolver
from tests.integration.delivery.delivery_support import (
    EngineFactory,
    MxLayout,
    SinkFactory,
    delivery_config,
    job,
    mx1_delivery,
)
from tests.support.smtp_sink import ScriptedSink

BODY = b"Subject: pipelined\r\n\r\nbody-marker\r\n"


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every write the SMTP client puts on the wire, in order (EHLO included)."""
    seen: list[bytes] = []
    original = SMTPProtocol.write

    def write(self: SMTPProtocol, data: bytes) -> None:
        seen.append(data)
        original(self, data)

    monkeypatch.setattr(SMTPProtocol, "write", write)
    yield seen


def transaction_writes(writes: list[bytes]) -> list[bytes]:
    """The writes from the first RSET or MAIL on (EHLO and STARTTLS left out)."""
    start = next(i for i, w in enumerate(writes) if w.startswith((b"MAIL", b"RSET")))
    return [w for w in writes[start:] if w != b"QUIT\r\n"]


async def test_envelope_and_data_go_in_one_write(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, writes: list[bytes]
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)

    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com", data=BODY))

    assert {(o.kind, o.command) for o in outcomes.values()} == {("delivered", ".")}
    size = len(BODY)
    assert transaction_writes(writes) == [
        f"MAIL FROM:<sender@origin.test> SIZE={size}\r\n"
        "RCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n".encode(),
        BODY + b".\r\n",
    ]
    assert sink.commands[-4:] == [
        f"MAIL FROM:<sender@origin.test> SIZE={size}",
        "RCPT TO:<a@example.com>",
        "RCPT TO:<b@example.com>",
        "DATA",
    ]
    [message] = sink.messages
    assert message.rcpt_tos == ["a@example.com", "b@example.com"]


async def test_reused_session_pipelines_every_transaction(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, writes: list[bytes]
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine)

    for n in range(3):
        outcomes = await engine.deliver(site, job("a@example.com", msg_id=f"m{n}"))
        assert outcomes["a@example.com"].kind == "delivered"

    assert len(transaction_writes(writes)) == 6  # two per transaction
    assert sink.connections == 1
    assert len(sink.messages) == 3
    assert "RSET" not in sink.commands


async def test_refused_recipient_among_accepted_ones(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, writes: list[bytes]
) -> None:
    sink, engine, site = await mx1_delivery(
        mx,
        sink_factory,
        make_engine,
        rcpt_replies={
            "gone@example.com": "550 5.1.1 no such user",
            "full@example.com": "452 4.2.2 mailbox full",
        },
    )

    outcomes = await engine.deliver(
        site, job("a@example.com", "gone@example.com", "full@example.com", "b@example.com")
    )

    assert {rcpt: (o.kind, o.command) for rcpt, o in outcomes.items()} == {
        "a@example.com": ("delivered", "."),
        "gone@example.com": ("permanent", "RCPT"),
        "full@example.com": ("transient", "RCPT"),
        "b@example.com": ("delivered", "."),
    }
    assert str(outcomes["gone@example.com"].reply) == "550 5.1.1 no such user"
    assert str(outcomes["full@example.com"].reply) == "452 4.2.2 mailbox full"
    assert len(transaction_writes(writes)) == 2
    [message] = sink.messages
    assert message.rcpt_tos == ["a@example.com", "b@example.com"]


async def test_every_recipient_refused_sends_no_message(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, writes: list[bytes]
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

    outcomes = await engine.deliver(site, job("gone@example.com", "full@example.com", data=BODY))

    assert {rcpt: (o.kind, o.command) for rcpt, o in outcomes.items()} == {
        "gone@example.com": ("permanent", "RCPT"),
        "full@example.com": ("transient", "RCPT"),
    }
    [group] = transaction_writes(writes)  # DATA was refused (503): no message follows
    assert group.endswith(b"DATA\r\n")
    assert not any(b"body-marker" in w for w in writes)
    assert not sink.messages
    assert engine.idle_connections(site.name) == 1

    # MAIL was accepted, so the transaction is open: RSET leads the next group.
    writes.clear()
    outcomes = await engine.deliver(site, job("a@example.com", msg_id="m2"))
    assert outcomes["a@example.com"].kind == "delivered"
    group, _message = writes
    assert group.startswith(b"RSET\r\nMAIL FROM:")
    assert sink.connections == 1


async def test_mail_refused_answers_everyone_and_keeps_the_session(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, writes: list[bytes]
) -> None:
    sink, engine, site = await mx1_delivery(
        mx, sink_factory, make_engine, mail_replies=["550 5.7.1 sender blocked"]
    )

    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com", data=BODY))

    assert {(o.kind, o.command, str(o.reply)) for o in outcomes.values()} == {
        ("permanent", "MAIL", "550 5.7.1 sender blocked")
    }
    assert not any(b"body-marker" in w for w in writes)

    # The 503s to RCPT and DATA were all read: the next transaction pairs replies right.
    writes.clear()
    outcomes = await engine.deliver(site, job("a@example.com", msg_id="m2"))
    assert outcomes["a@example.com"].kind == "delivered"
    assert not writes[0].startswith(b"RSET")  # a refused MAIL opened no transaction
    assert sink.connections == 1
    assert len(sink.messages) == 1


async def test_421_in_the_middle_answers_everyone_waiting(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(
        mx,
        sink_factory,
        make_engine,
        rcpt_replies={
            "gone@example.com": "550 5.1.1 no such user",
            "b@example.com": "421 4.3.2 shutting down",
        },
    )

    outcomes = await engine.deliver(
        site, job("gone@example.com", "a@example.com", "b@example.com", "c@example.com")
    )

    assert outcomes["gone@example.com"].kind == "permanent"
    for rcpt in ("a@example.com", "b@example.com", "c@example.com"):
        outcome = outcomes[rcpt]
        assert (outcome.kind, outcome.command) == ("transient", "RCPT")
        assert str(outcome.reply) == "421 4.3.2 shutting down"
    assert engine.idle_connections(site.name) == 0
    assert not sink.messages

    sink.rcpt_replies = {}
    outcomes = await engine.deliver(site, job("a@example.com", msg_id="m2"))
    assert outcomes["a@example.com"].kind == "delivered"
    assert sink.connections == 2


async def test_connection_dropped_after_rcpt(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    sink, engine, site = await mx1_delivery(mx, sink_factory, make_engine, drop_after="RCPT")

    outcomes = await engine.deliver(site, job("a@example.com", "b@example.com"))

    for outcome in outcomes.values():
        assert (outcome.kind, outcome.command) == ("transient", "RCPT")
        assert (
            outcome.reply.text == f"connection lost with mx1.example.com[{mx.mx1}] in reply to RCPT"
        )
    assert engine.idle_connections(site.name) == 0
    assert not sink.messages


async def test_stalled_group_times_out_per_reply(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory
) -> None:
    await sink_factory(host=mx.mx1, port=mx.port, stall="RCPT", stall_seconds=5)
    engine = make_engine(mx.port, rcpt_to_timeout=0.3)
    site = await engine.site_for("example.com", None)

    started = asyncio.get_running_loop().time()
    outcome = (await engine.deliver(site, job("a@example.com")))["a@example.com"]

    assert (outcome.kind, outcome.command) == ("transient", "RCPT")
    assert outcome.reply.text.startswith("timed out waiting for mx1.example.com")
    assert asyncio.get_running_loop().time() - started < 2  # the RCPT timeout, not the sum


async def test_lock_step_when_pipelining_is_not_offered(
    mx: MxLayout, sink_factory: SinkFactory, make_engine: EngineFactory, writes: list[bytes]
) -> None:
    sink, engine, site = await mx1_delivery(
        mx,
        sink_factory,
        make_engine,
        ehlo_extensions_hide={"PIPELINING"},
        rcpt_replies={"gone@example.com": "550 5.1.1 no such user"},
    )

    outcomes = await engine.deliver(
        site, job("a@example.com", "gone@example.com", "b@example.com", data=BODY)
    )

    assert {rcpt: (o.kind, o.command) for rcpt, o in outcomes.items()} == {
        "a@example.com": ("delivered", "."),
        "gone@example.com": ("permanent", "RCPT"),
        "b@example.com": ("delivered", "."),
    }
    assert transaction_writes(writes) == [
        f"MAIL FROM:<sender@origin.test> SIZE={len(BODY)}\r\n".encode(),
        b"RCPT TO:<a@example.com>\r\n",
        b"RCPT TO:<gone@example.com>\r\n",
        b"RCPT TO:<b@example.com>\r\n",
        b"DATA\r\n",
        BODY + b".\r\n",
    ]
    [message] = sink.messages
    assert message.rcpt_tos == ["a@example.com", "b@example.com"]


class _LenientServer(asyncio.Protocol):
    """Answers DATA with 354 even when no RCPT was accepted, as RFC 2920 3.1 allows;
    the ScriptedSink (aiosmtpd) answers 503 there. Records every byte received."""

    def __init__(self, received: bytearray) -> None:
        self.received = received
        self.transport: asyncio.Transport | None = None
        self.in_data = False
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 lenient ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.received.extend(data)
        self.pending += data
        while b"\r\n" in self.pending:
            line, self.pending = self.pending.split(b"\r\n", 1)
            self.transport.write(self.answer(line))

    def answer(self, line: bytes) -> bytes:
        if self.in_data:
            if line != b".":
                return b""
            self.in_data = False
            return b"554 5.5.1 no valid recipients\r\n"
        verb = line[:4].upper()
        if verb == b"EHLO":
            return b"250-lenient\r\n250 PIPELINING\r\n"
        if verb == b"RCPT":
            return b"550 5.1.1 no such user\r\n"
        if verb == b"DATA":
            self.in_data = True
            return b"354 go ahead\r\n"
        if verb == b"QUIT":
            return b"221 bye\r\n"
        return b"250 OK\r\n"


@pytest.fixture
async def lenient() -> AsyncIterator[tuple[int, bytearray]]:
    received = bytearray()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _LenientServer(received), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()
    await server.wait_closed()


async def test_data_accepted_without_recipients_gets_a_lone_dot(
    lenient: tuple[int, bytearray], make_engine: EngineFactory, writes: list[bytes]
) -> None:
    port, received = lenient
    engine = make_engine(port)
    site = await engine.site_for("x.test", RouteConfig(relay=f"127.0.0.1:{port}"))

    outcomes = await engine.deliver(site, job("a@x.test", data=BODY))

    assert (outcomes["a@x.test"].kind, outcomes["a@x.test"].command) == ("permanent", "RCPT")
    assert transaction_writes(writes)[1] == b".\r\n"  # RFC 2920 3.1: never the content
    assert b"body-marker" not in received
    assert engine.idle_connections(site.name) == 1

    # The lone dot's reply ended the transaction: no RSET before the next one.
    writes.clear()
    await engine.deliver(site, job("b@x.test", msg_id="m2"))
    assert writes[0].startswith(b"MAIL FROM:")


def test_pipelining_under_uvloop() -> None:
    """The node runs on uvloop, whose transports cache the protocol's methods: the reply
    reader must be installed with set_protocol, and hand QUIT's reply back."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        async with ScriptedSink(rcpt_replies={"gone@x.test": "550 5.1.1 no"}) as sink:
            engine = DeliveryEngine(
                delivery_config(sink.port), MxResolver(DnsConfig(("127.0.0.1:9",))), ehlo_name="t"
            )
            site = await engine.site_for("x.test", RouteConfig(relay=f"127.0.0.1:{sink.port}"))
            for n in range(3):
                outcomes = await engine.deliver(site, job("a@x.test", "gone@x.test", msg_id=f"{n}"))
                assert {r: o.kind for r, o in outcomes.items()} == {
                    "a@x.test": "delivered",
                    "gone@x.test": "permanent",
                }
            await engine.close()
            assert sink.connections == 1
            assert len(sink.messages) == 3
            assert sink.commands[-1] == "QUIT"

    uvloop.run(scenario())
