"""Entity scores: the probability of exactly that span and label, checked against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tagger.decode import Decoder
from tagger.predict import span_scores
from tagger.scheme import Span, tags_to_spans

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def brute_force(decoder: Decoder, emissions: np.ndarray, span: Span) -> float:
    """Sum of exp(path score) over every tag sequence holding exactly `span`, over the sum over all."""
    total = hit = 0.0
    for path in itertools.product(range(len(LABELS)), repeat=len(emissions)):
        score = decoder.start[path[0]] + decoder.end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
        score += sum(decoder.transitions[a, b] for a, b in zip(path, path[1:]))
        weight = float(np.exp(score))
        total += weight
        if span in tags_to_spans([LABELS[y] for y in path]):
            hit += weight
    return hit / total


@pytest.mark.parametrize("crf", [False, True])
def test_span_probability_is_the_exact_sum_over_tag_sequences(crf: bool) -> None:
    rng = np.random.default_rng(3)
    decoder = Decoder(LABELS, *((rng.normal(size=(5, 5)), rng.normal(size=5), rng.normal(size=5)) if crf else ()))
    emissions = rng.normal(scale=2.0, size=(5, len(LABELS))).astype(np.float32)
    spans = [Span(0, 2, "PER"), Span(1, 2, "LOC"), Span(3, 5, "LOC"), Span(4, 5, "PER"), Span(0, 5, "PER")]
    tags = [["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]]  # the first and third spans, as a tagger would ask
    got = span_scores(decoder, LABELS, [emissions], tags)[0]
    assert got == pytest.approx([brute_force(decoder, emissions, spans[0]), brute_force(decoder, emissions, spans[2])], abs=1e-6)
    index = {label: k for k, label in enumerate(LABELS)}
    every = [(s.start, s.end, index[f"B-{s.label}"], index[f"I-{s.label}"]) for s in spans]
    probs = decoder.span_probabilities(emissions[None], [5], [every])[0]
    assert probs == pytest.approx([brute_force(decoder, emissions, s) for s in spans], abs=1e-6)
    assert all(0.0 <= p <= 1.0 for p in probs)


def test_a_confident_model_scores_near_one_and_a_torn_one_near_half() -> None:
    decoder = Decoder(LABELS)
    sure = np.full((2, 5), -10.0, np.float32)
    sure[0, 1] = sure[1, 2] = 10.0  # B-PER I-PER
    assert span_scores(decoder, LABELS, [sure], [["B-PER", "I-PER"]])[0][0] > 0.999
    torn = sure.copy()
    torn[0, 3] = torn[1, 4] = 10.0  # as sure of B-LOC I-LOC
    assert span_scores(decoder, LABELS, [torn], [["B-PER", "I-PER"]])[0][0] == pytest.approx(0.5, abs=1e-3)
