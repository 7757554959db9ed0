"""The signer's choices: which domain signs, which headers go in h=, what a failure does."""

import logging
import re

import pytest

from mta.config import DkimDomainConfig, DkimKeyConfig
from mta.dkim.sign import ParsedMessage, signed_header_names
from mta.dkim.signer import S451_DKIM_FAILED, DkimSigner, DomainSigner, build_signer
from mta.replies import TransientError
from tests.support.dkim import signature_count, write_key

BODY = b"\r\nHello.\r\n"


def message(from_header: str = "Alice <alice@example.org>", extra: bytes = b"") -> bytes:
    return f"From: {from_header}\r\nTo: bob@example.com\r\nSubject: hi\r\n".encode() + extra + BODY


def tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"\r\n\r\n")[0].decode()
    field = re.search(r"DKIM-Signature:(.*?)(?=\r\n\S|\Z)", header, re.S)
    assert field is not None
    value = re.sub(r"\s+", "", field[1])
    return dict(part.split("=", 1) for part in value.split(";") if part)


@pytest.fixture
def signer_for(tmp_path):
    made = []

    def make(domains: dict[str, dict]) -> DkimSigner:
        tables = {}
        for domain, values in domains.items():
            path, _ = write_key(tmp_path / domain, "s1", "ed25519-sha256")
            options = {"selector": "s1", "key_file": path, "algorithm": "ed25519-sha256"}
            tables[domain] = DkimDomainConfig(**{**options, **values})
        signer = build_signer(tables)
        assert signer is not None
        made.append(signer)
        return signer

    yield make
    for signer in made:
        signer.close()


async def test_from_domain_signs(signer_for) -> None:
    signer = signer_for({"example.org": {}, "sender.test": {}})

    signed = await signer.sign(message(), "bounces@sender.test")

    assert tags(signed)["d"] == "example.org"
    assert signed.endswith(message())


async def test_sender_domain_when_from_is_not_ours(signer_for) -> None:
    signer = signer_for({"Sender.Test": {}})

    signed = await signer.sign(message("someone@elsewhere.test"), "bounces@sender.test")

    assert tags(signed)["d"] == "sender.test"


async def test_international_domain_signs_as_a_label(signer_for) -> None:
    signer = signer_for({"bücher.example": {}})

    signed = await signer.sign(message("Ana <ana@BÜCHER.example>"), "")

    assert tags(signed)["d"] == "xn--bcher-kva.example"


async def test_no_domain_of_ours_leaves_the_message_alone(signer_for) -> None:
    signer = signer_for({"example.org": {}})
    data = message("x@elsewhere.test")

    assert await signer.sign(data, "") is data


def test_no_dkim_tables_no_signer() -> None:
    assert build_signer({}) is None


async def test_every_key_signs_once(tmp_path) -> None:
    rsa_path, _ = write_key(tmp_path, "r1")
    ed_path, _ = write_key(tmp_path, "e1", "ed25519-sha256")
    table = DkimDomainConfig(
        keys=(DkimKeyConfig("r1", rsa_path), DkimKeyConfig("e1", ed_path, "ed25519-sha256"))
    )
    signer = DkimSigner({"example.org": DomainSigner.from_config("example.org", table)})
    try:
        signed = await signer.sign(message(), "alice@example.org")
    finally:
        signer.close()

    assert signature_count(signed) == 2
    assert signed.count(b"s=r1;") == 1 and signed.count(b"s=e1;") == 1


def test_h_lists_present_headers_and_over_signs() -> None:
    present = [b"Received", b"From", b"To", b"To", b"Subject"]
    wanted = ("From", "To", "Cc", "Subject", "from")

    assert signed_header_names(present, wanted, over_sign=False) == [
        b"from",
        b"to",
        b"to",
        b"subject",
    ]
    assert signed_header_names(present, wanted, over_sign=True) == [
        b"from",
        b"from",
        b"to",
        b"to",
        b"to",
        b"cc",
        b"subject",
        b"subject",
    ]


async def test_configured_headers_and_canonicalization(signer_for) -> None:
    signer = signer_for(
        {
            "example.org": {
                "headers": ("From", "Subject"),
                "over_sign": True,
                "canonicalization": "simple/simple",
            }
        }
    )

    found = tags(await signer.sign(message(), ""))

    assert found["h"] == "from:from:subject:subject"
    assert found["c"] == "simple/simple"
    assert found["a"] == "ed25519-sha256"


UNPARSABLE = b"not a header line\r\n"


async def test_required_failure_refuses_with_451(signer_for, caplog) -> None:
    signer = signer_for({"example.org": {"required": True}})

    with caplog.at_level(logging.ERROR), pytest.raises(TransientError) as caught:
        await signer.sign(message(extra=UNPARSABLE), "alice@example.org")

    assert caught.value.reply == S451_DKIM_FAILED
    assert caught.value.reply.code == 451
    assert "example.org" in caplog.text


async def test_optional_failure_sends_unsigned_and_warns(signer_for, caplog) -> None:
    signer = signer_for({"example.org": {"required": False}})
    data = message(extra=UNPARSABLE)

    with caplog.at_level(logging.WARNING):
        signed = await signer.sign(data, "alice@example.org")

    assert signed is data
    assert "unsigned" in caplog.text


def test_parsed_message_first_header() -> None:
    parsed = ParsedMessage(b"from: a@b.test\r\nFrom: c@d.test\r\n\r\nx")

    assert parsed.first(b"FROM") == b" a@b.test\r\n"
    assert parsed.first(b"to") is None


@pytest.mark.parametrize(
    "data",
    [
        b"From: a@b.test\r\nSubject: s\r\n folded\r\n\r\nbody\r\n\r\n",
        b"From: a@b.test\r\n\r\n",
        b"From: a@b.test\r\n",
        b"From: a@b.test",
        b"\r\nbody only\r\n",
        b"From: a@b.test\r\n\r\n\r\n\r\nbody after blank lines",
    ],
)
def test_parsed_like_dkimpy(data) -> None:
    import dkim

    parsed = ParsedMessage(data)
    headers, body = dkim.rfc822_parse(data)

    assert (parsed.headers, parsed.body) == (headers, body)
