"""Address checks: strict, agreeing with email-validator, and never a way to inject."""

from __future__ import annotations

import email.policy
from email.headerregistry import Address as ParsedAddress
from email.parser import BytesHeaderParser

import pytest
from email_validator import EmailNotValidError, validate_email

from mta.inject.addresses import (
    Address,
    AddressChecker,
    address_list,
    display_name,
    format_mailbox,
)
from mta.inject.errors import InvalidValue
from mta.inject.headers import structured_line

INJECTIONS = [
    "a@b.com, c@d.com",
    "a@b.com,c@d.com",
    '"x@y> ORCPT=rfc822;x@y"@z.com',
    "<a@b.com> NOTIFY=NEVER",
    "a@b.com\r\nBcc: x@y.com",
    "a@b.com\nBcc: x@y.com",
    "a@b.com\r",
    "a\x00@b.com",
    "a@b.com\x00",
    "Bob <a@b.com>",
    "a@b.com>",
    "<a@b.com",
    "a b@c.com",
    "a@b .com",
    "a@[127.0.0.1]",
    "a@localhost",
    "a@b",
    "@b.com",
    "a@",
    "",
    "a..b@c.com",
    ".a@c.com",
    "a@-b.com",
    "a@b.com.",
    "x" * 65 + "@b.com",
    "a@" + "b" * 64 + ".com",
]

VALID = [
    "someone@example.com",
    "First.Last+tag@Sub.Example.COM",
    "o'brien@example.co.uk",
    "user_1-x=y@mail.example.org",
    "rcpt@mta.test",
    "josé@bücher.de",
    "user@bücher.de",
    "用户@例子.广告",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_bad_and_injected_addresses_are_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        AddressChecker().check(text)


@pytest.mark.parametrize("text", VALID)
def test_fast_path_agrees_with_email_validator(text: str) -> None:
    checker = AddressChecker()
    checker.check("warm@" + text.rpartition("@")[2])  # cache the domain first
    checked = checker.check(text)
    reference = validate_email(
        text, check_deliverability=False, allow_smtputf8=True, test_environment=True
    )
    assert checked == Address(
        f"{reference.local_part}@{reference.ascii_domain}", not reference.local_part.isascii()
    )


@pytest.mark.parametrize("text", [*INJECTIONS, *VALID, "a@b.invalid", "a@1.2.3.4"])
def test_never_accepts_what_email_validator_refuses(text: str) -> None:
    try:
        validate_email(text, check_deliverability=False, allow_smtputf8=True, test_environment=True)
    except EmailNotValidError:
        with pytest.raises(InvalidValue):
            AddressChecker().check(text)


def test_domains_are_cached_and_lowercased() -> None:
    checker = AddressChecker(cache_size=2)
    assert checker.check("A@Example.COM").text == "A@example.com"
    for i in range(5):
        assert checker.check(f"u@d{i}.example").text == f"u@d{i}.example"
    with pytest.raises(InvalidValue):
        checker.check("u@d.localhost")
    with pytest.raises(InvalidValue):  # a cached refusal refuses again
        checker.check("v@d.localhost")


def test_international_addresses() -> None:
    checker = AddressChecker()
    assert checker.check("user@bücher.de") == Address("user@xn--bcher-kva.de", False)
    assert checker.check("josé@bücher.de") == Address("josé@xn--bcher-kva.de", True)


def test_null_sender_only_where_allowed() -> None:
    assert AddressChecker().check_sender("").text == ""
    with pytest.raises(InvalidValue):
        AddressChecker().check("")


def _parse_header(line: bytes) -> email.message.EmailMessage:
    parsed = BytesHeaderParser(policy=email.policy.default).parsebytes(line + b"\r\n")
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


@pytest.mark.parametrize(
    "name",
    ["Bob", 'Bob "the builder" O\'Neil', "Smith, John", "back\\slash", "Zoë Ünicode", "日本語"],
)
def test_display_names_round_trip(name: str) -> None:
    line = structured_line("To", format_mailbox(name, "bob@example.com"))
    assert line.isascii()
    address = _parse_header(line)["To"].addresses[0]
    assert address == ParsedAddress(display_name=name, addr_spec="bob@example.com")


@pytest.mark.parametrize("name", ["a\r\nBcc: x@y.com", "a\nb", "a\x00", "a\x1b[31m"])
def test_display_names_with_controls_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue):
        display_name(name)


def test_mailbox_without_name_is_angle_addr() -> None:
    assert format_mailbox(None, "a@b.com") == "<a@b.com>"
    assert format_mailbox("", "a@b.com") == "<a@b.com>"


def test_address_list_is_reformatted_and_checked() -> None:
    checker = AddressChecker()
    text, utf8 = address_list(
        'a@example.com, "Doe, Jane" <jane@Example.com>,  Bob Q. Public <bob@example.com>,'
        " Zoë <zoe@example.com>",
        checker,
    )
    assert not utf8
    parsed = _parse_header(structured_line("Cc", text))["Cc"].addresses
    assert [(a.display_name, a.addr_spec) for a in parsed] == [
        ("", "a@example.com"),
        ("Doe, Jane", "jane@example.com"),
        ("Bob Q. Public", "bob@example.com"),
        ("Zoë", "zoe@example.com"),
    ]


@pytest.mark.parametrize(
    "value",
    [
        "a@b.com,",
        '"unbalanced <a@b.com>',
        "a@b.com\r\nBcc: x@y.com",
        "Bob <a@b.com> NOTIFY=NEVER",
        "undisclosed-recipients:;",
        "(comment) a@b.com",
        "<a@b.com, c@d.com>",
        'Bob <"x@y> ORCPT=..."@z.com>',
    ],
)
def test_address_list_refuses_anything_else(value: str) -> None:
    with pytest.raises(InvalidValue):
        address_list(value, AddressChecker())
