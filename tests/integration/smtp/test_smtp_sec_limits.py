"""Per-user and per-IP message rates, the DATA memory bound, the sender policy per user."""

from __future__ import annotations

from pathlib import Path

from tests.integration.smtp.harness import ConnectClient, RawClient, StartServer
from tests.integration.smtp.smtp_sec_helpers import MESSAGE, raw_login, tls_config, wait_for

RATE_LIMITED = "451 4.7.1 Message rate limit exceeded, try again later"
SENDER_REFUSED = "553 5.7.1 Sender address not allowed for this user"


async def _mail(raw: RawClient, sender: bytes = b"<a@example.org>") -> str:
    return await raw.command(b"MAIL FROM:" + sender + b"\r\n")


async def _send(raw: RawClient, sender: bytes = b"<a@example.org>") -> str:
    """One whole transaction; the first reply that is not a success ends it early."""
    reply = await _mail(raw, sender)
    if not reply.startswith("250 "):
        return reply
    assert (await raw.command(b"RCPT TO:<b@example.com>\r\n")).startswith("250 ")
    assert (await raw.command(b"DATA\r\n")).startswith("354 ")
    return await raw.command(MESSAGE + b".\r\n")


async def test_per_user_rate_limit(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    harness = await start_server(auth_rate="2/h", ip_rate="1000/h", **overrides)
    alice = await connect(harness.port, source="127.0.0.2")
    await raw_login(alice, files, "alice")
    assert (await _send(alice)).startswith("250 ")
    assert (await _send(alice)).startswith("250 ")
    assert await _send(alice) == RATE_LIMITED
    assert harness.events.rejections[-1]["reply"].code == 451
    # Another user from the same address has a budget of its own.
    bob = await connect(harness.port, source="127.0.0.2")
    await raw_login(bob, files, "bob")
    assert (await _send(bob)).startswith("250 ")
    assert len(harness.accept.inbounds) == 3


async def test_per_ip_rate_limit_for_unauthenticated_clients(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(ip_rate="1/h", relay_networks=("127.0.0.0/8",))
    first = await connect(harness.port)
    assert (await first.reply()).startswith("220 ")
    assert (await first.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await _send(first)).startswith("250 ")
    assert await _mail(first) == RATE_LIMITED
    other = await connect(harness.port, source="127.0.0.2")
    assert (await other.reply()).startswith("220 ")
    assert (await other.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await _mail(other)).startswith("250 ")


async def test_new_data_is_refused_while_the_memory_bound_is_reached(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server(max_data_in_flight_bytes=4000)
    big = await connect(harness.port)
    await big.start_mail()
    await big.send(b"Subject: big\r\n\r\n" + (b"x" * 98 + b"\r\n") * 50)  # 5 KB, no end yet
    await wait_for(lambda: harness.server.data_in_flight >= 4000, "the DATA to be counted")
    second = await connect(harness.port)
    assert (await second.reply()).startswith("220 ")
    assert (await second.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await _mail(second)).startswith("250 ")
    assert (await second.command(b"RCPT TO:<b@example.com>\r\n")).startswith("250 ")
    refused = await second.command(b"DATA\r\n")
    assert refused == "452 4.3.1 Insufficient system resources, try again later"
    assert (await big.command(b".\r\n")).startswith("250 ")  # the one in flight completes
    assert harness.server.data_in_flight == 0
    assert (await second.command(b"DATA\r\n")).startswith("354 ")  # the transaction remained
    assert (await second.command(MESSAGE + b".\r\n")).startswith("250 ")
    assert harness.server.data_in_flight == 0


async def test_data_budget_is_released_when_the_client_vanishes(
    start_server: StartServer, connect: ConnectClient
) -> None:
    harness = await start_server()
    raw = await connect(harness.port)
    await raw.start_mail()
    await raw.send(b"Subject: gone\r\n\r\n" + b"y" * 900 + b"\r\n")
    await wait_for(lambda: harness.server.data_in_flight > 0, "the DATA to be counted")
    await raw.close()
    await wait_for(lambda: harness.server.data_in_flight == 0, "the budget to be released")


async def test_sender_policy_per_user(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    policy = tmp_path / "senders"
    policy.write_text("# who may send as whom\nalice: alice@example.org, @billing.example.org\n")
    harness = await start_server(sender_policy_file=policy, **overrides)
    alice = await connect(harness.port, source="127.0.0.2")
    await raw_login(alice, files, "alice")
    assert await _mail(alice, b"<mallory@example.org>") == SENDER_REFUSED
    assert await _mail(alice, b"<alice@billing.example.org.evil>") == SENDER_REFUSED
    assert (await _send(alice, b"<Alice@Example.org>")).startswith("250 ")
    assert (await _send(alice, b"<invoices@billing.example.org>")).startswith("250 ")
    assert (await _send(alice, b"<>")).startswith("250 ")  # bounces stay possible
    bob = await connect(harness.port, source="127.0.0.2")
    await raw_login(bob, files, "bob")  # no entry: unrestricted by default
    assert (await _mail(bob, b"<anyone@example.net>")).startswith("250 ")
    assert [e["reply"].code for e in harness.events.rejections] == [553, 553]


async def test_sender_policy_default_deny(
    start_server: StartServer, connect: ConnectClient, tmp_path: Path
) -> None:
    files, overrides = tls_config(tmp_path)
    policy = tmp_path / "senders"
    policy.write_text("alice: @example.org\n")
    harness = await start_server(
        sender_policy_file=policy, sender_policy_default="deny", **overrides
    )
    bob = await connect(harness.port, source="127.0.0.2")
    await raw_login(bob, files, "bob")
    assert await _mail(bob, b"<bob@example.org>") == SENDER_REFUSED
    trusted = await connect(harness.port)  # unauthenticated relay clients are not users
    assert (await trusted.reply()).startswith("220 ")
    assert (await trusted.command(b"EHLO client.test\r\n")).startswith("250-")
    assert (await _mail(trusted, b"<anyone@example.net>")).startswith("250 ")
