"""Spool public behaviour: round trips, errors, health, lock, batching."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from spool import (
    RecoveredMessage,
    Spool,
    SpoolError,
    SpoolLocked,
    SpoolUnavailable,
    UnknownMessage,
)


async def open_spool(path: Path, **kwargs: object) -> tuple[Spool, list[RecoveredMessage]]:
    spool = Spool(path, **kwargs)  # type: ignore[arg-type]
    return spool, await spool.open()


async def test_store_read_update_remove_round_trip(tmp_path: Path) -> None:
    spool, recovered = await open_spool(tmp_path / "spool")
    assert list(recovered) == []
    await spool.store("m1", {"rcpt": ["a@example.com"], "n": 1}, b"Subject: hi\r\n\r\nbody")
    await spool.store("m2", {}, b"")
    assert spool.read("m1") == b"Subject: hi\r\n\r\nbody"
    assert spool.read("m2") == b""
    assert "m1" in spool and "nope" not in spool
    assert len(spool) == 2

    await spool.update("m1", {"n": 2})
    assert spool.read("m1") == b"Subject: hi\r\n\r\nbody"
    await spool.remove("m1")
    await spool.remove("m1")  # removing twice is not an error
    assert "m1" not in spool and len(spool) == 1
    with pytest.raises(UnknownMessage):
        spool.read("m1")
    with pytest.raises(UnknownMessage):
        await spool.update("m1", {"n": 3})
    await spool.close()


async def test_errors_for_duplicates_and_bad_input(tmp_path: Path) -> None:
    spool, _ = await open_spool(tmp_path)
    await spool.store("dup", {}, b"x")
    with pytest.raises(SpoolError, match="already"):
        await spool.store("dup", {}, b"y")
    # Two stores of one id in the same batch: exactly one wins.
    results = await asyncio.gather(
        spool.store("race", {}, b"a"), spool.store("race", {}, b"b"), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert isinstance(next(r for r in results if r is not None), SpoolError)
    with pytest.raises(ValueError):
        await spool.store("x" * 65, {}, b"")
    with pytest.raises(ValueError):
        await spool.store("é", {}, b"")
    with pytest.raises(TypeError):
        await spool.store("obj", {"x": object()}, b"")
    assert isinstance(UnknownMessage("k"), KeyError)
    assert str(UnknownMessage("k")) == "k"
    assert spool.read("dup") == b"x"
    await spool.close()


async def test_reopen_returns_live_messages_with_latest_meta(tmp_path: Path) -> None:
    spool, _ = await open_spool(tmp_path)
    for i in range(10):
        await spool.store(f"m{i}", {"i": i, "v": 0}, f"message {i}".encode() * 10)
    for i in range(0, 10, 3):
        await spool.update(f"m{i}", {"i": i, "v": 1})
    await spool.update("m0", {"i": 0, "v": 2})
    for i in (1, 4, 7):
        await spool.remove(f"m{i}")
    await spool.close()

    spool, recovered = await open_spool(tmp_path)
    by_id = {m.id: m for m in recovered}
    assert sorted(by_id) == sorted(f"m{i}" for i in range(10) if i not in (1, 4, 7))
    assert by_id["m0"].meta == {"i": 0, "v": 2}
    assert by_id["m3"].meta == {"i": 3, "v": 1}
    assert by_id["m2"].meta == {"i": 2, "v": 0}
    assert by_id["m5"].size == len(b"message 5" * 10)
    assert spool.read("m5") == b"message 5" * 10
    assert spool.stats().quarantined == 0
    await spool.close()


async def test_second_instance_is_locked_out(tmp_path: Path) -> None:
    first, _ = await open_spool(tmp_path)
    second = Spool(tmp_path)
    with pytest.raises(SpoolLocked) as info:
        await second.open()
    assert str(tmp_path) in str(info.value)
    assert f"PID {os.getpid()}" in str(info.value)
    await first.close()
    third, _ = await open_spool(tmp_path)  # released on close
    assert third.unhealthy_reason() is None
    await third.close()


async def test_min_free_bytes_makes_spool_unhealthy(tmp_path: Path) -> None:
    spool, _ = await open_spool(tmp_path)
    await spool.store("old", {"v": 0}, b"data")
    await spool.close()

    spool, _ = await open_spool(tmp_path, min_free_bytes=2**62)
    reason = spool.unhealthy_reason()
    assert reason is not None and "min_free_bytes" in reason
    with pytest.raises(SpoolUnavailable):
        await spool.store("m", {}, b"data")
    assert "m" not in spool
    # Delivery must still be able to record progress and free space.
    await spool.update("old", {"v": 1})
    assert spool.read("old") == b"data"
    await spool.remove("old")
    assert len(spool) == 0
    await spool.close()


async def test_lifecycle_health_and_idempotent_close(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    assert spool.path == tmp_path
    assert spool.unhealthy_reason() == "spool is not open"
    with pytest.raises(SpoolUnavailable):
        await spool.store("m", {}, b"")
    await spool.open()
    assert spool.unhealthy_reason() is None
    with pytest.raises(SpoolError):
        await spool.open()
    pending = asyncio.ensure_future(spool.store("late", {}, b"flushed by close"))
    await asyncio.sleep(0)
    await spool.close()
    await spool.close()
    assert pending.done() and pending.exception() is None
    assert spool.unhealthy_reason() == "spool is closed"
    with pytest.raises(SpoolUnavailable):
        await spool.store("m", {}, b"")
    with pytest.raises(SpoolUnavailable):
        await spool.remove("late")
    reopened, recovered = await open_spool(tmp_path)
    assert [m.id for m in recovered] == ["late"]
    await reopened.close()


async def test_concurrent_stores_are_group_committed(tmp_path: Path) -> None:
    spool, _ = await open_spool(tmp_path)
    count = 2000
    await asyncio.gather(*(spool.store(f"m{i}", {"i": i}, b"x" * 512) for i in range(count)))
    stats = spool.stats()
    assert stats.messages == count
    assert stats.commits <= count // 20, stats
    assert spool.read("m1999") == b"x" * 512
    await asyncio.gather(*(spool.remove(f"m{i}") for i in range(count)))
    assert len(spool) == 0
    assert spool.stats().commits <= count // 10
    await spool.close()


async def test_cancelled_store_before_commit_is_not_written(tmp_path: Path) -> None:
    spool, _ = await open_spool(tmp_path)
    task = asyncio.ensure_future(spool.store("gone", {}, b"x"))
    await asyncio.sleep(0)  # queued, but the writer has not taken it yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await spool.store("kept", {}, b"y")
    assert "gone" not in spool and "kept" in spool
    await spool.close()
