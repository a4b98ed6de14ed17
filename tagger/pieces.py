"""Sentence-piece ids of each word, from a trimmed fast tokenizer carried inside the model file."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

PAD_PIECE = 0  # id 0 of a trimmed piece vocabulary pads; id 1 is <unk>


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
            if len(self.cache) > 200_000:  # bound memory on endless input
                self.cache.clear()
            for word, encoding in zip(new, self.tokenizer.encode_batch(new, add_special_tokens=False)):
                ids = encoding.ids or [1]
                if len(ids) > self.max_pieces:
                    head = self.max_pieces // 2
                    ids = ids[:head] + ids[len(ids) - (self.max_pieces - head) :]
                self.cache[word] = ids
        return [self.cache[w] for w in words]

    def encode(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """(batch, seq_len, pieces) int64 piece ids, 0-padded."""
        seq_len = max((len(s) for s in sentences), default=0)
        flat = [w for s in sentences for w in s]
        pieces = self.word_pieces(flat)
        width = max((len(p) for p in pieces), default=1)
        out = np.zeros((len(sentences), seq_len, width), dtype=np.int64)
        k = 0
        for b, sentence in enumerate(sentences):
            for t in range(len(sentence)):
                ids = pieces[k]
                out[b, t, : len(ids)] = ids
                k += 1
        return out
