"""Sentence-piece ids of each word, from a trimmed fast tokenizer carried inside the model file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import numpy as np
from tokenizers import Encoding, Tokenizer

PAD_PIECE = 0  # id 0 of a trimmed piece vocabulary pads; id 1 is <unk>
CACHE_WORDS = 200_000  # words whose pieces (or features) are remembered (bounded: input can be endless)
T = TypeVar("T")


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


class WordCache(Generic[T]):
    """Each word's value, computed once for all of a call's new words and remembered for up to
    `limit` words: past that it forgets them all and starts again (input can be endless)."""

    def __init__(self, compute: Callable[[list[str]], list[T]], limit: int = CACHE_WORDS) -> None:
        self.compute, self.limit = compute, limit
        self.values: dict[str, T] = {}

    def __call__(self, words: Sequence[str]) -> list[T]:
        """The value of each of `words`, in order."""
        distinct = dict.fromkeys(words)
        new = [w for w in distinct if w not in self.values]
        if new:
            if len(self.values) + len(new) > self.limit:
                # Forget first, then compute every word this call needs: forgetting after working
                # out which words are new would drop the ones it still has to return.
                self.values.clear()
                new = list(distinct)
            self.values.update(zip(new, self.compute(new)))
        return [self.values[w] for w in words]


class PieceEncoder:
    """Splits words into pieces of a pretrained encoder's vocabulary (for its embeddings)."""

    def __init__(self, tokenizer_json: str, max_pieces: int) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.max_pieces = max_pieces
        self.word_pieces = WordCache(self._pieces)  # piece ids of each word

    def _pieces(self, words: list[str]) -> list[list[int]]:
        """Piece ids of each word (a long word keeps its first and last pieces)."""
        out = []
        for encoding in encode_words(self.tokenizer, words):
            ids = encoding.ids or [1]
            if len(ids) > self.max_pieces:
                head = self.max_pieces // 2
                ids = ids[:head] + ids[len(ids) - (self.max_pieces - head) :]
            out.append(ids)
        return out

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
