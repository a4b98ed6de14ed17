"""Error analysis of entities: each gold and each predicted entity is paired at most once and put in one category.

Categories, per pair of one sentence (spans are half-open word indices, as everywhere):
  correct        same span, same type
  type           same span, other type
  boundary       same type, overlapping spans that differ
  boundary_type  other type, overlapping spans that differ
  missed         a gold entity left without a prediction (none overlaps it, or a better one took it)
  spurious       a predicted entity left without a gold one (likewise)
Better pairs are taken first (in that order, then by larger overlap), so every gold entity
counts once in its type's row and every predicted one once in its type's column.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tagger.atomic import write_text_atomic
from tagger.errors import TaggerError
from tagger.scheme import Span, tags_to_spans

CATEGORIES = ("correct", "type", "boundary", "boundary_type", "missed", "spurious")
NONE = "O"  # the confusion table's "no entity": the gold side of spurious, the predicted side of missed


@dataclass(frozen=True, slots=True)
class Pair:
    """A gold and a predicted entity of one sentence, paired; or one of them alone (missed, spurious)."""

    sentence: int  # index of the sentence in the split (0-based)
    gold: Span | None
    predicted: Span | None
    category: str


@dataclass(frozen=True)
class ErrorAnalysis:
    """Every entity of a split, gold and predicted, paired and categorised."""

    pairs: list[Pair]

    def counts(self) -> dict[str, int]:
        """How many pairs fall in each category (all categories listed)."""
        found = Counter(p.category for p in self.pairs)
        return {category: found[category] for category in CATEGORIES}

    def confusion(self) -> dict[str, dict[str, dict[str, int]]]:
        """gold type (or O) -> predicted type (or O) -> category -> count, non-zero cells only."""
        table: dict[str, dict[str, dict[str, int]]] = {}
        for pair in self.pairs:
            gold = pair.gold.label if pair.gold else NONE
            predicted = pair.predicted.label if pair.predicted else NONE
            cell = table.setdefault(gold, {}).setdefault(predicted, {})
            cell[pair.category] = cell.get(pair.category, 0) + 1
        return table

    def errors(self) -> list[Pair]:
        """The pairs that are not correct: each a false negative, a false positive, or both."""
        return [p for p in self.pairs if p.category != "correct"]

    def to_json(self) -> dict[str, object]:
        """The `errors` key of `tagger evaluate --json`."""
        return {"counts": self.counts(), "confusion": self.confusion()}


def category(gold: Span, predicted: Span) -> str:
    """The category of two overlapping spans."""
    same_span = (gold.start, gold.end) == (predicted.start, predicted.end)
    if same_span:
        return "correct" if gold.label == predicted.label else "type"
    return "boundary" if gold.label == predicted.label else "boundary_type"


def pair_sentence(sentence: int, gold: Sequence[Span], predicted: Sequence[Span]) -> list[Pair]:
    """Pair one sentence's spans one to one, best pairs first; the rest are missed or spurious."""
    candidates = []  # (rank, -overlap, gold start, predicted start, gold, predicted)
    for g in gold:
        for p in predicted:
            overlap = min(g.end, p.end) - max(g.start, p.start)
            if overlap > 0:
                candidates.append((CATEGORIES.index(category(g, p)), -overlap, g.start, p.start, g, p))
    candidates.sort(key=lambda c: c[:4])
    taken_gold: set[Span] = set()
    taken_predicted: set[Span] = set()
    pairs = []
    for rank, _, _, _, g, p in candidates:
        if g not in taken_gold and p not in taken_predicted:
            taken_gold.add(g)
            taken_predicted.add(p)
            pairs.append(Pair(sentence, g, p, CATEGORIES[rank]))
    pairs += [Pair(sentence, g, None, "missed") for g in gold if g not in taken_gold]
    pairs += [Pair(sentence, None, p, "spurious") for p in predicted if p not in taken_predicted]
    return sorted(pairs, key=lambda p: min(s.start for s in (p.gold, p.predicted) if s is not None))


def analyse(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> ErrorAnalysis:
    """Pair the entities of gold and predicted IOB2 tags, sentence by sentence (same lengths assumed)."""
    pairs: list[Pair] = []
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        pairs += pair_sentence(i, tags_to_spans(g), tags_to_spans(p))
    return ErrorAnalysis(pairs)


def span_json(span: Span | None, words: Sequence[str]) -> dict[str, object] | None:
    """A span of the errors file: word indices, type and its words joined by spaces."""
    if span is None:
        return None
    return {"start": span.start, "end": span.end, "label": span.label, "text": " ".join(words[span.start : span.end])}


def error_lines(analysis: ErrorAnalysis, sentences: Sequence[Sequence[str]],
                positions: Sequence[int] | None = None) -> Iterator[str]:
    """One JSON line per error: sentence number (1-based, in the split: `positions` are the scored sentences'
    places there when only some were scored), category, gold and predicted span, the words."""
    for pair in analysis.errors():
        words = sentences[pair.sentence]
        record = {"sentence": (pair.sentence if positions is None else positions[pair.sentence]) + 1, "category": pair.category,
                  "gold": span_json(pair.gold, words), "predicted": span_json(pair.predicted, words),
                  "words": list(words)}
        yield json.dumps(record, ensure_ascii=False) + "\n"


def check_errors_path(path: Path) -> None:
    """Raise TaggerError now, before a long run, if the errors file cannot be written at `path`."""
    folder = path.parent
    if path.is_dir():
        raise TaggerError(f"--errors {path}: is a directory; give a file name, e.g. {path / 'errors.jsonl'}")
    if not folder.exists():
        raise TaggerError(f"--errors {path}: folder {folder} does not exist; create it or pick another path")
    if not folder.is_dir():
        raise TaggerError(f"--errors {path}: folder {folder} is a file, not a folder; pick another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise TaggerError(f"--errors {path}: folder {folder} is not writable; pick another path")


def write_errors(path: Path, analysis: ErrorAnalysis, sentences: Sequence[Sequence[str]],
                 positions: Sequence[int] | None = None) -> None:
    """Write the errors file atomically: a complete file or none."""
    write_text_atomic(path, error_lines(analysis, sentences, positions))
