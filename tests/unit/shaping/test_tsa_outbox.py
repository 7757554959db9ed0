"""The TSA outbox: order, acknowledgement across segments, the bound, restarts and torn writes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from shaping.tsa.link import Backoff
from shaping.tsa.outbox import HEAD_FILE, SEGMENT_SUFFIX, Outbox, outbox_directory

URL = "http://127.0.0.1:8008"


Opener = Callable[..., Awaitable[Outbox]]


@pytest.fixture
async def open_outbox(tmp_path: Path) -> AsyncIterator[Opener]:
    """``await open_outbox(max_records=..., ...)``: an outbox of URL (or ``url=``) under
    tmp_path; every one opened is closed at teardown."""
    opened: list[Outbox] = []

    async def open_(url: str = URL, **options: Any) -> Outbox:
        opened.append(await Outbox.open(tmp_path, url, **options))
        return opened[-1]

    yield open_
    for outbox in opened:
        await outbox.close()


def records(start: int, stop: int) -> list[dict[str, int]]:
    return [{"n": n} for n in range(start, stop)]


async def drain(outbox: Outbox, batch: int = 7) -> list[int]:
    """Peek and ack everything, returning the record numbers in the order seen."""
    seen: list[int] = []
    while found := await outbox.peek(batch):
        seen.extend(record["n"] for record in found)
        await outbox.ack(len(found))
    return seen


def segment_files(root: Path) -> list[Path]:
    return sorted(outbox_directory(root, URL).glob("*" + SEGMENT_SUFFIX))


async def test_records_come_back_in_order_across_segments(
    tmp_path: Path, open_outbox: Opener
) -> None:
    outbox = await open_outbox(max_records=1_000, segment_records=10)
    for start in range(0, 95, 19):
        await outbox.append(records(start, start + 19))
    assert outbox.backlog == 95
    assert len(segment_files(tmp_path)) > 3
    assert await drain(outbox) == list(range(95))
    assert outbox.backlog == 0
    assert segment_files(tmp_path) == []  # acknowledged segments are deleted


async def test_peek_does_not_consume_and_ack_takes_a_prefix(
    tmp_path: Path, open_outbox: Opener
) -> None:
    outbox = await open_outbox(max_records=100, segment_records=4)
    await outbox.append(records(0, 10))
    assert [r["n"] for r in await outbox.peek(6)] == list(range(6))
    assert [r["n"] for r in await outbox.peek(6)] == list(range(6))
    await outbox.ack(5)  # spans the first segment and part of the second
    assert [r["n"] for r in await outbox.peek(3)] == [5, 6, 7]
    await outbox.ack(1)
    await outbox.ack(2)
    assert [r["n"] for r in await outbox.peek(10)] == [8, 9]
    with pytest.raises(ValueError):
        await outbox.ack(3)


async def test_records_appended_after_a_peek_are_seen_by_the_next(open_outbox: Opener) -> None:
    outbox = await open_outbox(max_records=100, segment_records=100)
    await outbox.append(records(0, 3))
    assert [r["n"] for r in await outbox.peek(10)] == [0, 1, 2]
    await outbox.append(records(3, 5))
    await outbox.append(records(5, 6))
    assert [r["n"] for r in await outbox.peek(10)] == [0, 1, 2, 3, 4, 5]
    await outbox.ack(2)
    await outbox.append(records(6, 7))
    assert await drain(outbox) == [2, 3, 4, 5, 6]


async def test_the_bound_drops_the_oldest_and_counts_them(
    tmp_path: Path, open_outbox: Opener
) -> None:
    outbox = await open_outbox(max_records=25, segment_records=10)
    for start in range(0, 60, 12):
        await outbox.append(records(start, start + 12))
    assert outbox.backlog == 25
    assert outbox.dropped == 35
    assert await drain(outbox) == list(range(35, 60))


async def test_records_dropped_while_a_batch_is_in_flight_are_skipped(
    tmp_path: Path, open_outbox: Opener
) -> None:
    outbox = await open_outbox(max_records=10, segment_records=4)
    await outbox.append(records(0, 10))
    in_flight = await outbox.peek(3)
    await outbox.append(records(10, 15))  # drops 0..4, including the batch being sent
    await outbox.ack(len(in_flight))
    assert outbox.dropped == 5
    assert await drain(outbox) == list(range(5, 15))


async def test_unacknowledged_records_survive_a_reopen(tmp_path: Path, open_outbox: Opener) -> None:
    outbox = await open_outbox(max_records=100, segment_records=4)
    await outbox.append(records(0, 10))
    await outbox.peek(6)
    await outbox.ack(6)
    await outbox.close()
    again = await open_outbox(max_records=100, segment_records=4)
    assert again.backlog == 4
    await again.append(records(10, 12))
    assert await drain(again) == list(range(6, 12))


async def test_a_torn_last_line_is_skipped_on_reopen(tmp_path: Path, open_outbox: Opener) -> None:
    outbox = await open_outbox(max_records=100, segment_records=100)
    await outbox.append(records(0, 5))
    await outbox.close()
    (last,) = segment_files(tmp_path)
    with last.open("ab") as handle:  # a crash in the middle of the next write
        handle.write(b'{"n": 5}\n{"n": 6}\n{"n"')
    again = await open_outbox(max_records=100, segment_records=100)
    await again.append(records(7, 9))
    assert await drain(again) == [0, 1, 2, 3, 4, 5, 6, 7, 8]


async def test_garbage_lines_and_an_unreadable_head_lose_nothing(
    tmp_path: Path, open_outbox: Opener
) -> None:
    outbox = await open_outbox(max_records=100, segment_records=100)
    await outbox.append(records(0, 3))
    await outbox.close()
    (last,) = segment_files(tmp_path)
    with last.open("ab") as handle:  # a zero-filled block, as some filesystems leave
        handle.write(b"\0" * 64 + b"\n")
    (outbox_directory(tmp_path, URL) / HEAD_FILE).write_text("not a number")
    again = await open_outbox(max_records=100, segment_records=100)
    assert await drain(again) == [0, 1, 2]


async def test_a_lower_bound_on_reopen_drops_the_oldest(
    tmp_path: Path, open_outbox: Opener
) -> None:
    outbox = await open_outbox(max_records=100, segment_records=5)
    await outbox.append(records(0, 20))
    await outbox.close()
    again = await open_outbox(max_records=8, segment_records=5)
    assert again.dropped == 12
    assert await drain(again) == list(range(12, 20))


async def test_each_url_has_its_own_directory(tmp_path: Path, open_outbox: Opener) -> None:
    first = await open_outbox(max_records=10)
    second = await open_outbox("http://127.0.0.2:8008", max_records=10)
    await first.append(records(0, 2))
    await second.append(records(5, 6))
    assert first.directory != second.directory
    assert (first.directory / "url").read_text().strip() == URL
    assert await drain(first) == [0, 1]
    assert await drain(second) == [5]


def test_the_client_modules_do_not_import_mta() -> None:
    probe = (
        "import sys, shaping.tsa.client, shaping.tsa.outbox;"
        "sys.exit(any(m == 'mta' or m.startswith('mta.') for m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, check=False)
    assert done.returncode == 0


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(0.5, 4.0)
    delays = [backoff.delay() for _ in range(6)]
    caps = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
    backoff.reset()
    assert backoff.delay() <= 0.5
