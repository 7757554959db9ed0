"""The queue moves what exists out of the cyclic GC's sight as it grows (see gcfreeze)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from mta.queue.gcfreeze import GrowthFreezer


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_freezes_at_the_mark_then_after_each_quarter_of_growth(unfrozen: None) -> None:
    freezer = GrowthFreezer(start=100, growth=1.25)
    assert not freezer.grown_to(99)
    before = gc.get_freeze_count()
    kept = [[] for _ in range(10)]  # objects the collector tracks
    assert freezer.grown_to(100)
    assert gc.get_freeze_count() > before
    assert not freezer.grown_to(124)
    assert freezer.grown_to(125)
    assert not freezer.grown_to(155)
    assert freezer.grown_to(156)
    del kept
