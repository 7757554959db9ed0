"""Spool.open() hands back the recovered messages lazily; Spool.read_meta reads one meta."""

from __future__ import annotations

from pathlib import Path

import pytest

from spool import Spool, UnknownMessage
from spool.store import META_READ_AHEAD


async def _filled(path: Path) -> None:
    spool = Spool(path, fsync=False)
    await spool.open()
    await spool.store("a", {"n": 1}, b"body a")
    await spool.store("b", {"n": 1}, b"body b")
    await spool.store("c", {"n": 1}, b"body c")
    await spool.update("b", {"n": 2})
    await spool.remove("c")
    await spool.store("big", {"pad": "x" * (2 * META_READ_AHEAD)}, b"body big")
    await spool.close()


async def test_recovered_messages_carry_their_latest_meta(tmp_path: Path) -> None:
    await _filled(tmp_path)
    spool = Spool(tmp_path, fsync=False)
    recovered = await spool.open()
    try:
        assert len(recovered) == 3
        by_id = {m.id: m for m in recovered}
        assert by_id["a"].meta == {"n": 1} and by_id["b"].meta == {"n": 2}
        assert by_id["big"].meta == {"pad": "x" * (2 * META_READ_AHEAD)}  # over the read-ahead
        assert by_id["a"].size == len(b"body a")
        assert spool.read_meta("b") == {"n": 2} and spool.read_meta("a") == {"n": 1}
        with pytest.raises(UnknownMessage):
            spool.read_meta("c")
    finally:
        await spool.close()


async def test_recovered_messages_are_read_as_iterated(tmp_path: Path) -> None:
    await _filled(tmp_path)
    spool = Spool(tmp_path, fsync=False)
    recovered = await spool.open()
    try:
        await spool.update("a", {"n": 3})  # changed after open(): the iteration sees it
        await spool.remove("b")  # gone after open(): skipped
        await spool.store("new", {"n": 1}, b"new")  # stored after open(): not recovered
        assert [(m.id, m.meta) for m in recovered] == [
            ("a", {"n": 3}),
            ("big", {"pad": "x" * (2 * META_READ_AHEAD)}),
        ]
    finally:
        await spool.close()
    assert list(recovered) == []  # nothing is read from a closed spool
