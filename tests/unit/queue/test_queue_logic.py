import asyncio
import random

import pytest

from mta.config import QueueConfig, RouteConfig
from mta.queue.meta import MetaError, check_meta, new_meta, queue_name, snapshot
from mta.queue.retry import is_expired, retry_delay
from mta.queue.routes import match_route
from mta.queue.scheduler import Scheduler
from mta.units import Duration


def test_queue_names_follow_kumomta() -> None:
    assert queue_name("example.com") == "example.com"
    assert queue_name("example.com", tenant="t1") == "t1@example.com"
    assert queue_name("example.com", tenant="t1", campaign="c1") == "c1:t1@example.com"
    assert queue_name("example.com", campaign="c1") == "c1:example.com"


def test_meta_splits_recipients_by_domain() -> None:
    meta = new_meta(
        sender="s@x.org",
        recipients=["a@Example.com", "b@example.com", "c@other.net"],
        created=100.0,
        size=10,
        reception_protocol="ESMTP",
        peer="127.0.0.1",
        tenant="t",
        campaign=None,
        default_domain="node.local",
    )
    assert set(meta["legs"]) == {"example.com", "other.net"}
    assert meta["legs"]["example.com"]["rcpts"] == ["a@Example.com", "b@example.com"]
    assert meta["legs"]["other.net"]["queue"] == "t@other.net"
    assert meta["legs"]["other.net"]["due"] == 100.0
    assert check_meta(meta) is meta
    copy = snapshot(meta)
    copy["legs"]["other.net"]["rcpts"].append("d@other.net")
    assert meta["legs"]["other.net"]["rcpts"] == ["c@other.net"]


def test_meta_version_checked() -> None:
    with pytest.raises(MetaError, match="version"):
        check_meta({"v": 99, "sender": "", "legs": {}})


def test_retry_doubles_up_to_maximum() -> None:
    config = QueueConfig(retry_interval=Duration(60), max_retry_interval=Duration(300), jitter=0.0)
    assert [retry_delay(config, n) for n in (1, 2, 3, 4, 5)] == [60, 120, 240, 300, 300]


def test_retry_jitter_stays_in_bounds() -> None:
    config = QueueConfig(retry_interval=Duration(100), jitter=0.1)
    rng = random.Random(1)
    delays = [retry_delay(config, 1, rng) for _ in range(200)]
    assert all(90 <= d <= 110 for d in delays)
    assert len(set(delays)) > 100


def test_expiry() -> None:
    config = QueueConfig(max_age=Duration(3600))
    assert not is_expired(config, created=0, when=3600)
    assert is_expired(config, created=0, when=3601)


def test_routes_first_match_wins() -> None:
    routes = [
        RouteConfig(domains=("example.com",), relay="a:25"),
        RouteConfig(domains=("*.example.org",), relay="b:25"),
        RouteConfig(domains=("*",), relay="c:25"),
    ]
    assert match_route(routes, "EXAMPLE.com").relay == ("a:25",)  # type: ignore[union-attr]
    assert match_route(routes, "lists.example.org").relay == ("b:25",)  # type: ignore[union-attr]
    assert match_route(routes, "example.org").relay == ("c:25",)  # type: ignore[union-attr]
    assert match_route(routes[:2], "elsewhere.net") is None


async def test_scheduler_fires_in_due_order() -> None:
    now = [1000.0]
    fired: list[str] = []
    scheduler: Scheduler[str] = Scheduler(fired.append, clock=lambda: now[0])
    scheduler.schedule("late", 1010.0, "q1")
    scheduler.schedule("early", 1005.0, "q2")
    scheduler.schedule("later", 1020.0, "q1")
    assert scheduler.queue_sizes() == {"q1": 2, "q2": 1}
    assert scheduler.fire_due() == 0
    now[0] = 1012.0
    assert scheduler.fire_due() == 2
    assert fired == ["early", "late"]
    assert scheduler.queue_sizes() == {"q1": 1}
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.schedule("later", 1030.0, "q1")


async def test_scheduler_task_wakes_for_earlier_entry() -> None:
    fired = asyncio.Event()
    scheduler: Scheduler[str] = Scheduler(lambda key: fired.set())
    task = asyncio.create_task(scheduler.run())
    try:
        await asyncio.sleep(0.01)  # the task sleeps with nothing scheduled
        import time

        scheduler.schedule("soon", time.time() + 0.05, "q")
        async with asyncio.timeout(2):
            await fired.wait()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
