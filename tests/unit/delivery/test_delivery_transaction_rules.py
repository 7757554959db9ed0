"""The transaction bookkeeping, MAIL parameters and DATA encoding, without sockets."""

from __future__ import annotations

import pytest

from mta.delivery.replies import as_transient, from_response
from mta.delivery.transaction import (
    Transaction,
    encode_data,
    mail_options,
    needs_smtputf8,
    size_limit,
)
from mta.delivery.types import Job, Outcome, reply_kind
from mta.replies import Reply

OK = Reply(250, "2.0.0", "OK")
GO_AHEAD = Reply(354, "", "go ahead")


def job(*recipients: str, data: bytes = b"Subject: x\r\n\r\nhi\r\n", sender: str = "s@a") -> Job:
    return Job("m1", sender, recipients, data)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (250, "delivered"),
        (251, "delivered"),
        (421, "transient"),
        (450, "transient"),
        (550, "permanent"),
        (554, "permanent"),
        (354, "transient"),
        (-1, "transient"),
    ],
)
def test_outcome_kind_follows_the_reply_class(code: int, kind: str) -> None:
    assert reply_kind(Reply(code, "", "x")) == kind
    assert Outcome(Reply(code, "", "x")).kind == kind


def test_mixed_rcpt_replies_give_one_outcome_each() -> None:
    txn = Transaction(job("ok@b", "gone@b", "later@b"))
    assert txn.on_mail(OK)
    txn.begin("RCPT")
    txn.on_rcpt("ok@b", OK)
    txn.on_rcpt("gone@b", Reply(550, "5.1.1", "no such user"))
    txn.on_rcpt("later@b", Reply(450, "4.2.1", "mailbox busy"))
    assert txn.accepted == ["ok@b"]
    assert txn.on_data(GO_AHEAD)
    txn.on_dot(Reply(250, "2.0.0", "queued as X"))
    outcomes = txn.outcomes()
    assert {r: o.kind for r, o in outcomes.items()} == {
        "ok@b": "delivered",
        "gone@b": "permanent",
        "later@b": "transient",
    }
    assert outcomes["ok@b"].command == "."
    assert outcomes["gone@b"].command == "RCPT"


def test_mail_refusal_answers_every_recipient() -> None:
    txn = Transaction(job("a@b", "c@d"))
    assert not txn.on_mail(Reply(553, "5.7.1", "sender rejected"))
    assert {o.reply.code for o in txn.outcomes().values()} == {553}
    assert {o.command for o in txn.outcomes().values()} == {"MAIL"}


def test_data_refusal_answers_only_accepted_recipients() -> None:
    txn = Transaction(job("a@b", "c@d"))
    txn.on_mail(OK)
    txn.on_rcpt("a@b", OK)
    txn.on_rcpt("c@d", Reply(550, "5.1.1", "no"))
    assert not txn.on_data(Reply(554, "5.5.1", "no valid recipients"))
    outcomes = txn.outcomes()
    assert (outcomes["a@b"].reply.code, outcomes["a@b"].command) == (554, "DATA")
    assert (outcomes["c@d"].reply.code, outcomes["c@d"].command) == (550, "RCPT")


def test_connection_loss_settles_only_pending_recipients_with_the_phase() -> None:
    txn = Transaction(job("a@b", "c@d", "e@f"))
    txn.on_mail(OK)
    txn.begin("RCPT")
    txn.on_rcpt("a@b", Reply(550, "5.1.1", "no"))
    txn.on_rcpt("c@d", OK)
    assert not txn.settled
    txn.fail_pending(Reply(451, "4.4.2", "lost"))
    outcomes = txn.outcomes()
    assert outcomes["a@b"].reply.code == 550
    assert (outcomes["c@d"].reply.code, outcomes["c@d"].command) == (451, "RCPT")
    assert outcomes["e@f"].reply.code == 451


def test_duplicate_recipients_are_sent_once() -> None:
    assert Transaction(job("a@b", "a@b", "c@d")).recipients == ("a@b", "c@d")


def test_unsettled_transaction_refuses_to_report() -> None:
    txn = Transaction(job("a@b"))
    with pytest.raises(RuntimeError, match="unsettled"):
        txn.outcomes()


def test_outcomes_carry_the_session_details() -> None:
    def outcome(reply: Reply, command: str) -> Outcome:
        return Outcome(reply, command, tls_cipher="TLS_AES_256_GCM_SHA384")

    txn = Transaction(job("a@b"), outcome)
    txn.on_mail(Reply(451, "4.3.0", "later"))
    assert txn.outcomes()["a@b"].tls_cipher == "TLS_AES_256_GCM_SHA384"


def test_dot_stuffing_and_terminator() -> None:
    data = b"Subject: x\r\n\r\n.hidden\r\n.\r\nfine.\r\n..two\r\n"
    assert encode_data(data) == (b"Subject: x\r\n\r\n..hidden\r\n..\r\nfine.\r\n...two\r\n.\r\n")


def test_leading_dot_on_the_first_line_is_stuffed() -> None:
    assert encode_data(b".first\r\n") == b"..first\r\n.\r\n"


def test_bare_line_endings_become_crlf_and_a_final_crlf_is_added() -> None:
    assert encode_data(b"a\nb\rc\r\n.d") == b"a\r\nb\r\nc\r\n..d\r\n.\r\n"


def test_mail_options_follow_the_advertised_extensions() -> None:
    plain = job("a@b", data=b"hello\r\n")
    eight_bit = job("a@b", data="héllo\r\n".encode())
    utf8 = job("ü@b", data=b"x\r\n")
    everything = {"size": "1000", "8bitmime": "", "smtputf8": ""}
    assert mail_options(plain, everything) == ["SIZE=7"]
    assert mail_options(eight_bit, everything) == ["SIZE=8", "BODY=8BITMIME"]
    assert mail_options(utf8, everything) == ["SIZE=3", "SMTPUTF8"]
    assert mail_options(eight_bit, {}) == []
    assert needs_smtputf8(utf8) and not needs_smtputf8(plain)


@pytest.mark.parametrize(
    ("params", "expected"), [("1000", 1000), ("0", None), ("", None), ("x", None)]
)
def test_size_limit(params: str, expected: int | None) -> None:
    assert size_limit({"size": params}) == expected
    assert size_limit({}) is None


def test_multiline_reply_is_joined_without_repeated_enhanced_codes() -> None:
    reply = from_response(550, "5.1.1 no such user\n5.1.1 see https://example.com/help")
    assert reply == Reply(550, "5.1.1", "no such user see https://example.com/help")


def test_as_transient_keeps_the_detail_of_a_permanent_reply() -> None:
    assert as_transient(Reply(554, "5.7.1", "go away")) == Reply(451, "4.7.1", "go away")
    assert as_transient(Reply(550, "", "go away")) == Reply(451, "4.4.0", "go away")
    assert as_transient(Reply(421, "4.3.2", "busy")) == Reply(421, "4.3.2", "busy")
