"""Entity-level scores (tagger.metrics): hand-computed values, the JSON shape, real-corpus counts."""

from __future__ import annotations

import json
from collections import Counter
from fractions import Fraction as F

import pytest

from conftest import shared_corpus
from tagger.conll import read_conll
from tagger.corpus import read_labels
from tagger.metrics import EvalReport, prf, score
from tagger.scheme import tags_to_spans

GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["B-ORG", "I-ORG", "O", "B-PER"],
    ["O", "B-LOC", "I-LOC", "O"],
    ["B-MISC", "O"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-ORG"],  # PER right; LOC predicted as ORG
    ["B-ORG", "O", "O", "B-PER"],  # ORG cut short (wrong span); PER right
    ["O", "I-LOC", "I-LOC", "O"],  # conlleval: I-LOC after O starts LOC(1, 3): right
    ["O", "O"],  # MISC missed
]
# By hand:
#   gold entities: PER(0,0-2) LOC(0,3-4) ORG(1,0-2) PER(1,3-4) LOC(2,1-3) MISC(3,0-1)  -> 6
#   predicted:     PER(0,0-2) ORG(0,3-4) ORG(1,0-1) PER(1,3-4) LOC(2,1-3)              -> 5
#   correct:       PER(0,0-2) PER(1,3-4) LOC(2,1-3)                                    -> 3
#   micro: P = 3/5, R = 3/6 = 1/2, F1 = 2 * 3/5 * 1/2 / (3/5 + 1/2) = (3/5) / (11/10) = 6/11
#   PER:  P = 2/2, R = 2/2, F1 = 1,   support 2
#   LOC:  P = 1/1, R = 1/2, F1 = 2 * 1 * 1/2 / (3/2) = 2/3, support 2
#   ORG:  P = 0/2, R = 0/1, F1 = 0,   support 1
#   MISC: P = 0/0 -> 0, R = 0/1, F1 = 0, support 1
#   macro F1 = (1 + 2/3 + 0 + 0) / 4 = 5/12
#   tokens: 4 + 4 + 4 + 2 = 14; equal: 3 (s1: pos 3 differs) + 3 (s2: pos 1) + 3 (s3: pos 1) + 1 (s4: pos 0) = 10
#   token accuracy = 10/14 = 5/7
EXPECTED = {
    "PER": (F(1), F(1), F(1), 2),
    "LOC": (F(1), F(1, 2), F(2, 3), 2),
    "ORG": (F(0), F(0), F(0), 1),
    "MISC": (F(0), F(0), F(0), 1),
}


def approx(x: F) -> object:
    return pytest.approx(float(x), abs=1e-12)


def test_hand_computed_scores() -> None:
    report = score(GOLD, PRED)
    assert report.micro.precision == approx(F(3, 5))
    assert report.micro.recall == approx(F(1, 2))
    assert report.micro.f1 == approx(F(6, 11))
    assert (report.micro.correct, report.micro.predicted, report.micro.support) == (3, 5, 6)
    assert set(report.per_type) == set(EXPECTED)
    for name, (p, r, f1, support) in EXPECTED.items():
        s = report.per_type[name]
        assert (s.precision, s.recall, s.f1, s.support) == (approx(p), approx(r), approx(f1), support), name
    assert report.per_type["ORG"].predicted == 2
    assert report.macro_f1 == approx(F(5, 12))
    assert report.token_accuracy == approx(F(5, 7))
    assert report.sentences == 4


def test_perfect_and_empty_predictions() -> None:
    perfect = score(GOLD, GOLD)
    assert perfect.micro.f1 == perfect.macro_f1 == perfect.token_accuracy == 1.0
    nothing = score(GOLD, [["O"] * len(s) for s in GOLD])
    assert nothing.micro.precision == nothing.micro.recall == nothing.micro.f1 == 0.0
    assert nothing.micro.support == 6 and nothing.micro.predicted == 0
    assert nothing.token_accuracy == approx(F(5, 14))  # gold O tokens: 1 + 1 + 2 + 1
    empty = score([], [])
    assert empty.micro.f1 == empty.macro_f1 == empty.token_accuracy == 0.0 and empty.sentences == 0


def test_prf_counts_zero_over_zero_as_zero() -> None:
    assert prf(0, 0, 0).f1 == 0.0
    s = prf(2, 4, 8)
    assert (s.precision, s.recall, s.f1) == (0.5, 0.25, pytest.approx(1 / 3))


def test_types_are_reported_even_when_absent() -> None:
    report = score(GOLD, PRED, types=["LOC", "PER", "ORG", "MISC", "DATE"])
    assert list(report.per_type)[:5] == ["LOC", "PER", "ORG", "MISC", "DATE"]
    assert report.per_type["DATE"].support == report.per_type["DATE"].predicted == 0


def test_macro_f1_ignores_types_absent_from_gold_and_predictions() -> None:
    gold = [["B-PER", "I-PER", "O"]]
    report = score(gold, gold, types=["PER", "LOC"])
    assert report.micro.f1 == 1.0
    assert report.macro_f1 == 1.0


def test_sentence_count_and_length_mismatches_raise() -> None:
    with pytest.raises(ValueError, match="4 gold sentences but 3 predicted"):
        score(GOLD, PRED[:3])
    with pytest.raises(ValueError, match="sentence 2: 4 gold tags but 3 predicted"):
        score(GOLD, [PRED[0], PRED[1][:3], PRED[2], PRED[3]])


def test_entities_in_different_sentences_never_match() -> None:
    """Spans are compared with their sentence index: the same span elsewhere is not a hit."""
    gold = [["B-PER", "O"], ["O", "O"]]
    pred = [["O", "O"], ["B-PER", "O"]]
    assert score(gold, pred).micro.correct == 0


def test_to_json_shape() -> None:
    data = score(GOLD, PRED, model="m.onnx").to_json()
    assert set(data) == {"micro", "macro_f1", "per_type", "token_accuracy", "sentences", "model", "errors"}
    assert set(data["micro"]) == {"precision", "recall", "f1"}
    assert set(data["per_type"]) == set(EXPECTED)
    for values in data["per_type"].values():
        assert set(values) == {"precision", "recall", "f1", "support"}
    assert data["model"] == "m.onnx" and data["sentences"] == 4
    assert data["micro"]["f1"] == approx(F(6, 11))
    assert data["per_type"]["LOC"] == {"precision": 1.0, "recall": 0.5, "f1": approx(F(2, 3)), "support": 2}
    assert json.loads(json.dumps(data)) == data  # plain JSON


def test_report_is_frozen() -> None:
    report = score(GOLD, PRED)
    assert isinstance(report, EvalReport)
    with pytest.raises(AttributeError):
        report.macro_f1 = 1.0  # type: ignore[misc]


# --- real corpora: span counts match the documented counts ------------------------------------

NER_UK_ENTITIES = {  # ner-uk README, "Counts"
    "train": {"PERS": 3642, "ORG": 598, "LOC": 1375, "MISC": 548},
    "validation": {"PERS": 528, "ORG": 144, "LOC": 161, "MISC": 79},
    "test": {"PERS": 217, "ORG": 38, "LOC": 78, "MISC": 33},
}
WNUT_TEST_ENTITIES = {"corporation": 66, "creative-work": 142, "group": 165, "location": 150,
                      "person": 429, "product": 127}  # wnut17 README, test column


@pytest.mark.parametrize("split", ["validation", "test"])
def test_ner_uk_entity_counts_match_its_readme(split: str) -> None:
    folder = shared_corpus("ner-uk")
    sentences = read_conll(folder / f"{split}.conll", read_labels(folder, "uk"))
    counts = Counter(span.label for s in sentences for span in tags_to_spans(s.tags))
    assert dict(counts) == NER_UK_ENTITIES[split]
    report = score([s.tags for s in sentences], [s.tags for s in sentences])
    assert report.micro.f1 == 1.0 and report.micro.support == sum(NER_UK_ENTITIES[split].values())


def test_wnut17_test_entity_counts_match_its_readme() -> None:
    folder = shared_corpus("wnut17")
    sentences = read_conll(folder / "test.conll", read_labels(folder, "en"))
    counts = Counter(span.label for s in sentences for span in tags_to_spans(s.tags))
    assert dict(counts) == WNUT_TEST_ENTITIES
