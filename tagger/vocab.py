"""The BiLSTM's vocabulary as plain data: its words, characters and input settings, stored with a model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PAD, UNK = 0, 1  # ids 0 and 1 of both vocabularies
SPECIALS = ["<pad>", "<unk>"]

# Inputs of a frozen context encoder: its windows and where each word is read in them.
CONTEXT_INPUTS = ("input_ids", "attention_mask", "word_index")


def normalize_word(word: str) -> str:
    """The vocabulary key of a word: lowercased, digits folded to 0 (years share an entry)."""
    return "".join("0" if c.isdigit() else c for c in word.lower())


def clip_chars(word: str, max_chars: int) -> str:
    """A long word's first and last characters (prefix and suffix carry the morphology)."""
    if len(word) <= max_chars:
        return word
    head = max_chars // 2
    return word[:head] + word[len(word) - (max_chars - head) :]


@dataclass(frozen=True)
class LstmVocab:
    """Vocabularies of the BiLSTM: lowercased words and characters, ids 0/1 = pad/unk.

    Plain data: `tagger.features.LstmEncoder` turns sentences into ids with it.
    """

    words: list[str]
    chars: list[str]
    max_word_chars: int = 20
    pieces_tokenizer: str | None = None  # JSON of a trimmed fast tokenizer; None: no piece input
    max_word_pieces: int = 8  # longer words keep their first and last pieces
    context: dict[str, Any] | None = None  # SubwordEncoder data of a frozen context encoder; None: none

    @property
    def input_names(self) -> list[str]:
        """Names of the model inputs that `LstmEncoder.encode` returns, in the model's argument order."""
        return (["word_ids", "case_ids", "char_ids"] + (["piece_ids"] if self.pieces_tokenizer else [])
                + (list(CONTEXT_INPUTS) if self.context else []))

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
    def from_json(cls, data: Mapping[str, Any]) -> LstmVocab:
        """Rebuild from `to_json()` data."""
        return cls(
            list(data["words"]),
            list(data["chars"]),
            int(data["max_word_chars"]),
            data.get("pieces_tokenizer"),
            int(data.get("max_word_pieces", 8)),
            data.get("context"),
        )
