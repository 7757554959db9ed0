"""Every signature we make verifies with dkimpy's own verifier, which fetches the key from the
test DNS server over real DNS packets: RSA-2048 and Ed25519, awkward bodies, two keys at once."""

import time

import pytest

from mta.config import DkimDomainConfig, DkimKeyConfig
from mta.dkim.sign import ParsedMessage, SignParams, signature_header
from mta.dkim.signer import INLINE_PREPARE_BYTES, DkimSigner, DomainSigner
from tests.support.dkim import publish, verify_all, write_key

HEADERS = (
    b"Received: from client.test by mta.test; Sun, 1 Jan 2026 00:00:00 +0000\r\n"
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.com\r\n"
    b"Subject: a subject\r\n  folded  with   spaces\r\n"
    b"Date: Sun, 1 Jan 2026 00:00:00 +0000\r\n"
    b"Message-ID: <1@example.org>\r\n"
)
BODIES = {
    "dot-leading": b".\r\n..two dots\r\n.leading dot\r\nplain\r\n",
    "long-lines": b"x" * 998 + b"\r\n" + b"word " * 190 + b"\r\n",
    "8bit": "Grüße, 東京, ça va ?\r\n\tTab  and  spaces   \r\n".encode(),
    "trailing-blank-lines": b"text\r\n\r\n\r\n\r\n",
    "empty": b"",
    "no-final-crlf": b"last line without CRLF",
}
ALGORITHMS = ("rsa-sha256", "ed25519-sha256")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("body", sorted(BODIES))
async def test_signature_verifies(tmp_path, dns_server, algorithm, body) -> None:
    _, key = write_key(tmp_path, "s1", algorithm)
    publish(dns_server, "example.org", "s1", key)
    message = HEADERS + b"\r\n" + BODIES[body]
    params = SignParams("example.org", "s1", ("From", "To", "Subject", "Date", "Message-ID"))
    signed = signature_header(ParsedMessage(message), params, key, int(time.time())) + message

    [result] = await verify_all(signed, dns_server.port)

    assert result.ok, result
    assert (result.domain, result.selector, result.algorithm) == ("example.org", "s1", algorithm)
    assert dns_server.query_count("s1._domainkey.example.org", "TXT") >= 1


@pytest.mark.parametrize("canonicalization", ["simple/simple", "relaxed/simple", "simple/relaxed"])
async def test_other_canonicalizations_verify(tmp_path, dns_server, canonicalization) -> None:
    _, key = write_key(tmp_path, "s1")
    publish(dns_server, "example.org", "s1", key)
    message = HEADERS + b"\r\n" + BODIES["trailing-blank-lines"]
    params = SignParams("example.org", "s1", ("From", "Subject"), True, canonicalization)
    signed = signature_header(ParsedMessage(message), params, key, int(time.time())) + message

    assert [r.ok for r in await verify_all(signed, dns_server.port)] == [True]


async def test_a_changed_message_fails(tmp_path, dns_server) -> None:
    _, key = write_key(tmp_path, "s1")
    publish(dns_server, "example.org", "s1", key)
    message = HEADERS + b"\r\nthe body\r\n"
    params = SignParams("example.org", "s1", ("From", "Subject"), over_sign=True)
    header = signature_header(ParsedMessage(message), params, key, int(time.time()))

    changed_body = header + message.replace(b"the body", b"the bodY")
    added_subject = header + b"Subject: another\r\n" + message

    assert [r.ok for r in await verify_all(changed_body, dns_server.port)] == [False]
    assert [r.ok for r in await verify_all(added_subject, dns_server.port)] == [False]


async def test_rsa_and_ed25519_side_by_side(tmp_path, dns_server) -> None:
    rsa_path, rsa_key = write_key(tmp_path, "rsa1")
    ed_path, ed_key = write_key(tmp_path, "ed1", "ed25519-sha256")
    publish(dns_server, "example.org", "rsa1", rsa_key)
    publish(dns_server, "example.org", "ed1", ed_key)
    table = DkimDomainConfig(
        selector="rsa1",
        key_file=rsa_path,
        keys=(DkimKeyConfig("ed1", ed_path, "ed25519-sha256"),),
    )
    signer = DkimSigner({"example.org": DomainSigner.from_config("example.org", table)})
    try:
        signed = await signer.sign(HEADERS + b"\r\n" + BODIES["8bit"], "alice@example.org")
    finally:
        signer.close()

    results = await verify_all(signed, dns_server.port)

    assert sorted((r.selector, r.algorithm, r.ok) for r in results) == [
        ("ed1", "ed25519-sha256", True),
        ("rsa1", "rsa-sha256", True),
    ]


async def test_small_and_large_messages_through_the_signer(tmp_path, dns_server) -> None:
    """Small messages are hashed on the loop and signed in the pool; large ones (over
    INLINE_PREPARE_BYTES) go to the pool whole: both verify."""
    path, key = write_key(tmp_path, "s1")
    publish(dns_server, "example.org", "s1", key)
    table = DkimDomainConfig(selector="s1", key_file=path)
    signer = DkimSigner({"example.org": DomainSigner.from_config("example.org", table)})
    large = HEADERS + b"\r\n" + (b"z" * 76 + b"\r\n") * (INLINE_PREPARE_BYTES // 78 + 10)
    small = HEADERS + b"\r\n" + BODIES["dot-leading"]
    try:
        signed = [await signer.sign(data, "alice@example.org") for data in (small, large)]
    finally:
        signer.close()

    assert len(large) > INLINE_PREPARE_BYTES
    for message in signed:
        assert [r.ok for r in await verify_all(message, dns_server.port)] == [True]
