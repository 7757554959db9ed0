"""The fast MAIL/RCPT path parser agrees with aiosmtpd's RFC 5322 parser wherever it answers."""

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given
from hypothesis import strategies as st

from mta.smtp.session import _SIMPLE_PATH

ATOM = st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-", min_size=1, max_size=8)
LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
PARAMS = st.lists(st.sampled_from(["SIZE=100", "BODY=8BITMIME", "SMTPUTF8", "X=1"]), max_size=3)


def reference(arg: str) -> tuple[str | None, str | None]:
    parser = SMTP.__new__(SMTP)
    parser.local_part_limit = 0
    return SMTP._getaddr(parser, arg)


def fast(arg: str) -> tuple[str, str] | None:
    match = _SIMPLE_PATH.match(arg)
    return None if match is None else (match[1], match["rest"] or "")


@given(
    st.lists(ATOM, min_size=1, max_size=3),
    st.lists(LABEL, min_size=1, max_size=3),
    PARAMS,
    st.sampled_from([" ", "  ", "\t"]),
)
def test_fast_path_matches_reference(atoms, labels, params, gap) -> None:
    arg = f"<{'.'.join(atoms)}@{'.'.join(labels)}>" + (gap + " ".join(params) if params else "")
    result = fast(arg)
    assert result is not None
    assert result == reference(arg)


@pytest.mark.parametrize(
    "arg",
    [
        "<>",
        '<"quoted local"@example.com>',
        "<a@[127.0.0.1]>",
        "a@b.com",
        "<a@b.com>junk",
        "<a..b@example.com>",
        "<a@-b.com>",
        "<@relay:a@b.com>",
    ],
)
def test_unusual_paths_are_left_to_aiosmtpd(arg: str) -> None:
    assert fast(arg) is None
