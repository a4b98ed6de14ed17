"""The IOB2 scheme: spans are the truth; tags are derived from them and read back into them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

OUTSIDE = "O"


@dataclass(frozen=True, order=True, slots=True)
class Span:
    """An entity over words `start..end-1` (half-open word indices) with a type label."""

    start: int
    end: int
    label: str


def split_tag(tag: str) -> tuple[str, str]:
    """Split an IOB2 tag into (prefix, type): 'B-PERS' -> ('B', 'PERS'), 'O' -> ('O', '')."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in ("B", "I") or not label:
        raise ValueError(f"not an IOB2 tag: {tag!r} (expected 'O', 'B-TYPE' or 'I-TYPE')")
    return prefix, label


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Read entities from IOB2 tags, conlleval-style: an I-X that does not continue X starts one."""
    spans: list[Span] = []
    start, label = -1, ""
    for i, tag in enumerate(tags):
        prefix, kind = split_tag(tag)
        continues = prefix == "I" and kind == label and start >= 0
        if start >= 0 and not continues:
            spans.append(Span(start, i, label))
            start, label = -1, ""
        if prefix != OUTSIDE and not continues:
            start, label = i, kind
    if start >= 0:
        spans.append(Span(start, len(tags), label))
    return spans


def spans_to_tags(spans: Sequence[Span], length: int) -> list[str]:
    """Write non-overlapping spans as IOB2 tags over `length` words."""
    tags = [OUTSIDE] * length
    for span in spans:
        if not 0 <= span.start < span.end <= length:
            raise ValueError(f"span {span} does not fit in {length} words")
        if any(t != OUTSIDE for t in tags[span.start : span.end]):
            raise ValueError(f"span {span} overlaps another span")
        tags[span.start] = f"B-{span.label}"
        tags[span.start + 1 : span.end] = [f"I-{span.label}"] * (span.end - span.start - 1)
    return tags


def entity_types(labels: Sequence[str]) -> list[str]:
    """Entity types of a label list, in first-seen order: ['O','B-PERS','I-PERS'] -> ['PERS']."""
    types: list[str] = []
    for tag in labels:
        _, kind = split_tag(tag)
        if kind and kind not in types:
            types.append(kind)
    return types


def allowed_transitions(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which label may follow which, and which may start a sentence, under IOB2.

    Returns:
        (allowed, allowed_start): bool arrays of shape (num_labels, num_labels) indexed
        [previous, next], and (num_labels,). I-X may only follow B-X or I-X.
    """
    parsed = [split_tag(t) for t in labels]
    num_labels = len(labels)
    allowed = np.ones((num_labels, num_labels), dtype=bool)
    allowed_start = np.ones(num_labels, dtype=bool)
    for j, (prefix, kind) in enumerate(parsed):
        if prefix == "I":
            allowed_start[j] = False
            for i, (_, prev_kind) in enumerate(parsed):
                allowed[i, j] = prev_kind == kind
    return allowed, allowed_start


def projection_matrix(source: Sequence[str], target: Sequence[str], types: dict[str, str]) -> np.ndarray:
    """(len(source), len(target)) 0/1 matrix reading labels of one scheme as labels of another.

    `types` maps a source entity type to a target type (B-X to B-types[X], I-X to I-types[X]);
    a type it leaves out is not an entity in the target scheme (its B- and I- read as O).
    Row sums are 1, so probabilities over `source` become probabilities over `target`.
    """
    where = {label: k for k, label in enumerate(target)}
    matrix = np.zeros((len(source), len(target)), dtype=np.float32)
    for i, label in enumerate(source):
        prefix, kind = split_tag(label)
        matrix[i, where[f"{prefix}-{types[kind]}" if kind in types else OUTSIDE]] = 1.0
    return matrix
