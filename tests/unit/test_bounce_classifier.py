"""The shipped bounce rules on real-world replies, and rules files layered over them."""

from __future__ import annotations

from pathlib import Path

import pytest

from mta.bounce import (
    DEFAULT_BOUNCE_RULES,
    UNCATEGORIZED,
    BounceClassifier,
    RulesError,
    classify_bounce,
    load_classifier,
)
from mta.bounce.rules import default_rules, parse_rules
from mta.replies import Reply

# Replies as the providers send them (multi-line replies joined, as the delivery client does).
# fmt: off
REAL_WORLD = [
    # Gmail
    ("550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser", "InvalidRecipient"),  # noqa: E501
    ("552 5.2.2 The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm", "QuotaIssues"),  # noqa: E501
    ("550 5.7.1 Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", "SpamContent"),  # noqa: E501
    ("550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.", "AuthenticationFailed"),  # noqa: E501
    ("421 4.7.0 Try again later, closing connection. (EHLO) https://support.google.com/mail/answer/188131", "TransientFailure"),  # noqa: E501
    ("450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", "InactiveMailbox"),  # noqa: E501
    ("550 5.2.1 The email account that you tried to reach is disabled.", "InactiveMailbox"),
    ("550 5.7.1 The user or domain that you are sending to (or from) has a policy that prohibited the mail that you sent.", "PolicyRelated"),  # noqa: E501
    # Outlook / Office 365 / Exchange
    ("550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302).", "InvalidRecipient"),  # noqa: E501
    ("550 5.4.1 Recipient address rejected: Access denied. AS(201806281) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]", "InvalidRecipient"),  # noqa: E501
    ("550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150).", "SpamBlock"),  # noqa: E501
    ("550 5.7.606 Access denied, banned sending IP [192.0.2.10]. To request removal from this list please visit https://sender.office.com/", "SpamBlock"),  # noqa: E501
    ("451 4.7.500 Server busy. Please try again later from [192.0.2.10]. (S77714)", "TransientFailure"),  # noqa: E501
    # Microsoft answers 5.1.10 (RFC 7505: null MX) for unknown recipients; the words decide.
    ("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "InvalidRecipient"),  # noqa: E501
    ("554 5.2.2 mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException", "QuotaIssues"),
    ("550 5.7.64 TenantAttribution; Relay Access Denied", "RelayDenied"),
    ("550 5.1.1 RESOLVER.ADR.ExRecipNotFound; not found", "InvalidRecipient"),
    # Yahoo / AOL
    ("554 delivery error: dd This user doesn't have a yahoo.com account (bob@yahoo.com) [0] - mta1047.mail.ne1.yahoo.com", "InvalidRecipient"),  # noqa: E501
    ("421 4.7.0 [TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", "TransientFailure"),  # noqa: E501
    ("553 5.7.1 [BL21] Connections will not be accepted from 192.0.2.10, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", "SpamBlock"),  # noqa: E501
    ("554 5.7.9 Message not accepted for policy reasons. See https://postmaster.yahooinc.com/error-codes", "PolicyRelated"),  # noqa: E501
    # Apple iCloud
    ("550 5.1.1 <bob@icloud.com>: user does not exist", "InvalidRecipient"),
    ("554 5.7.1 [CS01] Message rejected due to local policy. Please visit https://support.apple.com/en-us/HT204137", "PolicyRelated"),  # noqa: E501
    ("552 5.2.2 <bob@me.com>: user is over quota", "QuotaIssues"),
    # Postfix
    ("550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table", "InvalidRecipient"),  # noqa: E501
    ("450 4.1.8 <alice@example.org>: Sender address rejected: Domain not found", "InvalidSender"),
    ("450 4.2.0 <bob@example.com>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", "TransientFailure"),  # noqa: E501
    ("554 5.7.1 <bob@example.com>: Relay access denied", "RelayDenied"),
    ("554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10", "SpamBlock"),  # noqa: E501
    ("552 5.3.4 Message size exceeds fixed limit", "QuotaIssues"),
    # Exim
    ("550 Unrouteable address", "BadDomain"),
    ("550 No Such User Here", "InvalidRecipient"),
    ("451 Temporary local problem - please try later", UNCATEGORIZED),
    ("550 Administrative prohibition", UNCATEGORIZED),
    ("550-Verification failed for <alice@example.org> 550 Sender verify failed", UNCATEGORIZED),
    # Proofpoint / Mimecast / Barracuda / Cisco
    ("554 5.7.0 Blocked - see https://ipcheck.proofpoint.com/?ip=192.0.2.10", "PolicyRelated"),
    ("550 5.7.1 Message blocked due to spam content in the message.", "SpamContent"),
    ("550 Rejected by header based Anti-Spoofing policy: bob@example.com - https://community.mimecast.com/docs/DOC-1369#550", "PolicyRelated"),  # noqa: E501
    ("554 Email rejected due to security policies - https://community.mimecast.com/docs/DOC-1369#554", "PolicyRelated"),  # noqa: E501
    ("550 Invalid Recipient - https://community.mimecast.com/docs/DOC-1369#550", "InvalidRecipient"),  # noqa: E501
    ("554 Service unavailable; Client host [192.0.2.10] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.10", "SpamBlock"),  # noqa: E501
    ("550 5.7.1 Virus detected: Win.Trojan.Agent-1234 (message rejected)", "VirusRelated"),
    ("552 5.7.0 This message was blocked because its content presents a potential security issue. The file extension is not allowed.", "ProhibitedAttachment"),  # noqa: E501
    # DNS, connections, TLS, expiry (the node's own replies included)
    ("550 5.1.2 Recipient domain does not exist", "BadDomain"),
    ("556 5.1.10 Recipient domain does not accept mail (null MX)", "BadDomain"),
    ("451 4.4.3 DNS lookup failed: SERVFAIL for example.com", "DNSFailure"),
    ("451 4.4.1 Connection refused by mx.example.com", "NoAnswerFromHost"),
    ("421 4.4.2 Connection dropped while sending DATA", "BadConnection"),
    ("451 4.7.5 TLS handshake failed: certificate verify failed", "BadConnection"),
    ("551 5.4.7 Delivery time expired", "MessageExpired"),
    ("554 5.4.6 Mail loop detected: MX points back to this node", "RoutingErrors"),
    ("452 4.5.3 Too many recipients", "TooManyRecipients"),
    ("451 4.3.0 Local error in processing", UNCATEGORIZED),
    ("250 2.0.0 OK user unknown", UNCATEGORIZED),  # a success never classifies
]
# fmt: on


@pytest.mark.parametrize(("line", "expected"), REAL_WORLD)
def test_shipped_rules_on_real_world_replies(line: str, expected: str) -> None:
    assert classify_bounce(Reply.parse(line)) == expected


def test_the_table_is_large_and_varied() -> None:
    assert len(REAL_WORLD) >= 40
    assert len({expected for _, expected in REAL_WORLD}) >= 15


def test_shipped_rules_load_from_the_packaged_file() -> None:
    groups = default_rules()
    assert [group.name for group in groups] == list(DEFAULT_BOUNCE_RULES)
    assert groups[0].name == "SpamContent"
    assert {"InvalidRecipient", "BadDomain", "QuotaIssues"} <= set(DEFAULT_BOUNCE_RULES)


def _rules_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


CUSTOM = "550 5.7.1 Message refused: sender on the acme naughty list"


def test_extend_adds_patterns_after_the_shipped_ones(tmp_path: Path) -> None:
    path = _rules_file(
        tmp_path,
        "extra.toml",
        "[rules]\nInvalidRecipient = ['\\bgone away\\b']\nNaughty = ['naughty list']\n",
    )
    classifier = load_classifier([path])
    assert classifier.classify(Reply.parse("550 mailbox gone away")) == "InvalidRecipient"
    # The shipped SpamBlock/PolicyRelated rules still win over the new class ...
    assert classifier.classify(Reply.parse(CUSTOM)) == "PolicyRelated"
    # ... which comes last, after every shipped class.
    assert classifier.classes[-1] == "Naughty"
    assert classifier.classes.index("InvalidRecipient") == list(DEFAULT_BOUNCE_RULES).index(
        "InvalidRecipient"
    )
    assert classifier.classify(Reply.parse("554 5.0.0 on the naughty list")) == "Naughty"


def test_first_mode_overrides_the_shipped_rules(tmp_path: Path) -> None:
    path = _rules_file(
        tmp_path, "first.toml", "mode = \"first\"\n[rules]\nTransientFailure = ['naughty list']\n"
    )
    classifier = load_classifier([path])
    assert classifier.classify(Reply.parse(CUSTOM)) == "TransientFailure"
    # Everything else is still classified by the shipped rules.
    assert classifier.classify(Reply.parse("550 5.1.1 user unknown")) == "InvalidRecipient"


def test_replace_mode_drops_everything_before(tmp_path: Path) -> None:
    base = _rules_file(tmp_path, "a.toml", "mode = \"first\"\n[rules]\nA = ['alpha']\n")
    path = _rules_file(tmp_path, "b.toml", "mode = \"replace\"\n[rules]\nOnly = ['^5']\n")
    classifier = load_classifier([base, path])
    assert classifier.classes == ["Only"]
    assert classifier.classify(Reply.parse("550 5.1.1 user unknown alpha")) == "Only"
    assert classifier.classify(Reply.parse("451 4.4.1 timed out")) == UNCATEGORIZED


def test_files_apply_in_order(tmp_path: Path) -> None:
    one = _rules_file(tmp_path, "1.toml", "mode = \"first\"\n[rules]\nOne = ['shared']\n")
    two = _rules_file(tmp_path, "2.toml", "mode = \"first\"\n[rules]\nTwo = ['shared']\n")
    assert load_classifier([one, two]).classify(Reply.parse("550 shared")) == "Two"
    assert load_classifier([two, one]).classify(Reply.parse("550 shared")) == "One"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rules]\nX = ['(unclosed']\n", "rules.X[0]: invalid regex"),
        ("[rules]\nX = 'not a list'\n", "rules.X: expected a list"),
        ("[rules]\n'bad name' = ['x']\n", "rules.bad name: a class name"),
        ('mode = "sideways"\n', "mode: 'sideways' is not one of"),
        ("rule = {}\n", "rule: unknown key"),
        ("[rules\n", "invalid TOML"),
    ],
)
def test_bad_rules_files_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = _rules_file(tmp_path, "bad.toml", text)
    with pytest.raises(RulesError, match=r"bad\.toml") as caught:
        load_classifier([path])
    assert message in str(caught.value)


def test_missing_rules_file(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_classifier([tmp_path / "absent.toml"])


def test_mapping_rules_and_multi_line_replies() -> None:
    classifier = BounceClassifier({"Mine": [r"^550 .*custom"], "Other": [r"custom"]})
    assert classifier.classify(Reply(550, "", "a custom block")) == "Mine"
    assert classifier.classify(Reply(451, "", "custom")) == "Other"
    # A reply joined from several lines still anchors `^` at its code.
    assert classifier.classify_line("550 first line\n550 custom second") == "Mine"


def test_parse_rules_keeps_the_file_order() -> None:
    mode, groups = parse_rules("[rules]\nB = ['b']\nA = ['a']\n", "inline")
    assert mode == "extend"
    assert [group.name for group in groups] == ["B", "A"]
