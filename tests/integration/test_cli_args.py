"""`mta` operator commands without a node: usage errors, output formatting, error wording."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from mta.cli import main
from mta.cli_common import describe
from mta.cli_format import relative, remaining, span, table
from mta.cli_inject import result_text
from mta.cli_queue import message_text
from mta.cli_rules import KINDS, created_text, list_text
from mta.cli_summary import summary_text
from mta.client import AdminClient, ClientError
from mta.client.transport import _error_text

# Nothing listens on the discard port on a test machine; a usage error must come before any
# connection attempt, so these tests never depend on it.
NOWHERE = "http://127.0.0.1:9"
NOW = dt.datetime(2025, 1, 31, 12, 0, tzinfo=dt.UTC)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`mta ARGV` in this process: (exit code, stdout, stderr); argparse's exits included."""
    try:
        code = main(["--endpoint", NOWHERE, *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def columns(line: str) -> list[str]:
    """The cells of a table line (cells are two or more spaces apart)."""
    return re.split(r"\s{2,}", line.strip())


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Assert exit 2 with exactly one stderr line and nothing on stdout; return the line."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert out == ""
    assert err.count("\n") == 1, err
    return err.strip()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["bounce", "--domain", "example.com"], "mta bounce: --reason is required"),
        (["bounce", "--reason", "r"], "mta bounce: name what to match"),
        (["bounce", "--everything", "--domain", "d", "--reason", "r"], "cannot be combined"),
        (["suspend", "--queue", "q", "--tenant", "t", "--reason", "r"], "drop the other matchers"),
        (
            ["bounce", "--everything", "--reason", "r", "--duration", "5m", "--expires", "x"],
            "mta bounce: argument --expires: not allowed with argument --duration",
        ),
        (["bounce", "list", "--domain", "d"], "unrecognized arguments: --domain d"),
        (["bounce", "--domain", "d", "list"], "--domain only applies when creating a rule"),
        (["suspend", "--queue", "q", "cancel"], "--queue only applies when creating a rule"),
        (["bounce", "cancel"], "mta bounce cancel: which one? give its ID"),
        (["bounce-cancel", "--id", "a", "b"], "mta bounce-cancel: give one id"),
        (["suspend", "--tenant", "t"], "mta suspend: --reason is required"),
        (["suspend-ready-q", "--reason", "r"], "mta suspend-ready-q: --name is required"),
        (["queue"], "mta queue: the following arguments are required"),
        (["queue", "inspect"], "the following arguments are required: id"),
        (["frobnicate"], "mta: argument COMMAND: invalid choice: 'frobnicate'"),
        (["--timeout", "0", "queue", "summary"], "must be more than 0 seconds"),
        (["queue", "summary", "--output", "xml"], "invalid choice: 'xml'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    assert expected in usage_error(capsys, *argv)


def test_inject_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    eml = tmp_path / "mail.eml"
    eml.write_text("Subject: x\r\n\r\nhi\r\n")
    assert "--from is required" in usage_error(capsys, "inject", "--to", "a@b.example", str(eml))
    assert "at least one --to" in usage_error(capsys, "inject", "--from", "s@x", str(eml))
    assert "give FILE" in usage_error(capsys, "inject", "--from", "s@x", "--to", "a@b")
    both = usage_error(capsys, "inject", "--json", str(eml), "--to", "a@b")
    assert "--json FILE is the whole request" in both


def test_inject_names_an_unreadable_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    line = usage_error(capsys, "inject", "--from", "s@x", "--to", "a@b", "mail.eml")
    assert line == "mta inject: cannot read mail.eml: No such file or directory"
    (tmp_path / "bad.json").write_text("{nope")
    assert "mta inject: bad.json is not JSON" in usage_error(capsys, "inject", "--json", "bad.json")
    (tmp_path / "list.json").write_text("[]")
    assert "expected a JSON object" in usage_error(capsys, "inject", "--json", "list.json")


def test_credential_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MTA_PASSWORD", raising=False)
    token = tmp_path / "token"
    token.write_text("")
    assert "--user needs a password: set MTA_PASSWORD or use --password-file" in usage_error(
        capsys, "--user", "ops", "bounce", "list"
    )
    assert "either --user or --token-file" in usage_error(
        capsys, "--user", "ops", "--token-file", str(token), "bounce", "list"
    )
    assert f"token file {token} is empty" in usage_error(
        capsys, "--token-file", str(token), "bounce", "list"
    )
    assert "--password-file needs --user" in usage_error(
        capsys, "--password-file", str(token), "bounce", "list"
    )
    missing = usage_error(capsys, "--token-file", str(tmp_path / "none"), "bounce", "list")
    assert missing.endswith("No such file or directory")


def test_endpoint_is_checked_and_never_echoes_a_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = usage_error(capsys, "--endpoint", "http://ops:s3cret@127.0.0.1:9", "bounce", "list")
    assert "s3cret" not in line
    assert "not the URL" in line
    assert "invalid endpoint 'ftp://x'" in usage_error(
        capsys, "--endpoint", "ftp://x", "queue", "summary"
    )


def test_local_commands_refuse_node_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert "serve: --endpoint" in usage_error(capsys, "serve")


def test_kcli_spellings_parse_like_ours(capsys: pytest.CaptureFixture[str]) -> None:
    from mta.cli import _parser

    parser = _parser()
    ours = parser.parse_args(["suspend-ready-q", "cancel", "abc"])
    theirs = parser.parse_args(["suspend-ready-q-cancel", "--id", "abc"])
    assert (ours.id or ours.id_option) == (theirs.id or theirs.id_option) == "abc"
    inspect = parser.parse_args(["inspect-message", "m1", "--want-body"])
    assert (inspect.id, inspect.body) == ("m1", True)
    late = parser.parse_args(["bounce", "list", "--json", "--endpoint", "http://h:1"])
    early = parser.parse_args(["--json", "--endpoint", "http://h:1", "bounce-list"])
    assert (late.output, late.endpoint) == (early.output, early.endpoint) == ("json", "http://h:1")


def test_table_aligns_and_right_justifies_numbers() -> None:
    text = table(["QUEUE", "COUNT", "NOTE"], [["a.example", 3, None], ["b", 120, "slow"]])
    assert text.splitlines() == [
        "QUEUE      COUNT  NOTE",
        "a.example      3  -",
        "b            120  slow",
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.6, "1m"), (61, "1m01s"), (600, "10m"), (3900, "1h05m"), (90000, "1d01h")],
)
def test_span(seconds: float, text: str) -> None:
    assert span(seconds) == text


def test_relative_and_remaining() -> None:
    assert relative("2025-01-31T12:05:00Z", NOW) == "in 5m"
    assert relative("2025-01-31T10:00:00+00:00", NOW) == "2h00m ago"
    assert relative(None, NOW) == "-"
    assert relative("soon", NOW) == "soon"
    assert remaining("4m 50s 207ms 320us 231ns") == "4m 50s"
    assert remaining(299.5) == "5m"


def test_rule_list_drops_empty_optional_columns() -> None:
    first = {"id": "b1", "domain": "example.com", "tenant": None, "reason": "purge"}
    second = {"id": "b2", "campaign": "spring", "reason": "bad send", "duration": 60}
    entries = [
        {**first, "duration": "4m 50s 207ms", "bounced": {"example.com": 2}, "total_bounced": 2},
        {**second, "total_bounced": 0},
    ]
    lines = list_text(KINDS["bounce"], entries).splitlines()
    assert lines == [
        "ID  DOMAIN       CAMPAIGN  REMAINING  BOUNCED  REASON",
        "b1  example.com  -         4m 50s           2  purge",
        "b2  -            spring    1m               0  bad send",
    ]
    assert list_text(KINDS["suspend"], []) == "no active suspensions"


def test_created_text_reports_an_immediate_sweep() -> None:
    answer = {"id": "b1", "bounced": {"example.com": 2, "x.example": 1}, "total_bounced": 3}
    assert created_text(KINDS["bounce"], answer) == (
        "created bounce b1\nbounced 3 now (example.com 2, x.example 1)"
    )
    assert created_text(KINDS["suspend"], {"id": "s1"}) == "created suspension s1"


def test_message_text_shows_envelope_legs_then_body() -> None:
    leg = {
        "queue_name": "example.com",
        "recipients": ["a@example.com", "b@example.com"],
        "due": "2025-01-31T12:00:30Z",
        "num_attempts": 2,
        "last_reply": "451 4.4.1 later",
        "state": "scheduled",
        "ready_queue": None,
    }
    info = {
        "sender": "s@example.org",
        "recipient": ["a@example.com", "b@example.com"],
        "meta": {"tenant": "t1", "received_from": None},
        "data": "Subject: hi\r\n\r\nHi.\r\n",
        "due": "2025-01-31T12:00:30Z",
        "num_attempts": 2,
        "created": "2025-01-31T11:59:00Z",
        "queues": [leg],
    }
    text = message_text({"id": "m1", "message": info}, NOW)
    fields, legs, body = text.split("\n\n", 2)
    assert fields == (
        "id            m1\n"
        "sender        s@example.org\n"
        "recipient     a@example.com,b@example.com\n"
        "created       1m ago\n"
        "due           in 30s\n"
        "num_attempts  2\n"
        "meta          tenant=t1"
    )
    header, row = map(columns, legs.splitlines())
    assert header == [
        "QUEUE",
        "STATE",
        "DUE",
        "ATTEMPTS",
        "READY QUEUE",
        "RECIPIENTS",
        "LAST REPLY",
    ]
    assert row == [
        "example.com",
        "scheduled",
        "in 30s",
        "2",
        "-",
        "a@example.com,b@example.com",
        "451 4.4.1 later",
    ]
    assert body == "Subject: hi\n\nHi."
    no_body = message_text({"id": "m1", "message": {**info, "data": None, "queues": []}}, NOW)
    assert "Subject" not in no_body and "QUEUE" not in no_body


def test_summary_text_totals_first_like_qshape() -> None:
    buckets = ["0-5m", "5-10m", "10m+"]
    ages = dict.fromkeys(buckets, 0)
    answer = {
        "now": "2025-01-31T12:00:00.000Z",
        "buckets": buckets,
        "scheduled": {
            "example.com": {
                "count": 3,
                "recipients": 4,
                "oldest": "2025-01-31T11:48:00.000Z",
                "next_due": "2025-01-31T12:00:40.000Z",
                "ages": {**ages, "0-5m": 1, "10m+": 2},
            },
            "b.example": {
                "count": 1,
                "recipients": 1,
                "oldest": None,
                "next_due": None,
                "ages": {**ages, "0-5m": 1},
            },
        },
        "ready": {
            "src->mx.example@smtp_client": {
                "count": 2,
                "recipients": 2,
                "in_flight": 1,
                "suspended": True,
                "ages": {**ages, "5-10m": 2},
                "oldest": "2025-01-31T11:53:00.000Z",
            },
        },
    }
    # The answer's own `now` is the reference, not the client's clock.
    text = summary_text(answer, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert text.splitlines() == [
        "SCHEDULED QUEUE  MSGS  RCPTS  OLDEST  NEXT DUE  5m  10m  10m+",
        "TOTAL               4      5  12m     in 40s     2    0     2",
        "example.com         3      4  12m     in 40s     1    0     2",
        "b.example           1      1  -       -          1    0     0",
        "",
        "READY QUEUE                  MSGS  RCPTS  OLDEST  ACTIVE  SUSPENDED  5m  10m  10m+",
        "TOTAL                           2      2  7m           1  -           0    2     0",
        "src->mx.example@smtp_client     2      2  7m           1  yes         0    2     0",
    ]
    assert summary_text({"scheduled": {}, "ready": {}}, NOW) == "no queued messages"


def test_inject_result_text() -> None:
    answer = {"success_count": 1, "fail_count": 1, "errors": ["x@: invalid address"]}
    assert result_text(answer) == "1 accepted, 1 failed\nerror: x@: invalid address"


def test_error_text_is_one_short_line() -> None:
    assert _error_text(400, b"duration: invalid duration 'x'\n") == "duration: invalid duration 'x'"
    assert _error_text(404, b'{"error": "no message 123"}') == "no message 123"
    assert _error_text(500, b"line one\nline two") == "line one line two"
    assert _error_text(503, b"") == "service unavailable"
    assert len(_error_text(400, b"x" * 5000)) <= 300


def test_401_hint_names_the_credential_in_use() -> None:
    import argparse

    refused = ClientError(401, "Invalid Authorization")
    assert describe(refused, argparse.Namespace(user="ops")) == (
        "401 unauthorized: check --user/MTA_PASSWORD"
    )
    assert describe(refused, argparse.Namespace(token_file="t")) == (
        "401 unauthorized: check --token-file"
    )
    assert describe(ClientError(404, "no message 1"), argparse.Namespace()) == "404: no message 1"


def test_client_rejects_a_bad_endpoint() -> None:
    with pytest.raises(ValueError, match="invalid endpoint"):
        AdminClient("127.0.0.1:8000")
    assert AdminClient("http://127.0.0.1:8000/").endpoint == "http://127.0.0.1:8000"
