"""Scoring a model, or an external prediction file, against a gold split."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path

from tagger.conll import Sentence, read_conll
from tagger.errors import DataFormatError
from tagger.metrics import EvalReport, score
from tagger.predict import SentenceTagger
from tagger.scheme import entity_types


def evaluate(tagger: SentenceTagger, gold: Sequence[Sentence], model: str = "",
             documents: Sequence[Hashable] | None = None) -> EvalReport:
    """Entity-level scores of `tagger` on gold sentences (tagged as given, no re-tokenising).

    `documents`: each sentence's document, so a model with document context reads each document
    alone, as `tag` reads its inputs; None reads the split as one text, as training did.
    """
    pred = tagger.tag([s.words for s in gold], documents)
    return score([s.tags for s in gold], pred, types=entity_types(tagger.labels), model=model)


def read_predictions(path: Path, gold: Sequence[Sentence], labels: Sequence[str]) -> list[list[str]]:
    """Predicted tags of a `token<TAB>tag` file, aligned with the gold sentences by position."""
    pred = read_conll(path, labels)
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g.words) != len(p.words):
            raise DataFormatError(
                str(path), p.line_no,
                f"sentence {i + 1} has {len(p.words)} tokens but the gold sentence has {len(g.words)}"
                f" (gold starts with {' '.join(g.words[:5])!r}); predictions must follow the gold split",
                " ".join(p.words),
            )
    if len(pred) != len(gold):
        raise DataFormatError(
            str(path), pred[-1].line_no if pred else 1,
            f"{len(pred)} sentences but the gold split has {len(gold)}; predictions must cover it all",
        )
    return [p.tags for p in pred]


def evaluate_predictions(path: Path, gold: Sequence[Sentence], labels: Sequence[str]) -> EvalReport:
    """Entity-level scores of a prediction file (conlleval convention for stray I- tags)."""
    pred = read_predictions(path, gold, labels)
    return score([s.tags for s in gold], pred, types=entity_types(labels), model=str(path))
