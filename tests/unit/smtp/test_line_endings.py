"""Bare CR / bare LF detection and normalization agree with their regex definitions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mta.smtp.validate import has_bare_line_endings, normalize_line_endings

BARE = re.compile(rb"\r(?!\n)|(?<!\r)\n")  # the definition: a CR or LF outside a CRLF
ANY_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
TEXT = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a", b"."]), max_size=30).map(b"".join)


@given(TEXT)
def test_detection_matches_the_regex(data: bytes) -> None:
    assert has_bare_line_endings(data) == (BARE.search(data) is not None)


@given(TEXT)
def test_normalization_matches_the_regex(data: bytes) -> None:
    normalized = normalize_line_endings(data)
    assert normalized == ANY_LINE_ENDING.sub(b"\r\n", data)
    assert not has_bare_line_endings(normalized)


@pytest.mark.parametrize(
    ("data", "normalized"),
    [
        (b"a\r\r\nb", b"a\r\n\r\nb"),
        (b"a\n\rb", b"a\r\n\r\nb"),
        (b"\r\n.\r", b"\r\n.\r\n"),
        (b"x\r\ny\r\n", b"x\r\ny\r\n"),
    ],
)
def test_normalization_examples(data: bytes, normalized: bytes) -> None:
    assert normalize_line_endings(data) == normalized
