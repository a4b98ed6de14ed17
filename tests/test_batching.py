"""Batches bounded in items and padded cells, and inputs built one batch ahead of the graph."""

from __future__ import annotations

import threading

import pytest

from tagger.batching import length_batches, prefetched


def test_length_batches_cover_every_item_once_within_both_bounds() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2, 8, 1, 4]
    batches = length_batches(lengths, max_items=3, max_cells=16)
    assert sorted(k for b in batches for k in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[k] for k in batch) <= 16


@pytest.mark.parametrize("count", [0, 1, 2, 7])
def test_prefetched_gives_fn_of_each_item_in_order(count: int) -> None:
    assert list(prefetched(lambda k: k * k, list(range(count)))) == [k * k for k in range(count)]


def test_prefetched_builds_the_next_item_while_the_caller_uses_this_one() -> None:
    started = [threading.Event() for _ in range(3)]

    def build(k: int) -> int:
        started[k].set()
        return k

    for k in prefetched(build, [0, 1, 2]):
        if k + 1 < len(started):  # the caller still holds item k: item k+1 is under way (or done)
            assert started[k + 1].wait(timeout=10)


def test_prefetched_raises_the_workers_error_in_the_caller() -> None:
    def build(k: int) -> int:
        if k == 1:
            raise ValueError("bad batch 1")
        return k

    items = prefetched(build, [0, 1, 2])
    assert next(items) == 0
    with pytest.raises(ValueError, match="bad batch 1"):
        next(items)


def test_one_item_is_built_in_the_callers_thread() -> None:
    """One sentence on stdin starts no thread (and imports no thread pool)."""
    assert list(prefetched(lambda _: threading.get_ident(), [0])) == [threading.get_ident()]
