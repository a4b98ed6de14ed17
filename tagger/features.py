"""The BiLSTM's input ids of sentences (word, casing, character, piece, context), for training and inference."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tagger.pieces import PieceEncoder, WordCache, by_sentence
from tagger.subwords import SubwordEncoder
from tagger.vocab import CONTEXT_INPUTS, SPECIALS, UNK, LstmVocab, clip_chars, normalize_word

# Casing of a word: the word vocabulary is lowercased, so the model sees case here.
CASES = ["<pad>", "lower", "title", "upper", "digit", "other"]


def case_id(word: str) -> int:
    """Index into CASES of a word's casing."""
    if any(c.isdigit() for c in word):
        return 4
    if word.islower():
        return 1
    if word.isupper():
        return 3
    if word[:1].isupper():
        return 2
    return 5


class LstmEncoder:
    """A vocabulary's padded BiLSTM inputs of sentences; it builds its id tables and its piece and
    context tokenizers once, so build one per model and reuse it."""

    def __init__(self, vocab: LstmVocab) -> None:
        self.vocab = vocab
        # Specials are ids, never words: a text containing "<pad>" must not read as padding.
        self.word_to_id = {w: i for i, w in enumerate(vocab.words) if i >= len(SPECIALS)}
        self.char_to_id = {c: i for i, c in enumerate(vocab.chars)}
        self.pieces = PieceEncoder(vocab.pieces_tokenizer, vocab.max_word_pieces) if vocab.pieces_tokenizer else None
        self.context = SubwordEncoder.from_json(vocab.context) if vocab.context else None
        self.word_features = WordCache(self._features)  # remembered: most words of a text recur

    def _features(self, words: list[str]) -> list[tuple[int, int, list[int]]]:
        """(word id, case id, character ids) of each word."""
        limit = self.vocab.max_word_chars
        return [(self.word_id(w), case_id(w), [self.char_to_id.get(c, UNK) for c in clip_chars(w, limit)])
                for w in words]

    def word_id(self, word: str) -> int:
        """Id of a word's vocabulary key, UNK if unseen."""
        return self.word_to_id.get(normalize_word(word), UNK)

    def context_pieces(self, sentences: Sequence[Sequence[str]]) -> list[int]:
        """Each sentence's pieces in the context encoder's window (its words' pieces, CLS and SEP)."""
        assert self.context is not None, "a model without a context encoder"
        return [2 + sum(map(len, pieces)) for pieces in by_sentence(self.context.word_pieces, sentences)]

    def encode(self, sentences: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """Padded int64 inputs of a batch of sentences (each non-empty), named as `vocab.input_names`.

        Returns:
            word_ids (batch, seq_len), case_ids (batch, seq_len), char_ids (batch, seq_len, word_len),
            with a piece tokenizer piece_ids (batch, seq_len, pieces), and with a context
            encoder its windows: input_ids, attention_mask (windows, pieces), word_index (batch, seq_len).
        """
        batch = len(sentences)
        seq_len = max((len(s) for s in sentences), default=0)
        features = [self.word_features(words) for words in sentences]
        word_len = max((len(f[2]) for row in features for f in row), default=1)
        word_ids = np.zeros((batch, seq_len), dtype=np.int64)
        case_ids = np.zeros((batch, seq_len), dtype=np.int64)
        char_ids = np.zeros((batch, seq_len, word_len), dtype=np.int64)
        padding = [0] * word_len
        for b, row in enumerate(features):  # a row at a time: numpy's per-call cost is per sentence
            if row:
                word_ids[b, : len(row)] = [f[0] for f in row]
                case_ids[b, : len(row)] = [f[1] for f in row]
                char_ids[b, : len(row)] = [f[2] + padding[len(f[2]) :] for f in row]
        inputs = {"word_ids": word_ids, "case_ids": case_ids, "char_ids": char_ids}
        if self.pieces is not None:
            inputs["piece_ids"] = self.pieces.encode(sentences)
        if self.context is not None:
            windows = self.context.word_positions(sentences)
            inputs.update(zip(CONTEXT_INPUTS, windows))
        return inputs
