"""Addresses: envelope addresses and the mailboxes of address headers, strictly checked.

An address must be a dot-atom local part, one "@" and a host name (RFC 5321 4.1.2 without
quoted local parts or address literals), checked by `email-validator`. Anything else is
refused, so a client's text can never turn into a second recipient or an ESMTP parameter:
`a@b.com, c@d.com`, `"x@y> ORCPT=..."@z`, `a@b.com\\r\\nBcc: x@y`, display names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from mta.inject.errors import InvalidValue
from mta.inject.headers import check_value, encoded_words

MAX_LOCAL_PART = 64  # RFC 5321 4.5.3.1.1
MAX_ADDRESS = 254  # RFC 5321 4.5.3.1.3: a 256-octet path includes the angle brackets
MAX_DISPLAY_NAME = 256  # longer is a mistake, and would strain the 998-character line
DOMAIN_CACHE_SIZE = 4096
ADDRESS_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})

# RFC 5322 3.2.3 dot-atom-text, the same rule email-validator applies to ASCII local parts.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL_PART = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*\Z")
_MAILBOX = re.compile(
    r"""\s*(?:
        (?P<bare>[^\s<>",;:\\()\[\]]+)
      | (?P<phrase>"(?:[^"\\]|\\.)*"|[^"<>,;:\\()\[\]@]*?)\s*<(?P<addr>[^<>\s]*)>
    )\s*\Z""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Address:
    """A checked address as it goes on the envelope and into headers.

    `text` is `local@domain` with the domain in lowercase A-labels when the local part is
    ASCII; a non-ASCII local part needs SMTPUTF8 (RFC 6531), which `smtputf8` says.
    """

    text: str
    smtputf8: bool


NULL_SENDER = Address("", False)


class AddressChecker:
    """Checks addresses; host names are cached (email-validator costs ~30 µs per address,
    and a request's recipients share a few domains)."""

    def __init__(self, cache_size: int = DOMAIN_CACHE_SIZE) -> None:
        self._domains: dict[str, str | InvalidValue] = {}
        self._cache_size = cache_size

    def check(self, text: str) -> Address:
        """The checked form of `text`; InvalidValue with the reason when it is not one."""
        if text.isascii() and text.count("@") == 1:
            local, _, domain = text.partition("@")
            if len(local) <= MAX_LOCAL_PART and _LOCAL_PART.match(local):
                address = f"{local}@{self._domain(domain)}"
                if len(address) > MAX_ADDRESS:
                    raise InvalidValue(f"address longer than {MAX_ADDRESS} characters")
                return Address(address, False)
        return _validated(text)

    def check_sender(self, text: str) -> Address:
        """Like `check`, but "" is the null reverse-path (RFC 5321 4.5.5)."""
        return NULL_SENDER if text == "" else self.check(text)

    def _domain(self, domain: str) -> str:
        known = self._domains.get(domain)
        if known is None:
            try:
                known = _validated("a@" + domain).text.partition("@")[2]
            except InvalidValue as exc:
                known = exc
            if len(self._domains) >= self._cache_size:
                self._domains.clear()
            self._domains[domain] = known
        if isinstance(known, InvalidValue):
            raise known
        return known


def _validated(text: str) -> Address:
    try:
        valid = validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=True,
            # Allows the reserved `.test` domain of test and demo setups (RFC 6761) and
            # never touches DNS; other special-use names (localhost, .invalid) stay refused.
            test_environment=True,
            strict=True,
        )
    except EmailNotValidError as exc:
        raise InvalidValue(f"invalid address: {exc}") from None
    local = valid.local_part
    return Address(f"{local}@{valid.ascii_domain}", not local.isascii())


def format_mailbox(name: str | None, address: str) -> str:
    """`"Name" <address>` (quoted or RFC 2047-encoded name), or `<address>` without a name."""
    if not name:
        return f"<{address}>"
    return f"{display_name(name)} <{address}>"


def display_name(name: str) -> str:
    """A display name as an RFC 5322 phrase: a quoted-string, or encoded-words if non-ASCII."""
    check_value(name)
    if len(name) > MAX_DISPLAY_NAME:
        raise InvalidValue(f"display name longer than {MAX_DISPLAY_NAME} characters")
    if name.isascii():
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return " ".join(encoded_words(name))


def address_list(value: str, checker: AddressChecker) -> tuple[str, bool]:
    """Re-format an address header's value (`mailbox, mailbox`); (text, needs SMTPUTF8).

    Accepted forms per mailbox: `addr`, `Name <addr>`, `"Name" <addr>`; groups and comments
    are refused. Each address is checked like an envelope address.
    """
    check_value(value)
    mailboxes = []
    utf8 = False
    for item in _split_list(value):
        text, needs_utf8 = _mailbox(item, checker)
        mailboxes.append(text)
        utf8 = utf8 or needs_utf8
    return ", ".join(mailboxes), utf8


def _mailbox(item: str, checker: AddressChecker) -> tuple[str, bool]:
    match = _MAILBOX.match(item)
    if match is None:
        raise InvalidValue(f"not a mailbox: {item.strip()!r}")
    if match["bare"] is not None:
        address = checker.check(match["bare"])
        return address.text, address.smtputf8
    address = checker.check(match["addr"])
    phrase = match["phrase"].strip()
    if phrase.isascii():
        name = phrase  # already a valid quoted-string or run of atoms: keep as written
    else:
        unquoted = phrase[1:-1] if phrase.startswith('"') else phrase
        name = display_name(re.sub(r"\\(.)", r"\1", unquoted))
    text = f"{name} <{address.text}>" if name else f"<{address.text}>"
    return text, address.smtputf8


def _split_list(value: str) -> list[str]:
    """Split at the commas outside quoted-strings; refuse unbalanced quotes."""
    items = []
    start = 0
    quoted = escaped = False
    for i, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(value[start:i])
            start = i + 1
    if quoted:
        raise InvalidValue("unbalanced quotes in an address list")
    items.append(value[start:])
    return items
