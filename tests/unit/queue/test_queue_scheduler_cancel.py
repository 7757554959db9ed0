"""Scheduler.cancel: lazy deletion in the heap, rescheduling after a cancel, queue sizes."""

from __future__ import annotations

from mta.queue import scheduler as scheduler_module
from mta.queue.scheduler import Scheduler


def _scheduler(now: list[float]) -> tuple[Scheduler[str], list[str]]:
    fired: list[str] = []
    return Scheduler(fired.append, clock=lambda: now[0]), fired


async def test_cancelled_entries_never_fire() -> None:
    now = [0.0]
    scheduler, fired = _scheduler(now)
    scheduler.schedule("a", 10.0, "q1")
    scheduler.schedule("b", 20.0, "q1")
    scheduler.schedule("c", 30.0, "q2")
    assert scheduler.cancel("b") is True
    assert scheduler.cancel("b") is False
    assert "b" not in scheduler and len(scheduler) == 2
    assert scheduler.queue_sizes() == {"q1": 1, "q2": 1}
    now[0] = 100.0
    assert scheduler.fire_due() == 2  # the stale heap entry of "b" is skipped, not fired
    assert fired == ["a", "c"]
    assert scheduler.queue_sizes() == {}


async def test_rescheduled_after_cancel_fires_once_at_its_new_time() -> None:
    now = [0.0]
    scheduler, fired = _scheduler(now)
    scheduler.schedule("a", 10.0, "q")
    scheduler.cancel("a")
    scheduler.schedule("a", 50.0, "q")
    assert scheduler.get("a") is not None and scheduler.get("a").due == 50.0  # type: ignore[union-attr]
    now[0] = 20.0
    assert scheduler.fire_due() == 0 and fired == []
    now[0] = 50.0
    assert scheduler.fire_due() == 1 and fired == ["a"]
    assert scheduler.get("a") is None


async def test_many_cancellations_compact_the_heap(monkeypatch) -> None:
    monkeypatch.setattr(scheduler_module, "COMPACT_MIN_STALE", 4)
    now = [0.0]
    scheduler, fired = _scheduler(now)
    for i in range(10):
        scheduler.schedule(f"k{i}", float(i), "q")
    for i in range(8):
        scheduler.cancel(f"k{i}")
    assert len(scheduler._heap) < 10  # rebuilt once stale entries outnumbered live ones
    now[0] = 100.0
    assert scheduler.fire_due() == 2 and fired == ["k8", "k9"]


async def test_last_change_per_queue() -> None:
    now = [5.0]
    scheduler, _ = _scheduler(now)
    assert scheduler.last_change("q") is None
    scheduler.schedule("a", 100.0, "q")
    now[0] = 7.0
    scheduler.schedule("b", 100.0, "q")
    assert scheduler.last_change("q") == 7.0
    scheduler.cancel("a")
    scheduler.cancel("b")
    assert scheduler.last_change("q") is None  # empty queues are forgotten
