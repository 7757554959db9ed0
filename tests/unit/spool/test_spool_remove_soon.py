"""Spool.remove_soon: queued at once, durable at its group commit, kept across a close."""

from __future__ import annotations

from pathlib import Path

import pytest

from spool import Spool, SpoolUnavailable


async def test_remove_soon_returns_before_the_commit_and_is_durable_after(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    await spool.open()
    await spool.store("m1", {}, b"one")
    await spool.store("m2", {}, b"two")

    future = spool.remove_soon("m1")
    assert not future.done()  # the caller goes on; the writer commits it with the next batch
    await future
    assert "m1" not in spool
    await spool.close()

    again = Spool(tmp_path)
    assert [m.id for m in await again.open()] == ["m2"]
    await again.close()


async def test_removals_queued_at_close_are_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    await spool.open()
    for n in range(5):
        await spool.store(f"m{n}", {}, b"x")

    futures = [spool.remove_soon(f"m{n}") for n in range(3)]
    await spool.close()  # never awaited by their caller: the close commits them

    assert all(f.done() and f.exception() is None for f in futures)
    again = Spool(tmp_path)
    assert sorted(m.id for m in await again.open()) == ["m3", "m4"]
    await again.close()


async def test_remove_soon_on_a_closed_spool_raises_at_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    await spool.open()
    await spool.close()

    with pytest.raises(SpoolUnavailable, match="closed"):
        spool.remove_soon("m1")
