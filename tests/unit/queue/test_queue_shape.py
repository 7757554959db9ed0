"""The queue summary's age buckets, as Postfix's qshape: each twice as wide as the one before."""

from __future__ import annotations

import pytest

from mta.queue.inspect import AGE_BUCKETS, age_bucket

MINUTE = 60.0


def test_bucket_labels() -> None:
    assert AGE_BUCKETS == (
        "0-5m", "5-10m", "10-20m", "20-40m", "40-80m", "80-160m", "160-320m", "320-640m",
        "640-1280m", "1280m+",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("minutes", "bucket"),
    [
        (-3, "0-5m"),  # a clock step back: counted as new
        (0, "0-5m"),
        (4.99, "0-5m"),
        (5, "5-10m"),  # a bucket holds its lower bound, not its upper one
        (19.5, "10-20m"),
        (20, "20-40m"),
        (100, "80-160m"),
        (1279, "640-1280m"),
        (1280, "1280m+"),
        (7 * 24 * 60, "1280m+"),
    ],
)
def test_age_bucket(minutes: float, bucket: str) -> None:
    assert age_bucket(minutes * MINUTE) == bucket
