"""Sentence-piece ids of each word, from a trimmed fast tokenizer carried inside the model file."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tokenizers import Encoding, Tokenizer

PAD_PIECE = 0  # id 0 of a trimmed piece vocabulary pads; id 1 is <unk>
CACHE_WORDS = 200_000  # words whose pieces (or features) are remembered (bounded: input can be endless)


def encode_words(tokenizer: Tokenizer, words: list[str]) -> list[Encoding]:
    """Each word's encoding, no special tokens. One call a word: the batch call's thread pool fights
    ONNX Runtime's threads for the cores (2x slower on 2 cores between session runs), and words come
    in hundreds a batch, too few to pay for parallelism."""
    return [tokenizer.encode(word, add_special_tokens=False) for word in words]


def by_sentence(word_pieces: Callable[[list[str]], list[list[int]]],
                sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """`word_pieces` of each sentence's words, from one call over all of them: the tokenizer's cost
    is per call, so a batch's new words are encoded together."""
    flat = iter(word_pieces([w for words in sentences for w in words]))
    return [[next(flat) for _ in words] for words in sentences]


class PieceEncoder:
    """Splits words into pieces of a pretrained encoder's vocabulary (for its embeddings)."""

    def __init__(self, tokenizer_json: str, max_pieces: int) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.max_pieces = max_pieces
        self.cache: dict[str, list[int]] = {}

    def word_pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Piece ids of each word (a long word keeps its first and last pieces)."""
        new = [w for w in dict.fromkeys(words) if w not in self.cache]
        if new:
            if len(self.cache) > CACHE_WORDS:  # bound memory on endless input
                self.cache.clear()
            for word, encoding in zip(new, encode_words(self.tokenizer, new)):
                ids = encoding.ids or [1]
                if len(ids) > self.max_pieces:
                    head = self.max_pieces // 2
                    ids = ids[:head] + ids[len(ids) - (self.max_pieces - head) :]
                self.cache[word] = ids
        return [self.cache[w] for w in words]

    def encode(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """(batch, seq_len, pieces) int64 piece ids, 0-padded."""
        seq_len = max((len(s) for s in sentences), default=0)
        rows = by_sentence(self.word_pieces, sentences)
        width = max((len(p) for row in rows for p in row), default=1)
        out = np.zeros((len(sentences), seq_len, width), dtype=np.int64)
        padding = [PAD_PIECE] * width
        for b, row in enumerate(rows):  # a row at a time: numpy's per-call cost is per sentence
            if row:
                out[b, : len(row)] = [p + padding[len(p) :] for p in row]
        return out
