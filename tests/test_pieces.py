"""The bounded word caches in front of the piece tokenizers: remembered or not, a word's pieces are
the same, and a cache that fills up mid-call still returns every word of that call."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models

from tagger.pieces import PieceEncoder, WordCache
from tagger.subwords import SubwordEncoder

LETTERS = "абвг"


def spelled(words: list[str]) -> list[str]:
    """A stand-in for a tokenizer: each word's value is its letters reversed."""
    return [w[::-1] for w in words]


@settings(max_examples=200, deadline=None)
@given(calls=st.lists(st.lists(st.text(LETTERS, min_size=1, max_size=3), max_size=8), max_size=12),
       limit=st.integers(1, 6))
def test_word_cache_returns_what_it_computes_and_stays_bounded(calls: list[list[str]], limit: int) -> None:
    cache = WordCache(spelled, limit=limit)
    biggest = 0  # one call's distinct words are all kept, even past the limit
    for words in calls:
        assert cache(words) == spelled(words)
        biggest = max(biggest, len(set(words)))
        assert len(cache.values) <= max(limit, biggest)


def test_a_full_cache_forgets_before_it_computes() -> None:
    computed: list[list[str]] = []
    cache = WordCache(lambda words: computed.append(words) or spelled(words), limit=3)
    assert cache(["аб", "ба"]) == ["ба", "аб"]
    # Two new words would pass the limit: all is forgotten, and "аб", remembered a moment ago,
    # is computed again with them rather than lost (the KeyError a long stream of new words hit).
    assert cache(["аб", "вв", "гг"]) == ["ба", "вв", "гг"]
    assert computed == [["аб", "ба"], ["аб", "вв", "гг"]]
    assert set(cache.values) == {"аб", "вв", "гг"}


def tokenizer_json() -> str:
    """A tiny Unigram tokenizer: letters and a few pairs, <unk> at id 1 as in a trimmed vocabulary."""
    pieces = [("<pad>", 0.0), ("<unk>", 0.0)] + [(c, -2.0) for c in LETTERS] + [("аб", -1.0), ("вг", -1.0)]
    return Tokenizer(models.Unigram(pieces, unk_id=1)).to_str()


@pytest.mark.parametrize("kind", ["pieces", "subwords"])
def test_encoders_fill_their_cache_many_times_over(kind: str) -> None:
    def encoder() -> PieceEncoder | SubwordEncoder:
        if kind == "pieces":
            return PieceEncoder(tokenizer_json(), max_pieces=4)
        return SubwordEncoder(tokenizer_json(), cls_id=0, sep_id=0, pad_id=0, unk_id=1, max_pieces=16)

    bounded, unbounded = encoder(), encoder()
    bounded.word_pieces.limit = 5
    words = [a + b + c for a in LETTERS for b in LETTERS for c in LETTERS]  # 64 distinct words
    for start in range(0, len(words), 3):
        batch = words[max(0, start - 2) : start + 3]  # each batch repeats words of the one before
        assert bounded.word_pieces(batch) == unbounded.word_pieces(batch)
    assert len(bounded.word_pieces.values) <= 5
