"""The idle-session pool's bookkeeping, with stand-in sessions (no sockets)."""

from __future__ import annotations

import asyncio

from mta.delivery.pool import SessionPool


class Session:
    def __init__(self, name: str) -> None:
        self.name = name
        self.reusable = True
        self.quits = 0

    async def quit(self) -> None:
        self.quits += 1
        self.reusable = False


async def test_each_take_hands_out_a_distinct_session() -> None:
    pool: SessionPool[Session] = SessionPool(idle_timeout=60)
    first, second = Session("a"), Session("b")
    pool.put("site", first)
    pool.put("site", second)
    assert pool.idle("site") == 2
    taken = {pool.take("site"), pool.take("site")}
    assert taken == {first, second}
    assert pool.take("site") is None
    assert pool.idle("site") == 0
    await pool.close()


async def test_dead_sessions_are_skipped_and_closed() -> None:
    pool: SessionPool[Session] = SessionPool(idle_timeout=60)
    live, dead = Session("live"), Session("dead")
    pool.put("site", live)
    pool.put("site", dead)
    dead.reusable = False  # the server closed it while idle
    assert pool.take("site") is live
    await pool.close()
    assert dead.quits == 1


async def test_idle_sessions_are_closed_after_the_idle_timeout() -> None:
    pool: SessionPool[Session] = SessionPool(idle_timeout=0.05)
    session = Session("a")
    pool.put("site", session)
    await asyncio.sleep(0.15)
    assert session.quits == 1
    assert pool.take("site") is None
    await pool.close()


async def test_close_quits_idle_sessions_and_later_puts() -> None:
    pool: SessionPool[Session] = SessionPool(idle_timeout=60)
    idle, late = Session("idle"), Session("late")
    pool.put("site", idle)
    await pool.close()
    assert idle.quits == 1
    pool.put("site", late)  # a delivery that finished after close()
    await pool.close()
    assert late.quits == 1
    assert pool.idle("site") == 0


async def test_each_session_idles_out_on_its_own_clock() -> None:
    pool: SessionPool[Session] = SessionPool(idle_timeout=0.2)
    old, reused, new = Session("old"), Session("reused"), Session("new")
    pool.put("site", old)
    pool.put("site", reused)
    await asyncio.sleep(0.1)
    assert pool.take("site") is reused  # the most recent first
    pool.put("site", new)
    pool.put("site", reused)  # back in the pool: its idle time starts again
    await asyncio.sleep(0.15)  # old's 0.2 s are up, not the others'
    assert (old.quits, new.quits, reused.quits) == (1, 0, 0)
    assert pool.idle("site") == 2
    await asyncio.sleep(0.15)
    assert (new.quits, reused.quits) == (1, 1)
    assert pool.take("site") is None
    await pool.close()


async def test_a_session_put_back_after_the_site_emptied_still_idles_out() -> None:
    # Taking the last session leaves the site's timer in place (set for the session taken);
    # when it fires early for the one put back later, it waits again for that one's expiry.
    pool: SessionPool[Session] = SessionPool(idle_timeout=0.2)
    session = Session("a")
    pool.put("site", session)
    await asyncio.sleep(0.1)
    assert pool.take("site") is session
    pool.put("site", session)  # expires 0.2 s from now, the timer says 0.1 s
    await asyncio.sleep(0.15)
    assert session.quits == 0 and pool.idle("site") == 1
    await asyncio.sleep(0.15)
    assert session.quits == 1 and pool.idle("site") == 0
    await pool.close()
