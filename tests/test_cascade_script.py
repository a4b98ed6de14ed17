"""scripts/cascade.py's cost figures rest on its focused windows: each covers the sentence, adds at most
the margin of context on each side, fits the encoder, and scores only the sentence's words."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from cascade import focused_windows, sentence_marks  # noqa: E402

from tagger.subwords import plan_windows  # noqa: E402


@pytest.mark.parametrize("margin", [0, 3, 8, 100])
def test_a_focused_window_is_the_sentence_and_at_most_margin_pieces_of_context(margin: int) -> None:
    counts = [1, 2, 3, 1, 1, 2, 4, 1, 2, 1]
    first, last = 4, 7  # 7 pieces
    [(start, end, keep_start, keep_end)] = focused_windows(counts, first, last, capacity=30, margin=margin)
    assert (keep_start, keep_end) == (first, last) and start <= first and end >= last
    before, after = sum(counts[start:first]), sum(counts[last:end])
    assert before <= margin and after <= margin
    # greedy: the next word out would not have fitted (or there is none)
    assert start == 0 or before + counts[start - 1] > margin
    assert end == len(counts) or after + counts[end] > margin


def test_a_sentence_too_long_for_one_window_reads_the_texts_own_windows_cut_to_it() -> None:
    counts = [3] * 40  # 120 pieces, capacity 50
    windows = focused_windows(counts, 10, 30, capacity=50, margin=8)
    kept = [w for _, _, ks, ke in windows for w in range(ks, ke)]
    assert kept == list(range(10, 30))  # every word of the sentence scored once, no other word
    assert all(sum(counts[s:e]) <= 50 for s, e, _, _ in windows)
    assert all((s, e) in {(p[0], p[1]) for p in plan_windows(counts, 50)} for s, e, _, _ in windows)


def test_sentence_marks_number_the_sentences_across_joined_texts() -> None:
    assert sentence_marks([[2, 1], [3]]) == [[0, 0, 1], [2, 2, 2]]
