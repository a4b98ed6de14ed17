"""Entity-level scores: exact span and type, micro and per type, as set arithmetic over spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from tagger.analysis import ErrorAnalysis, analyse
from tagger.scheme import tags_to_spans


@dataclass(frozen=True, slots=True)
class Score:
    """Precision, recall and F1 of one entity type (or of all), with gold support."""

    precision: float
    recall: float
    f1: float
    support: int  # gold entities
    predicted: int  # predicted entities
    correct: int  # exact span-and-type matches


@dataclass(frozen=True)
class EvalReport:
    """Scores of predicted tags against gold tags."""

    micro: Score
    per_type: dict[str, Score]
    macro_f1: float
    token_accuracy: float
    sentences: int
    model: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    analysis: ErrorAnalysis | None = None  # every entity paired and categorised (missed, spurious, boundary...)

    def to_json(self) -> dict[str, object]:
        """The `--json` shape of `tagger evaluate`."""
        return {
            "micro": {k: getattr(self.micro, k) for k in ("precision", "recall", "f1")},
            "macro_f1": self.macro_f1,
            "per_type": {
                name: {k: v for k, v in asdict(s).items() if k in ("precision", "recall", "f1", "support")}
                for name, s in self.per_type.items()
            },
            "token_accuracy": self.token_accuracy,
            "sentences": self.sentences,
            "model": self.model,
            **({"errors": self.analysis.to_json()} if self.analysis is not None else {}),
            **self.extra,
        }


def prf(correct: int, predicted: int, support: int) -> Score:
    """Score from counts; 0/0 counts as 0."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(precision, recall, f1, support, predicted, correct)


def score(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    types: Sequence[str] = (),
    model: str = "",
) -> EvalReport:
    """Compare predicted IOB2 tags to gold tags, sentence by sentence.

    Args:
        types: entity types to report even when absent from both (e.g. all the model's types).
    Raises:
        ValueError: if the sentence counts or a sentence's lengths differ.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    gold_set: set[tuple[int, int, int, str]] = set()
    pred_set: set[tuple[int, int, int, str]] = set()
    tokens = same = 0
    for i, (g, p) in enumerate(zip(gold, pred)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i + 1}: {len(g)} gold tags but {len(p)} predicted")
        gold_set.update((i, s.start, s.end, s.label) for s in tags_to_spans(g))
        pred_set.update((i, s.start, s.end, s.label) for s in tags_to_spans(p))
        tokens += len(g)
        same += sum(a == b for a, b in zip(g, p))
    correct = gold_set & pred_set
    names = list(dict.fromkeys([*types, *sorted({e[3] for e in gold_set | pred_set})]))
    per_type = {
        name: prf(
            sum(e[3] == name for e in correct),
            sum(e[3] == name for e in pred_set),
            sum(e[3] == name for e in gold_set),
        )
        for name in names
    }
    # Types with neither gold nor predicted entities are listed but not averaged: F1 is undefined there.
    seen = [s for s in per_type.values() if s.support or s.predicted]
    macro = sum(s.f1 for s in seen) / len(seen) if seen else 0.0
    return EvalReport(
        micro=prf(len(correct), len(pred_set), len(gold_set)),
        per_type=per_type,
        macro_f1=macro,
        token_accuracy=same / tokens if tokens else 0.0,
        sentences=len(gold),
        model=model,
        analysis=analyse(gold, pred),
    )
