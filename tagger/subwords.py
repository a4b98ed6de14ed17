"""Words to encoder pieces for the BERT tagger: first-piece alignment and overlapping windows.

Both training (validation F1) and `tagger tag`/`evaluate` go through this module, so a word is
split, windowed and scored the same way in both, and their numbers agree.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from tokenizers import Tokenizer

from tagger.batching import length_batches
from tagger.pieces import WordCache, by_sentence, encode_words

MAX_WORD_PIECES = 16  # a longer "word" (a URL, a run of symbols) keeps its first pieces; it is labelled by its first
OVERLAP = 4  # windows of a long sentence re-read a quarter of their pieces on each side of a cut
# Padded pieces per encoder call: small calls stay in cache and keep attention tensors small (at 16,384
# a uk default run peaked at 2.6 GB); entities do not depend on it (portable INT8, tests/test_portable.py).
BATCH_PIECES = 1_024
MAX_WINDOWS = 128  # windows per encoder call

# (input_ids, attention_mask), both (batch, pieces) int64 -> scores (batch, pieces, num_labels)
RunFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
T = TypeVar("T")


def join_runs(sentences: Sequence[Sequence[T]], runs: Sequence[Hashable] | None = None) -> tuple[list[list[T]], list[list[int]]]:
    """Join each run of consecutive sentences with the same run id (None: all of them) into one.

    Returns:
        the joined sequences, and the lengths of the sentences each one was joined from.
    """
    if runs is not None and len(runs) != len(sentences):
        raise ValueError(f"{len(runs)} run ids for {len(sentences)} sentences")
    joined: list[list[T]] = []
    lengths: list[list[int]] = []
    for k, sentence in enumerate(sentences):
        if k == 0 or (runs is not None and runs[k] != runs[k - 1]):
            joined.append([])
            lengths.append([])
        joined[-1].extend(sentence)
        lengths[-1].append(len(sentence))
    return joined, lengths


@dataclass(frozen=True, slots=True)
class Window:
    """Words [start, end) of one sentence, encoded as one sequence; it scores words [keep_start, keep_end)."""

    sentence: int
    start: int
    end: int
    keep_start: int
    keep_end: int


def window_sizes(windows: Sequence[Window], pieces: Sequence[Sequence[Sequence[int]]]) -> list[int]:
    """Each window's length in pieces, <s> and </s> included (what batching by length sorts on)."""
    return [2 + sum(len(p) for p in pieces[w.sentence][w.start : w.end]) for w in windows]


def plan_windows(counts: Sequence[int], capacity: int) -> list[tuple[int, int, int, int]]:
    """Cut a sentence of words with `counts` pieces into windows of at most `capacity` pieces.

    Consecutive windows overlap by about capacity // OVERLAP pieces, and each word is scored
    by the window in which it sits furthest from a cut (the overlap is split at its middle).
    Every word is scored exactly once. Needs max(counts) <= capacity.

    Returns:
        (start, end, keep_start, keep_end) word indices per window; [] for an empty sentence.
    """
    n = len(counts)
    if sum(counts) <= capacity:
        return [(0, n, 0, n)] if n else []
    overlap = capacity // OVERLAP
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end, used = start, 0
        while end < n and used + counts[end] <= capacity:
            used += counts[end]
            end += 1
        spans.append((start, end))
        if end == n:
            break
        # The next window starts far enough back to re-read about `overlap` pieces, but always
        # after this one's start, so the walk moves on.
        nxt, back = end, 0
        while nxt - 1 > start and back + counts[nxt - 1] <= overlap:
            back += counts[nxt - 1]
            nxt -= 1
        start = nxt
    windows = []
    for k, (s, e) in enumerate(spans):
        keep_start = s if k == 0 else (spans[k - 1][1] + s) // 2
        keep_end = e if k == len(spans) - 1 else (spans[k + 1][0] + e) // 2
        windows.append((s, e, keep_start, keep_end))
    return windows


class SubwordEncoder:
    """Splits words into encoder pieces and sentences into encoder windows."""

    def __init__(self, tokenizer_json: str, cls_id: int, sep_id: int, pad_id: int, unk_id: int, max_pieces: int,
                 document_context: bool = False) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.cls_id, self.sep_id, self.pad_id, self.unk_id = cls_id, sep_id, pad_id, unk_id
        self.max_pieces = max_pieces  # per window, <s> and </s> included
        # Windows run across sentence boundaries, so each word is read with the sentences around
        # it; a model trained so must be run so (the flag travels in its checkpoint and ONNX header).
        self.document_context = document_context
        self.word_pieces = WordCache(self._pieces)  # piece ids of each word, encoded alone

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubwordEncoder:
        """Rebuild from `to_json()`'s or `compressed()`'s plain data (a checkpoint's or an ONNX header's)."""
        if "tokenizer_zlib" in data:
            tokenizer = zlib.decompress(base64.b64decode(data["tokenizer_zlib"])).decode("utf-8")
        else:
            tokenizer = data["tokenizer"]
        return cls(tokenizer, int(data["cls_id"]), int(data["sep_id"]), int(data["pad_id"]),
                   int(data["unk_id"]), int(data["max_pieces"]), bool(data.get("document_context", False)))

    def to_json(self) -> dict[str, Any]:
        """Plain data: the fast tokenizer's JSON and the ids this encoder adds."""
        return {"tokenizer": self.tokenizer.to_str(), "cls_id": self.cls_id, "sep_id": self.sep_id,
                "pad_id": self.pad_id, "unk_id": self.unk_id, "max_pieces": self.max_pieces,
                "document_context": self.document_context}

    @staticmethod
    def compressed(data: dict[str, Any]) -> dict[str, Any]:
        """`to_json()` data with the tokenizer JSON zlib-compressed (base64): half its size in a model file."""
        packed = base64.b64encode(zlib.compress(data["tokenizer"].encode("utf-8"), 9)).decode("ascii")
        return {**{k: v for k, v in data.items() if k != "tokenizer"}, "tokenizer_zlib": packed}

    def _pieces(self, words: list[str]) -> list[list[int]]:
        """Piece ids of each word, encoded alone (as `is_split_into_words` does); never empty."""
        # A word that normalises to nothing (a lone control character) still needs a piece to be scored from.
        return [encoding.ids[:MAX_WORD_PIECES] or [self.unk_id] for encoding in encode_words(self.tokenizer, words)]

    def windows(self, sentences: Sequence[Sequence[str]]) -> tuple[list[Window], list[list[list[int]]]]:
        """The windows of each sentence (in order) and the piece ids of every word."""
        pieces = by_sentence(self.word_pieces, sentences)
        capacity = self.max_pieces - 2
        windows = [
            Window(i, *plan)
            for i, word_ids in enumerate(pieces)
            for plan in plan_windows([len(p) for p in word_ids], capacity)
        ]
        return windows, pieces

    def batch_inputs(
        self, windows: Sequence[Window], pieces: Sequence[Sequence[Sequence[int]]]
    ) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """Padded encoder inputs of windows, and where each window's words start.

        Returns:
            input_ids (batch, pieces), attention_mask (batch, pieces), and per window the
            position of the first piece of each of its words [start, end).
        """
        rows: list[list[int]] = []
        firsts: list[list[int]] = []
        for w in windows:
            row, first = [self.cls_id], []
            for word in pieces[w.sentence][w.start : w.end]:
                first.append(len(row))
                row.extend(word)
            row.append(self.sep_id)
            rows.append(row)
            firsts.append(first)
        width = max((len(r) for r in rows), default=2)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(rows), width), dtype=np.int64)
        for b, row in enumerate(rows):
            input_ids[b, : len(row)] = row
            attention_mask[b, : len(row)] = 1
        return input_ids, attention_mask, firsts

    def word_positions(self, sentences: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoder inputs of all the windows of a batch of sentences, and where each word is read.

        Returns:
            input_ids (windows, pieces), attention_mask (windows, pieces), and word_index
            (batch, seq_len): each word's first piece as a flat index into windows x pieces, in
            the window that scores it (0 at padding).
        """
        windows, pieces = self.windows(sentences)
        input_ids, attention_mask, firsts = self.batch_inputs(windows, pieces)
        width = input_ids.shape[1]
        word_index = np.zeros((len(sentences), max((len(s) for s in sentences), default=0)), dtype=np.int64)
        for k, (w, first) in enumerate(zip(windows, firsts)):
            kept = first[w.keep_start - w.start : w.keep_end - w.start]
            word_index[w.sentence, w.keep_start : w.keep_end] = [k * width + position for position in kept]
        return input_ids, attention_mask, word_index

    def emissions(self, sentences: Sequence[Sequence[str]], run: RunFn, num_labels: int,
                  runs: Sequence[Hashable] | None = None) -> list[np.ndarray]:
        """Word scores (words, num_labels) of each sentence: windows batched by length, merged back.

        With document context, consecutive sentences of a run (the same id in `runs`, one per
        sentence, such as their document's; None: all are one run) are read as one text.
        """
        if not self.document_context:
            return self._emissions(sentences, run, num_labels)
        joined, lengths = join_runs(sentences, runs)
        scores = self._emissions(joined, run, num_labels)
        return [part for text, sizes in zip(scores, lengths) for part in np.split(text, np.cumsum(sizes)[:-1])]

    def _emissions(self, sentences: Sequence[Sequence[str]], run: RunFn, num_labels: int) -> list[np.ndarray]:
        """Word scores of each sentence, read alone."""
        return self.scored(*self.windows(sentences), run, num_labels)

    def scored(self, windows: Sequence[Window], pieces: Sequence[Sequence[Sequence[int]]], run: RunFn,
               num_labels: int) -> list[np.ndarray]:
        """Word scores of each sentence of `pieces` (its words' piece ids), from its `windows` run in
        batches of similar length (little padding)."""
        out = [np.zeros((len(words), num_labels), dtype=np.float32) for words in pieces]
        for batch in length_batches(window_sizes(windows, pieces), MAX_WINDOWS, BATCH_PIECES):
            self._score([windows[k] for k in batch], pieces, run, out)
        return out

    def _score(self, batch: list[Window], pieces: Sequence[Sequence[Sequence[int]]], run: RunFn,
               out: list[np.ndarray]) -> None:
        """Run one batch of windows and copy the kept words' first-piece scores into `out`."""
        input_ids, attention_mask, firsts = self.batch_inputs(batch, pieces)
        scores = run(input_ids, attention_mask)  # (batch, pieces, num_labels)
        for b, (w, first) in enumerate(zip(batch, firsts)):
            kept = first[w.keep_start - w.start : w.keep_end - w.start]
            out[w.sentence][w.keep_start : w.keep_end] = scores[b, kept]
