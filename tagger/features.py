"""Word, casing and character ids of the BiLSTM's inputs, shared by training and inference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tagger.pieces import PieceEncoder
from tagger.subwords import SubwordEncoder

PAD, UNK = 0, 1  # ids 0 and 1 of both vocabularies
SPECIALS = ["<pad>", "<unk>"]

# Inputs of a frozen context encoder: its windows and where each word is read in them.
CONTEXT_INPUTS = ("input_ids", "attention_mask", "word_index")

# Casing of a word: the word vocabulary is lowercased, so the model sees case here.
CASES = ["<pad>", "lower", "title", "upper", "digit", "other"]


def normalize_word(word: str) -> str:
    """The vocabulary key of a word: lowercased, digits folded to 0 (years share an entry)."""
    return "".join("0" if c.isdigit() else c for c in word.lower())


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


def clip_chars(word: str, max_chars: int) -> str:
    """A long word's first and last characters (prefix and suffix carry the morphology)."""
    if len(word) <= max_chars:
        return word
    head = max_chars // 2
    return word[:head] + word[len(word) - (max_chars - head) :]


@dataclass(frozen=True)
class LstmVocab:
    """Vocabularies of the BiLSTM: lowercased words and characters, ids 0/1 = pad/unk."""

    words: list[str]
    chars: list[str]
    max_word_chars: int = 20
    pieces_tokenizer: str | None = None  # JSON of a trimmed fast tokenizer; None: no piece input
    max_word_pieces: int = 8  # longer words keep their first and last pieces
    context: dict[str, object] | None = None  # SubwordEncoder data of a frozen context encoder; None: none

    def __post_init__(self) -> None:
        # Specials are ids, never words: a text containing "<pad>" must not read as padding.
        object.__setattr__(self, "_word_ids", {w: i for i, w in enumerate(self.words) if i >= len(SPECIALS)})
        object.__setattr__(self, "_char_ids", {c: i for i, c in enumerate(self.chars)})
        encoder = PieceEncoder(self.pieces_tokenizer, self.max_word_pieces) if self.pieces_tokenizer else None
        object.__setattr__(self, "_pieces", encoder)
        object.__setattr__(self, "_context", SubwordEncoder.from_json(self.context) if self.context else None)

    @property
    def input_names(self) -> list[str]:
        """Names of the model inputs that `encode` returns, in the model's argument order."""
        return (["word_ids", "case_ids", "char_ids"] + (["piece_ids"] if self.pieces_tokenizer else [])
                + (list(CONTEXT_INPUTS) if self.context else []))

    def word_id(self, word: str) -> int:
        """Id of a word's vocabulary key, UNK if unseen."""
        return self._word_ids.get(normalize_word(word), UNK)  # type: ignore[attr-defined]

    def encode(self, sentences: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        """Padded int64 inputs of a batch of sentences (each non-empty).

        Returns:
            word_ids (batch, seq_len), case_ids (batch, seq_len), char_ids (batch, seq_len, word_len),
            with a piece tokenizer piece_ids (batch, seq_len, pieces), and with a context
            encoder its windows: input_ids, attention_mask (windows, pieces), word_index (batch, seq_len).
        """
        batch = len(sentences)
        seq_len = max((len(s) for s in sentences), default=0)
        clipped = [[clip_chars(w, self.max_word_chars) for w in s] for s in sentences]
        word_len = max((len(w) for s in clipped for w in s), default=1)
        word_ids = np.zeros((batch, seq_len), dtype=np.int64)
        case_ids = np.zeros((batch, seq_len), dtype=np.int64)
        char_ids = np.zeros((batch, seq_len, word_len), dtype=np.int64)
        char_index = self._char_ids  # type: ignore[attr-defined]
        for b, (words, chars) in enumerate(zip(sentences, clipped)):
            for t, (word, clipped_word) in enumerate(zip(words, chars)):
                word_ids[b, t] = self.word_id(word)
                case_ids[b, t] = case_id(word)
                char_ids[b, t, : len(clipped_word)] = [char_index.get(c, UNK) for c in clipped_word]
        inputs = {"word_ids": word_ids, "case_ids": case_ids, "char_ids": char_ids}
        if self._pieces is not None:  # type: ignore[attr-defined]
            inputs["piece_ids"] = self._pieces.encode(sentences)  # type: ignore[attr-defined]
        if self._context is not None:  # type: ignore[attr-defined]
            windows = self._context.word_positions(sentences)  # type: ignore[attr-defined]
            inputs.update(zip(CONTEXT_INPUTS, windows))
        return inputs

    def to_json(self) -> dict[str, object]:
        """The vocabulary as JSON-ready data (stored in checkpoints and ONNX files)."""
        return {
            "words": self.words,
            "chars": self.chars,
            "max_word_chars": self.max_word_chars,
            "pieces_tokenizer": self.pieces_tokenizer,
            "max_word_pieces": self.max_word_pieces,
            "context": self.context,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> LstmVocab:
        """Rebuild from `to_json()` data."""
        return cls(
            list(data["words"]),  # type: ignore[call-overload]
            list(data["chars"]),  # type: ignore[call-overload]
            int(data["max_word_chars"]),  # type: ignore[call-overload]
            data.get("pieces_tokenizer"),  # type: ignore[arg-type]
            int(data.get("max_word_pieces", 8)),  # type: ignore[call-overload]
            data.get("context"),  # type: ignore[arg-type]
        )
