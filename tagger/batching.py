"""Grouping items of similar length into batches bounded in count and padded size."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
R = TypeVar("R")


def length_batches(lengths: Sequence[int], max_items: int, max_cells: int) -> list[list[int]]:
    """Indices sorted by length and cut into batches of at most `max_items` items and
    `max_cells` padded cells (items x the batch's longest)."""
    batches: list[list[int]] = []
    batch: list[int] = []
    for k in sorted(range(len(lengths)), key=lambda k: lengths[k]):
        if batch and (len(batch) >= max_items or lengths[k] * (len(batch) + 1) > max_cells):
            batches.append(batch)
            batch = []
        batch.append(k)
    if batch:
        batches.append(batch)
    return batches


def prefetched(fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
    """`fn` of each item in order, the next one computed in a worker thread while the caller uses
    this one: ONNX Runtime releases the GIL while it runs, so building batch k+1's inputs overlaps
    running batch k (the uk BiLSTM's Python side is ~40% of its time)."""
    if len(items) < 2:  # nothing to overlap; one sentence on stdin starts no thread
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor  # here: its import costs every cold start

    with ThreadPoolExecutor(1) as pool:
        pending: Future[R] | None = None
        for item in items:
            upcoming = pool.submit(fn, item)
            if pending is not None:
                yield pending.result()
            pending = upcoming
        if pending is not None:
            yield pending.result()
