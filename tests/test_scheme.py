"""IOB2 tags and spans (tagger.scheme) and Viterbi decoding (tagger.decode)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagger.decode import Decoder
from tagger.scheme import Span, allowed_transitions, entity_types, spans_to_tags, split_tag, tags_to_spans

TYPES = ["PER", "ORG", "LOC"]
LABELS = ["O"] + [f"{p}-{t}" for t in TYPES for p in "BI"]  # O, B-PER, I-PER, B-ORG, ...


# --- tags -> spans, the conlleval convention ----------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        ([], []),
        (["O", "O"], []),
        (["B-PER"], [Span(0, 1, "PER")]),
        (["B-PER", "I-PER", "O"], [Span(0, 2, "PER")]),
        (["O", "B-LOC", "I-LOC", "I-LOC"], [Span(1, 4, "LOC")]),  # an entity at the end closes
        # I-X continues only B-X or I-X ...
        (["B-PER", "I-PER", "I-PER", "B-PER"], [Span(0, 3, "PER"), Span(3, 4, "PER")]),
        (["B-PER", "B-PER"], [Span(0, 1, "PER"), Span(1, 2, "PER")]),
        # ... an I-X after O, at the start, or after B-Y/I-Y starts a new entity.
        (["I-PER"], [Span(0, 1, "PER")]),
        (["O", "I-PER", "I-PER"], [Span(1, 3, "PER")]),
        (["B-ORG", "I-PER"], [Span(0, 1, "ORG"), Span(1, 2, "PER")]),
        (["B-PER", "I-PER", "I-ORG", "I-ORG", "O"], [Span(0, 2, "PER"), Span(2, 4, "ORG")]),
        (["B-ORG", "I-ORG", "I-LOC", "B-LOC"], [Span(0, 2, "ORG"), Span(2, 3, "LOC"), Span(3, 4, "LOC")]),
        (["B-MISC", "O", "I-MISC"], [Span(0, 1, "MISC"), Span(2, 3, "MISC")]),
        (["B-creative-work", "I-creative-work"], [Span(0, 2, "creative-work")]),  # '-' inside a type
    ],
)
def test_tags_to_spans_conlleval(tags: list[str], spans: list[Span]) -> None:
    assert tags_to_spans(tags) == spans


@pytest.mark.parametrize("tag", ["", "X", "B", "B-", "I-", "BPER", "b-PER", "E-PER", "S-PER", "O-PER", "o", "B_PER"])
def test_invalid_tags_raise(tag: str) -> None:
    with pytest.raises(ValueError, match="not an IOB2 tag"):
        split_tag(tag)
    with pytest.raises(ValueError):
        tags_to_spans(["B-PER", tag])


def test_split_tag() -> None:
    assert split_tag("O") == ("O", "")
    assert split_tag("B-PERS") == ("B", "PERS")
    assert split_tag("I-creative-work") == ("I", "creative-work")


def test_span_is_frozen_half_open_and_ordered() -> None:
    span = Span(2, 4, "LOC")
    assert span.end - span.start == 2
    with pytest.raises(AttributeError):
        span.start = 3  # type: ignore[misc]
    assert sorted([Span(3, 4, "A"), Span(0, 2, "B")]) == [Span(0, 2, "B"), Span(3, 4, "A")]


def test_spans_to_tags() -> None:
    spans = [Span(0, 2, "PER"), Span(2, 3, "PER"), Span(4, 7, "LOC")]
    tags = ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O"]
    assert spans_to_tags(spans, 8) == tags
    assert tags_to_spans(tags) == spans
    assert spans_to_tags([], 3) == ["O", "O", "O"]
    assert spans_to_tags(list(reversed(spans)), 8) == tags  # order of the input does not matter


@pytest.mark.parametrize(
    "spans",
    [
        [Span(0, 2, "PER"), Span(1, 3, "LOC")],  # overlap
        [Span(1, 3, "PER"), Span(1, 3, "PER")],  # the same span twice
        [Span(2, 2, "PER")],  # empty
        [Span(3, 2, "PER")],  # backwards
        [Span(-1, 1, "PER")],
        [Span(3, 6, "PER")],  # past the end
    ],
)
def test_spans_to_tags_rejects_bad_spans(spans: list[Span]) -> None:
    with pytest.raises(ValueError):
        spans_to_tags(spans, 5)


def test_entity_types_in_first_seen_order() -> None:
    assert entity_types(["O", "B-PERS", "I-PERS", "B-ORG", "I-ORG", "I-LOC", "B-LOC"]) == ["PERS", "ORG", "LOC"]
    assert entity_types(["O"]) == []


def test_allowed_transitions() -> None:
    allowed, start = allowed_transitions(LABELS)
    idx = {t: i for i, t in enumerate(LABELS)}
    assert allowed.shape == (len(LABELS), len(LABELS)) and start.shape == (len(LABELS),)
    assert allowed[idx["B-PER"], idx["I-PER"]] and allowed[idx["I-PER"], idx["I-PER"]]
    assert not allowed[idx["O"], idx["I-PER"]]
    assert not allowed[idx["B-ORG"], idx["I-PER"]] and not allowed[idx["I-ORG"], idx["I-PER"]]
    assert allowed[idx["I-ORG"], idx["B-PER"]] and allowed[idx["B-PER"], idx["O"]]
    assert not start[idx["I-LOC"]] and start[idx["B-LOC"]] and start[idx["O"]]
    # Exactly the I- columns have forbidden entries.
    assert {LABELS[j] for j in range(len(LABELS)) if not allowed[:, j].all()} == {f"I-{t}" for t in TYPES}


# --- property tests ----------------------------------------------------------------------------


@st.composite
def span_sets(draw: st.DrawFn) -> tuple[list[Span], int]:
    """Non-overlapping spans over a sentence, with gaps of zero or more words between them."""
    spans: list[Span] = []
    position = 0
    for _ in range(draw(st.integers(0, 6))):
        start = position + draw(st.integers(0, 3))
        end = start + draw(st.integers(1, 4))
        spans.append(Span(start, end, draw(st.sampled_from(TYPES))))
        position = end
    return spans, position + draw(st.integers(0, 3))


def is_valid_iob2(tags: list[str]) -> bool:
    """No I-X unless it follows B-X or I-X."""
    previous = "O"
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "I" and split_tag(previous)[1] != kind:
            return False
        previous = tag
    return True


@given(span_sets())
def test_spans_tags_spans_is_identity(case: tuple[list[Span], int]) -> None:
    spans, length = case
    tags = spans_to_tags(spans, length)
    assert len(tags) == length
    assert is_valid_iob2(tags)
    assert tags_to_spans(tags) == spans


@given(st.lists(st.sampled_from(LABELS), max_size=12))
def test_tags_spans_tags_repairs_to_valid_iob2(tags: list[str]) -> None:
    """Any tag sequence reads as spans that write back as valid IOB2 with the same spans."""
    spans = tags_to_spans(tags)
    repaired = spans_to_tags(spans, len(tags))
    assert is_valid_iob2(repaired)
    assert tags_to_spans(repaired) == spans
    if is_valid_iob2(tags):
        assert repaired == tags


@st.composite
def decoding_problems(draw: st.DrawFn) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray, np.ndarray]:
    """Random emissions for a batch of sentences, and random CRF scores."""
    num_labels = len(LABELS)
    lengths = draw(st.lists(st.integers(0, 6), min_size=1, max_size=4))
    seq_len = max(lengths)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0, 20, allow_nan=False))
    emissions = (rng.standard_normal((len(lengths), seq_len, num_labels)) * scale).astype(np.float32)
    transitions = (rng.standard_normal((num_labels, num_labels)) * 3).astype(np.float32)
    start = (rng.standard_normal(num_labels) * 3).astype(np.float32)
    end = (rng.standard_normal(num_labels) * 3).astype(np.float32)
    return emissions, lengths, transitions, start, end


@settings(max_examples=150, deadline=None)
@given(decoding_problems())
def test_viterbi_output_is_always_valid_iob2(problem: tuple) -> None:  # noqa: ANN001
    emissions, lengths, transitions, start, end = problem
    for decoder in (Decoder(LABELS), Decoder(LABELS, transitions, start, end)):
        paths = decoder.decode(emissions, lengths)
        assert [len(p) for p in paths] == lengths
        for path in paths:
            assert all(0 <= i < len(LABELS) for i in path)
            assert is_valid_iob2([LABELS[i] for i in path])


@settings(max_examples=150, deadline=None)
@given(decoding_problems())
def test_batched_decode_equals_per_sentence_decode(problem: tuple) -> None:  # noqa: ANN001
    emissions, lengths, transitions, start, end = problem
    decoder = Decoder(LABELS, transitions, start, end)
    # Garbage past each length must not matter.
    noisy = emissions.copy()
    for b, length in enumerate(lengths):
        noisy[b, length:] = 1e3 * (b + 1)
    batched = decoder.decode(noisy, lengths)
    for b, length in enumerate(lengths):
        alone = decoder.decode(emissions[b : b + 1, :length], [length])[0]
        assert batched[b] == alone


def path_score(path: tuple[int, ...], emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    """The CRF score of one label path."""
    score = float(start[path[0]] + end[path[-1]])
    for t, label in enumerate(path):
        score += float(emissions[t, label]) + (float(transitions[path[t - 1], label]) if t else 0.0)
    return score


@settings(max_examples=60, deadline=None)
@given(decoding_problems())
def test_viterbi_finds_the_best_valid_path(problem: tuple) -> None:  # noqa: ANN001
    """Against brute force over every valid label path (7 labels, at most 4 words)."""
    emissions, lengths, transitions, start, end = problem
    decoder = Decoder(LABELS, transitions, start, end)
    paths = decoder.decode(emissions[:, :4], [min(n, 4) for n in lengths])
    for b, n in enumerate(lengths):
        n = min(n, 4)
        if n == 0:
            assert paths[b] == []
            continue
        candidates = [p for p in itertools.product(range(len(LABELS)), repeat=n)
                      if is_valid_iob2([LABELS[i] for i in p])]
        best = max(path_score(p, emissions[b], transitions, start, end) for p in candidates)
        got = path_score(tuple(paths[b]), emissions[b], transitions, start, end)
        assert got == pytest.approx(best, abs=1e-3)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(LABELS), min_size=1, max_size=8), min_size=1, max_size=4),
       st.integers(0, 2**32 - 1))
def test_decoder_without_transitions_is_argmax_when_argmax_is_valid(sentences: list[list[str]], seed: int) -> None:
    """Emissions that favour arbitrary tags: argmax if those are valid IOB2, else a valid repair."""
    rng = np.random.default_rng(seed)
    seq_len = max(len(s) for s in sentences)
    emissions = rng.uniform(-1, 1, (len(sentences), seq_len, len(LABELS))).astype(np.float32)
    for b, tags in enumerate(sentences):
        for t, tag in enumerate(tags):
            emissions[b, t, LABELS.index(tag)] += 5.0  # the argmax
    paths = Decoder(LABELS).decode(emissions, [len(s) for s in sentences])
    for tags, path in zip(sentences, paths):
        decoded = [LABELS[i] for i in path]
        assert is_valid_iob2(decoded)
        if is_valid_iob2(tags):
            assert decoded == tags


def test_decoder_repairs_a_stray_inside_tag() -> None:
    """O then I-PER scored highest: the decoder must choose a valid sequence instead."""
    emissions = np.full((1, 2, len(LABELS)), -5.0, np.float32)
    emissions[0, 0, LABELS.index("O")] = 3.0
    emissions[0, 1, LABELS.index("I-PER")] = 3.0
    emissions[0, 1, LABELS.index("B-PER")] = 2.0
    assert [LABELS[i] for i in Decoder(LABELS).decode(emissions, [2])[0]] == ["O", "B-PER"]


def test_decoder_uses_transitions() -> None:
    """Strong transition scores override weak emission preferences."""
    emissions = np.zeros((1, 3, len(LABELS)), np.float32)
    emissions[0, :, LABELS.index("O")] = 1.0
    transitions = np.zeros((len(LABELS), len(LABELS)), np.float32)
    b_loc, i_loc = LABELS.index("B-LOC"), LABELS.index("I-LOC")
    transitions[b_loc, i_loc] = transitions[i_loc, i_loc] = 5.0
    path = Decoder(LABELS, transitions).decode(emissions, [3])[0]
    assert [LABELS[i] for i in path] == ["B-LOC", "I-LOC", "I-LOC"]
    assert [LABELS[i] for i in Decoder(LABELS).decode(emissions, [3])[0]] == ["O", "O", "O"]


def test_decoder_empty_inputs() -> None:
    decoder = Decoder(LABELS)
    assert decoder.decode(np.zeros((0, 0, len(LABELS)), np.float32), []) == []
    assert decoder.decode(np.zeros((2, 0, len(LABELS)), np.float32), [0, 0]) == [[], []]
    assert decoder.decode(np.zeros((2, 3, len(LABELS)), np.float32), [0, 3])[0] == []
