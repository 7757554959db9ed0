"""Credential file parsing and the bcrypt verdict cache (no sockets needed here)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from mta.http.auth import CACHE_MAX_ENTRIES, CACHE_TTL_SECONDS, VerifiedCache, client_ip
from mta.http.credentials import (
    CredentialsError,
    SecretKind,
    load_tokens_file,
    load_users_dir,
    load_users_file,
    sha256,
)
from tests.integration.http.test_http_support import bcrypt_hash, write_lines, write_users_dir


def test_users_file_formats(tmp_path) -> None:
    digest = base64.b64encode(hashlib.sha256(b"pw3").digest()).decode()
    hashed = bcrypt_hash("pw2")
    users = load_users_file(
        write_lines(tmp_path / "u", ["# c", "", "a:pw1", f"b:{hashed}", "c:{SHA256}" + digest])
    )

    assert users["a"].kind is SecretKind.SHA256 and users["a"].matches_digest("pw1")
    assert not users["a"].matches_digest("pw2")
    assert users["b"].kind is SecretKind.BCRYPT and users["b"].value == hashed.encode()
    assert users["c"].matches_digest("pw3")
    assert b"pw1" not in users["a"].value  # only the digest is kept


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("no-colon-secret-here", "u:2: expected user:password"),
        (":secret-without-user", "u:2: expected user:password"),
        ("a:", "u:2: empty password"),
        ("a:{SHA256}not-a-digest-secret", "u:2: {SHA256} value is not a base64 SHA-256"),
    ],
)
def test_users_file_errors_name_the_line_not_the_secret(tmp_path, line, problem) -> None:
    with pytest.raises(CredentialsError) as info:
        load_users_file(write_lines(tmp_path / "u", ["ok:fine", line]))
    assert str(info.value).endswith(problem)
    assert "secret" not in str(info.value).replace(problem, "")


def test_users_dir_reads_a_mounted_secret(tmp_path) -> None:
    users = load_users_dir(write_users_dir(tmp_path / "s", {"user1": "PASSWORD\n", "u2": "x"}))
    assert sorted(users) == ["u2", "user1"]  # ..data and the timestamped dir are skipped
    assert users["user1"].matches_digest("PASSWORD")


def test_tokens_file_names_tokens(tmp_path) -> None:
    tokens = load_tokens_file(write_lines(tmp_path / "t", ["plain-token", "ci:named-token"]))
    assert tokens == [("bearer", sha256("plain-token")), ("ci", sha256("named-token"))]


def test_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(CredentialsError, match=r"/nope: cannot read: FileNotFoundError"):
        load_users_file(tmp_path / "nope")


def test_verdict_cache_expires_and_holds_no_password() -> None:
    now = [1000.0]
    cache = VerifiedCache(clock=lambda: now[0])
    key = cache.key("alice", "hunter2", b"$2b$04$stored")
    cache.put(key, True)

    assert b"hunter2" not in key and b"alice" not in key
    assert key != VerifiedCache(clock=lambda: now[0]).key("alice", "hunter2", b"$2b$04$stored")
    assert cache.get(key) is True
    assert cache.get(cache.key("alice", "hunter3", b"$2b$04$stored")) is None
    now[0] += CACHE_TTL_SECONDS + 1
    assert cache.get(key) is None


def test_verdict_cache_is_bounded() -> None:
    cache = VerifiedCache()
    keys = [cache.key("u", str(i), b"h") for i in range(CACHE_MAX_ENTRIES + 1)]
    for key in keys:
        cache.put(key, False)
    assert cache.get(keys[0]) is None  # the oldest went first
    assert cache.get(keys[-1]) is False


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("fe80::1%eth0", "fe80::1"),
        ("not-an-ip", None),
        (None, None),
    ],
)
def test_client_ip(remote, expected) -> None:
    address = client_ip(remote)
    assert (None if address is None else str(address)) == expected
