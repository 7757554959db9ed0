"""`date_now`: the RFC 5322 date-time of the Date and Received headers, formatted once a second."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from mta.smtp.headers import date_now, ensure_message_id_and_date, received_header


def test_date_now_is_what_format_datetime_gives_for_now() -> None:
    before = int(time.time())
    text = date_now()
    after = int(time.time())

    assert text in {format_datetime(datetime.fromtimestamp(s, UTC)) for s in (before, after)}
    assert before <= parsedate_to_datetime(text).timestamp() <= after


def test_headers_without_a_time_given_carry_now() -> None:
    before = int(time.time())
    received = received_header(
        helo="client.test", peer_ip="192.0.2.1", hostname="mta.test", protocol="ESMTP", queue_id="q"
    )
    dated = ensure_message_id_and_date(b"Subject: x\r\n\r\nbody\r\n", "mta.test")
    after = int(time.time())

    stamp = received.decode().rsplit(";", 1)[1].strip()
    date = dated.decode().split("Date: ", 1)[1].split("\r\n", 1)[0]
    for text in (stamp, date):
        assert before <= parsedate_to_datetime(text).timestamp() <= after
