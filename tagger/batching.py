"""Grouping items of similar length into batches bounded in count and padded size."""

from __future__ import annotations

from collections.abc import Sequence


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
