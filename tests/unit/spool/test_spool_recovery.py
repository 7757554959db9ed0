"""Recovery: crashes, torn tails, corruption, write errors."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from spool import Spool, records

REPO_ROOT = Path(__file__).resolve().parents[3]


def segment_files(path: Path) -> list[Path]:
    return sorted((path / "segments").glob("*.seg"))


def quarantine_files(path: Path) -> list[Path]:
    return sorted((path / "quarantine").iterdir())


def body(msg_id: str) -> bytes:
    return f"Subject: {msg_id}\r\n\r\n".encode() + msg_id.encode() * 40


async def run_child(script: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        env=env,
        cwd=REPO_ROOT,
    )


async def fill(path: Path, ids: list[str], **kwargs: object) -> None:
    spool = Spool(path, **kwargs)  # type: ignore[arg-type]
    await spool.open()
    for msg_id in ids:
        await spool.store(msg_id, {"id": msg_id}, body(msg_id))
    await spool.close()


CRASH_CHILD = """
    import asyncio, sys
    from spool import Spool

    def body(msg_id):
        return f"Subject: {msg_id}\\r\\n\\r\\n".encode() + msg_id.encode() * 40

    async def worker(spool, w):
        for i in range(10**9):
            msg_id = f"w{w}-{i}"
            await spool.store(msg_id, {"v": 0}, body(msg_id))
            print("stored", msg_id, flush=True)
            if i % 3 == 0:
                await spool.update(msg_id, {"v": 1})
                print("updated", msg_id, flush=True)
            if i % 4 != 0:  # most mail leaves quickly: segments get compacted and deleted
                await spool.remove(msg_id)
                print("removed", msg_id, flush=True)

    async def main():
        spool = Spool(sys.argv[1], segment_bytes=32 * 1024)
        await spool.open()
        await asyncio.gather(*(worker(spool, w) for w in range(16)))

    asyncio.run(main())
"""


def last_per_worker(ids: list[str]) -> dict[str, str]:
    """The highest-numbered id of each worker ("w3-17" -> worker "w3")."""
    last: dict[str, str] = {}
    for msg_id in ids:
        worker, number = msg_id.split("-")
        if worker not in last or int(number) > int(last[worker].split("-")[1]):
            last[worker] = msg_id
    return last


def remove_was_next(msg_id: str, updated: set[str]) -> bool:
    """Whether the child's next step for this id was its remove (see CRASH_CHILD)."""
    number = int(msg_id.split("-")[1])
    return number % 4 != 0 and (number % 3 != 0 or msg_id in updated)


async def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    child = await run_child(CRASH_CHILD, str(tmp_path))
    assert child.stdout is not None
    events: list[tuple[str, str]] = []
    while len(events) < 3000:
        line = await asyncio.wait_for(child.stdout.readline(), 10)
        assert line, "child exited early"
        verb, msg_id = line.decode().split()
        events.append((verb, msg_id))
    child.send_signal(signal.SIGKILL)
    rest = await child.stdout.read()
    await child.wait()
    # Whatever the child printed before dying was acknowledged; a torn last line was not.
    for text in rest.decode().splitlines(keepends=True):
        if text.endswith("\n"):
            verb, msg_id = text.split()
            events.append((verb, msg_id))

    spool = Spool(tmp_path)
    recovered = {m.id: m for m in await spool.open()}
    stored = [m for verb, m in events if verb == "stored"]
    updated = {m for verb, m in events if verb == "updated"}
    removed = {m for verb, m in events if verb == "removed"}
    assert stored and updated and removed
    # Each worker has at most one operation in flight when the kill lands: a remove of its last
    # message may have reached the disk without its acknowledgement reaching us.
    in_flight = {
        msg_id
        for msg_id in last_per_worker(stored).values()
        if remove_was_next(msg_id, updated) and msg_id not in removed
    }
    for msg_id in stored:
        if msg_id in removed:
            assert msg_id not in recovered
            continue
        if msg_id in in_flight and msg_id not in recovered:
            continue
        assert msg_id in recovered, msg_id
        assert spool.read(msg_id) == body(msg_id)
        if msg_id in updated:
            assert recovered[msg_id].meta == {"v": 1}
    await spool.close()


async def test_torn_tail_is_quarantined_and_the_rest_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ids = [f"m{i}" for i in range(5)]
    await fill(tmp_path, ids)
    [segment] = segment_files(tmp_path)
    size = segment.stat().st_size
    os.truncate(segment, size - 10)  # the last record loses its end
    caplog.set_level(logging.WARNING, logger="spool")

    spool = Spool(tmp_path)
    recovered = await spool.open()
    assert [m.id for m in recovered] == ids[:-1]
    [torn] = quarantine_files(tmp_path)
    last_record = records.record_size(2, len(b'{"id":"m4"}'), len(body("m4")))
    good_end = size - last_record
    assert torn.name == f"{segment.stem}.{good_end}.torn"
    assert torn.stat().st_size == last_record - 10
    assert segment.stat().st_size == good_end
    assert spool.stats().quarantined == 1
    assert any("torn" in r.message and r.name == "spool" for r in caplog.records)
    await spool.store("m4", {}, b"again")  # the spool works on
    await spool.close()


async def test_appended_garbage_is_quarantined(tmp_path: Path) -> None:
    await fill(tmp_path, ["a", "b"])
    [segment] = segment_files(tmp_path)
    segment.write_bytes(segment.read_bytes() + b"\x00" * 100 + os.urandom(300))
    spool = Spool(tmp_path)
    assert sorted(m.id for m in await spool.open()) == ["a", "b"]
    [torn] = quarantine_files(tmp_path)
    assert torn.stat().st_size == 400
    await spool.close()
    # A clean second start: nothing more to quarantine.
    spool = Spool(tmp_path)
    assert len(await spool.open()) == 2
    assert spool.stats().quarantined == 0
    await spool.close()


async def test_bad_crc_in_the_middle_quarantines_the_rest_of_that_segment(
    tmp_path: Path,
) -> None:
    first = [f"m{i}" for i in range(10)]
    await fill(tmp_path, first)
    await fill(tmp_path, ["later1", "later2"])  # a restart appends to a new segment
    old = segment_files(tmp_path)[0]
    content = old.read_bytes()
    victim = content.index(b'{"id":"m5"}')
    corrupted = bytearray(content)
    corrupted[victim + 20] ^= 0xFF  # inside the message bytes of m5
    old.write_bytes(bytes(corrupted))

    spool = Spool(tmp_path)
    recovered = sorted(m.id for m in await spool.open())
    assert recovered == sorted([*first[:5], "later1", "later2"])
    record_start = victim - records.RECORD_HEADER_SIZE - len("m5")
    [torn] = quarantine_files(tmp_path)
    assert torn.name == f"{old.stem}.{record_start}.torn"
    assert torn.read_bytes() == bytes(corrupted[record_start:])
    assert old.stat().st_size == record_start
    assert spool.read("m4") == body("m4") and spool.read("later2") == body("later2")
    await spool.close()


async def test_segment_with_bad_header_is_moved_to_quarantine(tmp_path: Path) -> None:
    await fill(tmp_path, ["a"])
    await fill(tmp_path, ["b"])
    first = segment_files(tmp_path)[0]
    first.write_bytes(b"NOTSPOOL" + first.read_bytes()[8:])
    spool = Spool(tmp_path)
    assert [m.id for m in await spool.open()] == ["b"]
    assert [p.name for p in quarantine_files(tmp_path)] == [first.name]
    assert not first.exists()
    await spool.close()


WRITE_ERROR_CHILD = """
    import asyncio, resource, signal, sys, time
    from spool import Spool, SpoolUnavailable

    async def main():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of dying
        spool = Spool(sys.argv[1], segment_bytes=1 << 30)
        await spool.open()
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
        for batch in range(100):
            ids = [f"b{batch}-{i}" for i in range(10)]
            results = await asyncio.gather(
                *(spool.store(m, {"m": m}, m.encode() * 100) for m in ids),
                return_exceptions=True,
            )
            for msg_id, result in zip(ids, results):
                if result is None:
                    print("stored", msg_id, flush=True)
                else:
                    assert isinstance(result, SpoolUnavailable), result
                    print("failed", msg_id, flush=True)
            if any(r is not None for r in results):
                break
        assert spool.unhealthy_reason() is not None
        print("unhealthy", spool.unhealthy_reason().replace(" ", "_"), flush=True)
        try:
            await spool.store("refused", {}, b"x")
        except SpoolUnavailable:
            print("refused refused", flush=True)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        deadline = time.monotonic() + 5
        while spool.unhealthy_reason() is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await spool.store("after", {}, b"recovered")
        print("stored after", flush=True)
        await spool.close()

    asyncio.run(main())
"""


async def test_write_error_fails_the_batch_without_leaving_a_torn_record(
    tmp_path: Path,
) -> None:
    child = await run_child(WRITE_ERROR_CHILD, str(tmp_path))
    out, _ = await asyncio.wait_for(child.communicate(), 15)
    assert child.returncode == 0
    events = [line.split(maxsplit=1) for line in out.decode().splitlines()]
    verbs = {verb for verb, _ in events}
    assert {"stored", "failed", "unhealthy", "refused"} <= verbs
    assert any("write_failed" in arg for verb, arg in events if verb == "unhealthy")
    stored = {arg for verb, arg in events if verb == "stored"}
    failed = {arg for verb, arg in events if verb == "failed"}

    spool = Spool(tmp_path)
    recovered = {m.id for m in await spool.open()}
    assert recovered == stored
    assert not recovered & failed
    assert spool.stats().quarantined == 0 and quarantine_files(tmp_path) == []
    assert spool.read("after") == b"recovered"
    await spool.close()


RANDOM_CHILD = """
    import asyncio, random, sys
    from spool import Spool

    async def main():
        rng = random.Random(int(sys.argv[2]))
        spool = Spool(sys.argv[1], segment_bytes=4096, fsync=False)
        live = {m.id for m in await spool.open()}
        busy = set()

        async def op(msg_id):
            value = rng.randrange(10**6)
            if msg_id not in live:
                kind, call = "store", spool.store(msg_id, {"v": value}, msg_id.encode() * 30)
            elif rng.random() < 0.5:
                kind, call = "update", spool.update(msg_id, {"v": value})
            else:
                kind, call = "remove", spool.remove(msg_id)
            print("begin", kind, msg_id, value, flush=True)
            await call
            (live.discard if kind == "remove" else live.add)(msg_id)
            print("ack", kind, msg_id, value, flush=True)

        async def worker():
            while True:
                msg_id = f"i{rng.randrange(150)}"
                if msg_id in busy:
                    await asyncio.sleep(0)
                    continue
                busy.add(msg_id)
                await op(msg_id)
                busy.discard(msg_id)

        await asyncio.gather(*(worker() for _ in range(8)))

    asyncio.run(main())
"""


async def test_random_workload_survives_repeated_sigkills(tmp_path: Path) -> None:
    model: dict[str, int] = {}
    for round_ in range(4):
        child = await run_child(RANDOM_CHILD, str(tmp_path), str(round_))
        assert child.stdout is not None
        lines = [await asyncio.wait_for(child.stdout.readline(), 10) for _ in range(1500)]
        child.send_signal(signal.SIGKILL)
        lines.append(await child.stdout.read())
        await child.wait()
        in_flight: set[str] = set()
        for line in b"".join(lines).decode().splitlines(keepends=True):
            if not line.endswith("\n"):
                continue
            phase, kind, msg_id, value = line.split()
            if phase == "begin":
                in_flight.add(msg_id)
                continue
            in_flight.discard(msg_id)
            if kind == "remove":
                model.pop(msg_id, None)
            else:
                model[msg_id] = int(value)

        spool = Spool(tmp_path, segment_bytes=4096, fsync=False)
        recovered = {m.id: m.meta["v"] for m in await spool.open()}
        for msg_id in (set(model) | set(recovered)) - in_flight:
            assert recovered.get(msg_id) == model.get(msg_id), (round_, msg_id)
        for msg_id in recovered:
            assert spool.read(msg_id) == msg_id.encode() * 30
        await spool.close()
        model = recovered  # in-flight outcomes are settled by what recovery found
