"""Header lines: names and values checked, long values folded, non-ASCII encoded."""

from __future__ import annotations

import email.policy
from email.parser import BytesHeaderParser

import pytest

from mta.inject.errors import InvalidValue
from mta.inject.headers import (
    MAX_LINE,
    check_name,
    check_value,
    encoded_words,
    fold,
    unstructured_line,
)


def parsed_value(line: bytes, name: str) -> str:
    message = BytesHeaderParser(policy=email.policy.default).parsebytes(line + b"\r\n")
    return str(message[name])


@pytest.mark.parametrize("name", ["Subject", "X-Custom-1", "List-Unsubscribe", "x!#$%&'*+^_`|~"])
def test_ftext_names_are_accepted(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "Bad Name", "Bad:Name", "X-A\r\nBcc", "X-A\n", "X-\x00", "Sübject", "X" * 101, "a\tb"],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidValue):
        check_name(name)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("a\r\nBcc: x@y.com", "line break"),
        ("a\nb", "line break"),
        ("a\rb", "line break"),
        ("a\x00b", "NUL"),
        ("a\x0bb", "control character"),
        ("a\x7fb", "control character"),
    ],
)
def test_values_with_controls_are_refused(value: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        check_value(value)
    with pytest.raises(InvalidValue, match=reason):
        unstructured_line("Subject", value)


def test_tab_is_allowed() -> None:
    check_value("a\tb")


def test_short_ascii_value_is_kept_as_is() -> None:
    assert unstructured_line("Subject", "Hello there") == b"Subject: Hello there\r\n"


def test_long_value_is_folded_and_unfolds_to_itself() -> None:
    value = " ".join(f"word{i}" for i in range(60)) + "  double  spaces"
    line = unstructured_line("Subject", value)
    lines = line.split(b"\r\n")[:-1]
    assert len(lines) > 1
    assert all(len(segment) <= 78 for segment in lines)
    assert all(segment.strip() for segment in lines)
    assert line.replace(b"\r\n", b"")[len("Subject: ") :] == value.encode()
    assert parsed_value(line, "Subject") == value


def test_unbreakable_value_becomes_encoded_words_within_the_line_limit() -> None:
    value = "x" * 3000
    line = unstructured_line("X-Long", value)
    assert all(len(segment) <= MAX_LINE for segment in line.split(b"\r\n"))
    assert parsed_value(line, "X-Long") == value


@pytest.mark.parametrize(
    "value", ["Grüße aus Köln", "日本語のテキスト" * 20, "emoji 🎉 " * 30, "mixed ascii and é"]
)
def test_non_ascii_value_is_encoded_and_decodes_back(value: str) -> None:
    line = unstructured_line("Subject", value)
    assert line.isascii()
    assert all(len(segment) <= 78 for segment in line.split(b"\r\n"))
    assert parsed_value(line, "Subject") == value


def test_encoded_words_never_split_a_character() -> None:
    for word in encoded_words("é" * 100 + "🎉" * 50):
        assert len(word) <= 75  # RFC 2047 2
        encoded = word[len("=?utf-8?b?") : -2]
        __import__("base64").b64decode(encoded).decode("utf-8")  # whole characters


def test_fold_keeps_short_lines() -> None:
    assert fold("Subject: short") == ["Subject: short"]
