"""Building the BiLSTM's word and character vocabularies from training sentences."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from tagger.vocab import SPECIALS, LstmVocab, clip_chars, normalize_word


def build_vocab(sentences: Iterable[Sequence[str]], min_word_freq: int, max_word_chars: int) -> LstmVocab:
    """Words seen at least `min_word_freq` times and every character seen, most frequent first."""
    words: Counter[str] = Counter()
    chars: Counter[str] = Counter()
    for sentence in sentences:
        for word in sentence:
            words[normalize_word(word)] += 1
            chars.update(clip_chars(word, max_word_chars))
    kept = [w for w, n in words.most_common() if n >= min_word_freq and w not in SPECIALS]
    return LstmVocab(SPECIALS + kept, SPECIALS + [c for c, _ in chars.most_common()], max_word_chars)
