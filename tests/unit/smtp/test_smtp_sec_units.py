"""Pure parts of inbound security: relay, AUTH budget, sender policy, PROXY, TLS, config."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import LoginPassword

from mta.config import ConfigError, config_from_mapping
from mta.replies import S550_RELAY_DENIED
from mta.smtp import proxy, validate
from mta.smtp.auth import FailureBudget, RedactAuth, SmtpUsers, check_login
from mta.smtp.limits import DataBudget, MessageRates
from mta.smtp.sender_policy import SenderPolicy, SenderPolicyError, parse_policy
from mta.smtp.tls import TlsError, TlsProvider

LOCAL = frozenset({"ours.test"})
NETWORKS = validate.parse_networks(["127.0.0.1/32"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# Relay control


@pytest.mark.parametrize(
    ("recipient", "raw"),
    [
        ("user%other.example@ours.test", ""),
        ("a!b@ours.test", ""),
        ("user@other.example", "<@ours.test:user@other.example>"),
        ('"user@other.example"@ours.test', ""),
        ("user%x@ours.test", '<"user%x"@ours.test>'),
        ("user@[192.0.2.1]", ""),
    ],
)
def test_tricky_forms_are_relay_even_at_a_local_domain(recipient: str, raw: str) -> None:
    assert validate.is_tricky(recipient, raw)
    problem = validate.relay_problem(
        "192.0.2.9", NETWORKS, recipient=recipient, raw_path=raw, local_domains=LOCAL
    )
    assert problem == S550_RELAY_DENIED


def test_plain_local_recipient_needs_no_relay_permission() -> None:
    assert not validate.is_tricky("user@ours.test", "<user@ours.test>")
    args: dict[str, Any] = {"recipient": "user@Ours.Test", "local_domains": LOCAL}
    assert validate.relay_problem("192.0.2.9", NETWORKS, **args) is None
    args["recipient"] = "user@other.example"
    assert validate.relay_problem("192.0.2.9", NETWORKS, **args) == S550_RELAY_DENIED


def test_without_local_domains_everything_is_relay() -> None:
    assert validate.relay_problem("192.0.2.9", NETWORKS, recipient="u@ours.test")
    assert validate.relay_problem("127.0.0.1", NETWORKS, recipient="u%x@ours.test") is None
    assert validate.relay_problem("192.0.2.9", NETWORKS, authenticated=True) is None
    assert validate.relay_problem("not an ip", NETWORKS) == S550_RELAY_DENIED


# AUTH: failure budget, users, log redaction


def test_failure_budget_grows_the_delay_and_recovers_over_the_window() -> None:
    clock = Clock()
    budget = FailureBudget(3, window=300.0, delay=1.0, clock=clock)
    assert [budget.fail("192.0.2.1") for _ in range(2)] == [1.0, 2.0]
    assert not budget.exhausted("192.0.2.1")
    assert budget.fail("192.0.2.1") == 3.0
    assert budget.exhausted("192.0.2.1")
    assert not budget.exhausted("192.0.2.2")
    clock.now += 100.0  # one failure's worth (300 s / 3) drains away
    assert not budget.exhausted("192.0.2.1")
    clock.now += 300.0
    assert budget.fail("192.0.2.1") == 1.0  # fully recovered


def test_failure_delay_is_capped() -> None:
    budget = FailureBudget(100, window=60.0, delay=5.0, clock=Clock())
    assert max(budget.fail("192.0.2.1") for _ in range(10)) == 10.0


async def test_users_from_a_secret_directory_reload_on_change(tmp_path: Path) -> None:
    users_dir = tmp_path / "secret"
    users_dir.mkdir()
    (users_dir / "carol").write_text("first-password\n")
    (users_dir / "..data").mkdir()  # a mounted Secret's bookkeeping is skipped
    clock = Clock()
    users = SmtpUsers(None, users_dir, clock=clock)
    assert await users.verify("carol", "first-password")
    assert not await users.verify("carol", "wrong")
    assert not await users.verify("nobody", "first-password")
    (users_dir / "carol").write_text("second-password\n")
    clock.now += 10.0
    assert await users.verify("carol", "second-password")


async def test_check_login_counts_only_failures(tmp_path: Path) -> None:
    (tmp_path / "users").write_text("dave:pw\n")
    users = SmtpUsers(tmp_path / "users", None)
    budget = FailureBudget(2, window=60.0, delay=0.0)
    assert await check_login(users, budget, "192.0.2.1", LoginPassword(b"dave", b"pw")) == "dave"
    assert not budget.exhausted("192.0.2.1")
    assert await check_login(users, budget, "192.0.2.1", LoginPassword(b"dave", b"x")) is None
    assert await check_login(users, budget, "192.0.2.1", LoginPassword(b"\xff", b"\xfe")) is None
    assert budget.exhausted("192.0.2.1")


def test_redaction_keeps_the_mechanism_and_drops_the_rest() -> None:
    record = logging.LogRecord(
        "mail.log", 20, "x", 1, "%r >> %r", ("peer", b"AUTH PLAIN AGEAYg=="), None
    )
    assert RedactAuth().filter(record)
    assert record.getMessage() == "'peer' >> b'AUTH PLAIN [redacted]'"
    other = logging.LogRecord(
        "mail.log", 20, "x", 1, "%r >> %r", ("peer", b"MAIL FROM:<a@b>"), None
    )
    RedactAuth().filter(other)
    assert other.getMessage() == "'peer' >> b'MAIL FROM:<a@b>'"
    raw = logging.LogRecord(
        "mail.log", 10, "x", 1, "%r can't decode base64: %s", ("p", b"pw!"), None
    )
    RedactAuth().filter(raw)
    assert "pw!" not in raw.getMessage()


# Rates and DATA memory


def test_message_rates_per_user_and_per_ip() -> None:
    rates = MessageRates("1/h", "2/h")
    assert rates.allow_message(user="alice", ip="192.0.2.1")
    assert not rates.allow_message(user="alice", ip="192.0.2.1")
    assert rates.allow_message(user=None, ip="192.0.2.1")  # the IP budget is separate
    assert rates.allow_message(user=None, ip="192.0.2.1")
    assert not rates.allow_message(user=None, ip="192.0.2.1")
    unlimited = MessageRates(None, None)
    assert all(unlimited.allow_message(user="u", ip="192.0.2.1") for _ in range(100))


def test_data_budget() -> None:
    budget = DataBudget(10)
    budget.take(9)
    assert not budget.exhausted
    budget.take(1)
    assert budget.exhausted
    budget.release(10)
    assert budget.in_flight == 0


# Sender policy


def test_sender_policy_parsing_and_matching() -> None:
    table = parse_policy("a: x@one.test, @Two.test  # c\n\na: y@one.test\nb: @three.test\n", "f")
    assert table["a"].permits("X@ONE.test") and table["a"].permits("y@one.test")
    assert table["a"].permits("anyone@two.test")
    assert not table["a"].permits("z@one.test") and not table["a"].permits("q@sub.two.test")
    assert table["b"].permits("q@three.test")


@pytest.mark.parametrize("line", ["no colon here", ": @x.test", "a:", "a: @", "a: bare"])
def test_sender_policy_errors_name_the_line(line: str) -> None:
    with pytest.raises(SenderPolicyError, match=r"^policy:2: "):
        parse_policy(f"# ok\n{line}\n", "policy")


def test_sender_policy_reload_keeps_the_old_table_on_errors(tmp_path: Path) -> None:
    path = tmp_path / "senders"
    path.write_text("a: @one.test\n")
    clock = Clock()
    policy = SenderPolicy(path, clock=clock)
    assert policy.permits("a", "x@one.test") and policy.permits("a", "")
    path.write_text("a: oops\n")
    clock.now += 10.0
    assert policy.permits("a", "x@one.test")
    path.write_text("a: @two.test\n")
    clock.now += 10.0
    assert not policy.permits("a", "x@one.test") and policy.permits("a", "x@two.test")


# PROXY protocol


async def _parse(header: bytes, eof: bool = True) -> tuple[str, int] | None:
    reader = asyncio.StreamReader(limit=1001)
    reader.feed_data(header)
    if eof:
        reader.feed_eof()
    return await proxy.read_client_address(reader, ("10.0.0.1", 5000))


async def test_proxy_v1_and_v2_headers() -> None:
    assert await _parse(b"PROXY TCP4 198.51.100.9 10.0.0.2 4000 25\r\n") == ("198.51.100.9", 4000)
    assert await _parse(b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 25\r\n") == ("2001:db8::1", 4000)
    assert await _parse(b"PROXY UNKNOWN\r\n") == ("10.0.0.1", 5000)
    v2 = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([198, 51, 100, 9, 10, 0, 0, 2])
    assert await _parse(v2 + b"\x0f\xa0\x00\x19") == ("198.51.100.9", 4000)


@pytest.mark.parametrize(
    "header",
    [
        b"",
        b"PROX",
        b"PROXY TCP4 198.51.100.9 10.0.0.2 4000",
        b"PROXY TCP4 198.51.100.9 10.0.0.2 4000 25\n",
        b"PROXY TCP4 2001:db8::1 10.0.0.2 4000 25\r\n",
        b"PROXY TCP4 198.51.100.9 10.0.0.2 99999 25\r\n",
        b"PROXY UDP4 198.51.100.9 10.0.0.2 4000 25\r\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x01\x02",
        b"\r\n\r\n\x00\r\nQUIT\n\x21\x31\x00\x00",  # AF_UNIX without addresses
        b"GET / HTTP/1.1\r\n",
    ],
)
async def test_truncated_or_garbage_proxy_headers_are_refused(header: bytes) -> None:
    assert await _parse(header) is None


def test_proxy_networks() -> None:
    networks = validate.parse_networks(["10.0.0.0/8"])
    assert proxy.from_proxy_network("10.1.2.3", networks)
    assert not proxy.from_proxy_network("192.0.2.1", networks)
    assert not proxy.from_proxy_network("", networks)


# TLS


def _write_pair(ca: trustme.CA, cert: Path, key: Path) -> None:
    leaf = ca.issue_cert("mx.test")
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())


def test_tls_provider_reloads_in_place_and_survives_bad_pairs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    _write_pair(trustme.CA(), cert, key)
    clock = Clock()
    provider = TlsProvider(cert, key, clock=clock)
    context = provider.context
    assert context.minimum_version.name == "TLSv1_2"
    key.write_text("broken\n")
    clock.now += 2.0
    provider.refresh()
    assert "not reloaded" in caplog.text
    _write_pair(trustme.CA(), cert, key)
    clock.now += 2.0
    provider.refresh()
    assert provider.context is context  # the listeners keep their object
    assert "reloaded from" in caplog.text


def test_tls_provider_startup_error_names_the_files(tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"missing\.crt"):
        TlsProvider(tmp_path / "missing.crt", tmp_path / "missing.key")


# Config


@pytest.mark.parametrize(
    ("smtp", "message"),
    [
        ({"tls_cert_file": "/x"}, "tls_key_file"),
        ({"implicit_tls_listen": ["127.0.0.1:465"]}, "implicit_tls_listen"),
        ({"proxy_protocol_listen": ["127.0.0.1:2526"]}, "proxy_networks"),
        ({"proxy_networks": ["nonsense"]}, "proxy_networks"),
        ({"ip_rate": "lots"}, "smtp.ip_rate"),
        ({"auth_max_failures": 0}, "auth_max_failures"),
        ({"sender_policy_default": "maybe"}, "sender_policy_default"),
        (
            {"proxy_protocol_listen": ["0.0.0.0:2525"], "proxy_networks": ["10.0.0.0/8"]},
            "appears twice",
        ),
    ],
)
def test_config_validation(smtp: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping({"smtp": smtp})


def test_config_accepts_the_security_keys() -> None:
    config = config_from_mapping(
        {
            "smtp": {
                "max_data_in_flight_bytes": "64MiB",
                "auth_failure_window": "15m",
                "proxy_protocol_listen": ["0.0.0.0:2526"],
                "proxy_networks": ["10.0.0.0/8"],
                "ip_rate": "100/m",
            }
        }
    )
    assert config.smtp.max_data_in_flight_bytes == 64 * 2**20
    assert config.smtp.auth_failure_window == 900.0
