"""Segment lifecycle: tombstone pinning, deletion, compaction, and a model-checked workload."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from spool import Spool, ops
from spool.index import NO_SEGMENT, Index
from spool.ops import Op


def segment_names(path: Path) -> list[str]:
    return sorted(p.name for p in (path / "segments").glob("*.seg"))


async def wait_until(predicate: object, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_index_keeps_a_remove_while_the_older_data_segment_exists() -> None:
    index = Index()
    for seg in (1, 2, 3):
        index.add_segment(seg, 1000)
    index.set_active(3)
    index.apply_data("keep", 1, 16, 100, 50)
    index.apply_data("gone", 1, 116, 100, 50)
    index.apply_data("other", 2, 16, 100, 50)
    index.apply_remove("gone", 2)  # tombstone in 2 shadows the DATA in 1
    index.apply_remove("other", 2)  # same-segment DATA: no shadow needed
    assert index.take_deletable() == []  # 2 holds no live data but must stay
    assert index.removal_shadows(2) == {"gone": 1}
    index.apply_remove("keep", 3)
    assert index.take_deletable() == [1, 2]  # 1 first, then 2 which only guarded it
    assert list(index.segments) == [3]


def test_index_superseded_meta_stops_pinning() -> None:
    index = Index()
    for seg in (1, 2, 3, 4):
        index.add_segment(seg, 1000)
    index.set_active(4)
    index.apply_data("m", 1, 16, 100, 50)
    index.apply_meta("m", 2, 16)
    assert index.take_deletable() == []  # 2 holds the latest meta
    index.apply_meta("m", 3, 16)
    assert index.take_deletable() == [2]
    # A compaction copy in 4 makes 1 and 3 unneeded; a later REMOVE must still
    # shadow the dead copy in 1 for as long as 1 exists.
    index.apply_data("m", 4, 16, 100, 50)
    index.add_segment(5, 16)
    index.set_active(5)
    index.apply_remove("m", 5)
    assert index.removal_shadows(5) == {"m": 1}
    assert index.take_deletable() == [1, 3, 4]
    assert index.removal_shadows(5) == {}


async def test_remove_in_newer_segment_prevents_resurrection(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=2048)
    await spool.open()
    # Segment 1: a long-lived big message and two small ones removed later.
    await asyncio.gather(
        spool.store("keep", {}, b"k" * 3000),
        spool.store("victim", {}, b"v"),
        spool.store("reused", {"v": 0}, b"old"),
    )
    for i in range(6):  # more segments of short-lived mail
        await spool.store(f"f{i}", {}, b"f" * 1500)
    await spool.remove("victim")
    await spool.remove("reused")
    for i in range(6):
        await spool.remove(f"f{i}")
    await spool.store("filler", {}, b"x" * 2048)  # roll: the tombstones' segment closes
    await spool.remove("filler")
    await spool.store("reused", {"v": 1}, b"new")  # same id again, after its REMOVE
    await spool.store("tail", {}, b"t" * 3000)
    assert segment_names(tmp_path)[0] == "000000000001.seg"  # "keep" pins segment 1
    await spool.close()

    for _ in range(2):
        spool = Spool(tmp_path, segment_bytes=2048)
        recovered = {m.id: m.meta for m in await spool.open()}
        assert recovered == {"keep": {}, "reused": {"v": 1}, "tail": {}}
        assert spool.read("keep") == b"k" * 3000
        assert spool.read("reused") == b"new"
        await spool.close()


async def test_segments_are_deleted_once_their_messages_are_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=4096)
    await spool.open()
    for i in range(40):
        await spool.store(f"m{i}", {"i": i}, bytes([i]) * 1000)
    assert len(segment_names(tmp_path)) >= 8
    for i in range(40):
        await spool.remove(f"m{i}")
    await spool.store("last", {}, b"x")  # one more commit after the active segment rolled
    await wait_until(lambda: len(segment_names(tmp_path)) <= 2)
    stats = spool.stats()
    assert stats.messages == 1 and stats.segments == len(segment_names(tmp_path))
    await spool.close()


async def test_compaction_moves_long_lived_messages_out_of_old_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=8192)
    await spool.open()
    for i in range(60):
        await spool.store(f"m{i}", {"i": i, "v": 0}, bytes([i]) * 900)
    old_segments = set(segment_names(tmp_path)[:-1])
    long_lived = {"m0", "m9", "m31"}
    await spool.update("m9", {"i": 9, "v": 1})
    for i in range(60):
        if f"m{i}" not in long_lived:
            await spool.remove(f"m{i}")
    await spool.update("m31", {"i": 31, "v": 1})
    await wait_until(lambda: not old_segments & set(segment_names(tmp_path)))
    assert spool.stats().compacted >= 3
    for msg_id in long_lived:
        assert spool.read(msg_id) == bytes([int(msg_id[1:])]) * 900
    await spool.close()

    spool = Spool(tmp_path, segment_bytes=8192)
    recovered = {m.id: m.meta for m in await spool.open()}
    assert recovered == {"m0": {"i": 0, "v": 0}, "m9": {"i": 9, "v": 1}, "m31": {"i": 31, "v": 1}}
    assert spool.read("m31") == bytes([31]) * 900
    await spool.close()


async def test_random_workload_matches_a_model_across_restarts(tmp_path: Path) -> None:
    rng = random.Random(1234)
    model: dict[str, tuple[dict[str, int], bytes]] = {}
    next_id = 0
    for _restart in range(6):
        spool = Spool(tmp_path, segment_bytes=3000, fsync=False)
        recovered = {m.id: m for m in await spool.open()}
        assert {k: m.meta for k, m in recovered.items()} == {k: v[0] for k, v in model.items()}
        for msg_id, (_, data) in model.items():
            assert recovered[msg_id].size == len(data) and spool.read(msg_id) == data
        for _step in range(30):
            coros = []
            touched: set[str] = set()
            for _ in range(rng.randint(1, 8)):
                choice = rng.random()
                live = [k for k in model if k not in touched]
                if choice < 0.45 or not live:
                    msg_id = f"id{next_id % 97}" if next_id % 5 == 0 else f"n{next_id}"
                    next_id += 1
                    if msg_id in model or msg_id in touched:
                        continue
                    data = rng.randbytes(rng.randint(0, 700))
                    model[msg_id] = ({"n": next_id}, data)
                    coros.append(spool.store(msg_id, {"n": next_id}, data))
                elif choice < 0.7:
                    msg_id = rng.choice(live)
                    meta = {"n": rng.randint(0, 10**6)}
                    model[msg_id] = (meta, model[msg_id][1])
                    coros.append(spool.update(msg_id, meta))
                else:
                    msg_id = rng.choice(live)
                    del model[msg_id]
                    coros.append(spool.remove(msg_id))
                touched.add(msg_id)
            await asyncio.gather(*coros)
            if rng.random() < 0.2:
                await asyncio.sleep(0.01)  # let compaction run
        assert len(spool) == len(model)
        await spool.close()
    assert next_id > 100


async def test_compaction_copy_behind_an_update_in_the_same_batch_is_dropped() -> None:
    loop = asyncio.get_running_loop()
    index = Index()
    index.add_segment(1, 1000)
    index.add_segment(2, 16)
    index.set_active(2)
    index.apply_data("m", 1, 16, 100, 50)
    update = Op(ops.UPDATE, "m", loop.create_future(), meta=b'{"v":2}')
    stale_copy = Op(
        ops.COPY_DATA,
        "m",
        loop.create_future(),
        meta=b'{"v":1}',
        data=b"x" * 50,
        expect=(1, 16, NO_SEGMENT, 0),
    )
    assert ops.select([update, stale_copy], index) == [update]
    assert stale_copy.future.result() is False
    # Alone, the same copy is still valid.
    fresh_copy = Op(ops.COPY_DATA, "m", loop.create_future(), expect=(1, 16, NO_SEGMENT, 0))
    assert ops.select([fresh_copy], index) == [fresh_copy]
    update.future.cancel()
