"""Error analysis: a hand-made gold/prediction pair whose every error is known, scored, tabled and written out."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from conftest import TAGS, assert_clean_error, write_corpus
from tagger.analysis import ErrorAnalysis, analyse, error_lines
from tagger.cli import cli
from tagger.metrics import score
from tagger.render import confusion_table, error_counts_table
from tagger.scheme import Span

# Five sentences; every category at least once (spans are half-open word indices):
#   s1 PER[0,2) correct; LOC[4,5) predicted ORG: type; ORG[6,8) predicted ORG[6,7): boundary
#   s2 PER[0,1) no prediction: missed; MISC[2,5) predicted LOC[3,5): boundary_type; LOC[6,7) predicted: spurious
#   s3 LOC[0,3) predicted LOC[0,1) and LOC[2,3): one boundary (first by position), the other spurious
#   s4 no entities at all
#   s5 LOC[0,3) predicted ORG[0,2) and LOC[2,3): the same type wins though it overlaps less; ORG spurious
SENTENCES = [
    ("Іван Франко жив у Львові , Наукове товариство".split(),
     ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "B-ORG", "I-ORG"],
     ["B-PER", "I-PER", "O", "O", "B-ORG", "O", "B-ORG", "O"]),
    ("Петро читав Закон про освіту в Одесі".split(),
     ["B-PER", "O", "B-MISC", "I-MISC", "I-MISC", "O", "O"],
     ["O", "O", "O", "B-LOC", "I-LOC", "O", "B-LOC"]),
    ("Нью Йорк Сіті .".split(), ["B-LOC", "I-LOC", "I-LOC", "O"], ["B-LOC", "O", "B-LOC", "O"]),
    ("Нічого тут немає".split(), ["O", "O", "O"], ["O", "O", "O"]),
    ("Біла Церква Київщини".split(), ["B-LOC", "I-LOC", "I-LOC"], ["B-ORG", "I-ORG", "B-LOC"]),
]
WORDS_HM = [w for w, _, _ in SENTENCES]
GOLD = [g for _, g, _ in SENTENCES]
PRED = [p for _, _, p in SENTENCES]

COUNTS = {"correct": 1, "type": 1, "boundary": 3, "boundary_type": 1, "missed": 1, "spurious": 3}
CONFUSION = {
    "PER": {"PER": {"correct": 1}, "O": {"missed": 1}},
    "LOC": {"ORG": {"type": 1}, "LOC": {"boundary": 2}},
    "ORG": {"ORG": {"boundary": 1}},
    "MISC": {"LOC": {"boundary_type": 1}},
    "O": {"LOC": {"spurious": 2}, "ORG": {"spurious": 1}},
}


def span(start: int, end: int, label: str, words: list[str]) -> dict[str, object]:
    """A span as the errors file writes it."""
    return {"start": start, "end": end, "label": label, "text": " ".join(words[start:end])}


def expected_errors() -> list[tuple[int, str, dict | None, dict | None]]:
    """(sentence, category, gold, predicted) of every error, in file order."""
    w = WORDS_HM
    return [
        (1, "type", span(4, 5, "LOC", w[0]), span(4, 5, "ORG", w[0])),
        (1, "boundary", span(6, 8, "ORG", w[0]), span(6, 7, "ORG", w[0])),
        (2, "missed", span(0, 1, "PER", w[1]), None),
        (2, "boundary_type", span(2, 5, "MISC", w[1]), span(3, 5, "LOC", w[1])),
        (2, "spurious", None, span(6, 7, "LOC", w[1])),
        (3, "boundary", span(0, 3, "LOC", w[2]), span(0, 1, "LOC", w[2])),
        (3, "spurious", None, span(2, 3, "LOC", w[2])),
        (5, "boundary", span(0, 3, "LOC", w[4]), span(2, 3, "LOC", w[4])),
        (5, "spurious", None, span(0, 2, "ORG", w[4])),
    ]


def test_counts_and_confusion_are_known() -> None:
    analysis = analyse(GOLD, PRED)
    assert analysis.counts() == COUNTS
    assert analysis.confusion() == CONFUSION


def test_every_entity_counted_once_and_agrees_with_the_scores() -> None:
    """Rows add up to the gold counts, columns to the predicted counts, correct to the exact matches."""
    report = score(GOLD, PRED)
    assert report.analysis is not None
    confusion = report.analysis.confusion()
    for name, s in report.per_type.items():
        assert sum(sum(cell.values()) for cell in confusion.get(name, {}).values()) == s.support, name
        assert sum(sum(row.get(name, {}).values()) for row in confusion.values()) == s.predicted, name
    assert report.analysis.counts()["correct"] == report.micro.correct == 1


def test_errors_lines_name_sentence_spans_and_words() -> None:
    lines = [json.loads(line) for line in error_lines(analyse(GOLD, PRED), WORDS_HM)]
    assert [(r["sentence"], r["category"], r["gold"], r["predicted"]) for r in lines] == expected_errors()
    assert all(r["words"] == WORDS_HM[r["sentence"] - 1] for r in lines)
    assert all(set(r) == {"sentence", "category", "gold", "predicted", "words"} for r in lines)


def test_perfect_and_empty_predictions() -> None:
    assert analyse(GOLD, GOLD).errors() == [] and analyse(GOLD, GOLD).counts()["correct"] == 7
    nothing = analyse(GOLD, [["O"] * len(g) for g in GOLD])
    assert nothing.counts() == {**dict.fromkeys(COUNTS, 0), "missed": 7}
    assert analyse([], []) == ErrorAnalysis([])


def test_pairs_keep_their_spans() -> None:
    (pair,) = [p for p in analyse(GOLD, PRED).pairs if p.category == "boundary_type"]
    assert (pair.sentence, pair.gold, pair.predicted) == (1, Span(2, 5, "MISC"), Span(3, 5, "LOC"))


def test_report_json_has_the_errors() -> None:
    data = score(GOLD, PRED).to_json()
    assert data["errors"] == {"counts": COUNTS, "confusion": CONFUSION}
    assert json.loads(json.dumps(data)) == data


def render(table: object) -> str:
    """A rich renderable as plain text, 80 columns."""
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_tables_show_counts_and_cells() -> None:
    report = score(GOLD, PRED, types=["PER", "ORG", "LOC", "MISC"])
    counts = render(error_counts_table(report))
    assert "boundary+type" in counts and "│       1 │    1 │        3 │             1 │      1 │        3 │" in counts
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in render(confusion_table(report)).splitlines() if line.startswith("│")}
    assert rows == {  # columns PER ORG LOC MISC O
        "PER": ["1", "·", "·", "·", "1"],
        "ORG": ["·", "+1", "·", "·", "·"],
        "LOC": ["·", "1", "+2", "·", "·"],
        "MISC": ["·", "·", "+1", "·", "·"],
        "O": ["·", "1", "2", "·", "·"],
    }


# --- the CLI: --errors and --json, on a local corpus with a predictions file ----------------------


def conll(words: list[list[str]], tags: list[list[str]]) -> str:
    """Sentences as word<TAB>tag lines."""
    return "".join("".join(f"{w}\t{t}\n" for w, t in zip(ws, ts)) + "\n" for ws, ts in zip(words, tags))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The hand-made gold sentences as a local corpus (every split), with their labels."""
    labels = ["O", *(f"{p}-{t}" for t in ("PER", "ORG", "LOC", "MISC") for p in "BI")]
    return write_corpus(tmp_path / "corpus", conll(WORDS_HM, GOLD), labels)


def run(corpus: Path, *options: str) -> object:
    """`tagger evaluate` of the hand-made predictions."""
    predictions = corpus / "pred.conll"
    predictions.write_text(conll(WORDS_HM, PRED), encoding="utf-8")
    return CliRunner().invoke(cli, ["evaluate", "--data", str(corpus), "--predictions", str(predictions), *options])


def test_cli_writes_errors_and_json(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "errors.jsonl"
    out.write_text("stale\n", encoding="utf-8")  # replaced whole
    result = run(corpus, "--json", "--errors", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["errors"] == {"counts": COUNTS, "confusion": CONFUSION}
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["sentence"], r["category"], r["gold"], r["predicted"]) for r in lines] == expected_errors()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "errors.jsonl"]  # no temporary file left


def test_cli_prints_the_error_tables(corpus: Path) -> None:
    result = run(corpus)
    assert result.exit_code == 0, result.output
    assert "entities by category" in result.stdout and "gold type (rows) x predicted type" in result.stdout


def test_cli_errors_into_a_directory_is_a_usage_error(corpus: Path, tmp_path: Path) -> None:
    assert "is a directory" in assert_clean_error(run(corpus, "--errors", str(tmp_path)), exit_code=2)


@pytest.mark.parametrize("where", ["missing folder", "under a file"])
def test_cli_errors_in_a_folder_that_is_not_there(corpus: Path, tmp_path: Path, where: str) -> None:
    parent = tmp_path / "absent" if where == "missing folder" else corpus / "labels.txt"
    error = assert_clean_error(run(corpus, "--errors", str(parent / "errors.jsonl")))
    assert f"folder {parent} " + ("does not exist" if where == "missing folder" else "is a file") in error


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_cli_errors_in_an_unwritable_folder(corpus: Path, tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    assert "is not writable" in assert_clean_error(run(corpus, "--errors", str(folder / "errors.jsonl")))
    assert list(folder.iterdir()) == []


def test_cli_errors_of_the_tiny_model(exported: Path, session_corpus: Path, tmp_path: Path) -> None:
    """The overfit model makes no error: an empty errors file, every entity correct."""
    out = tmp_path / "errors.jsonl"
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(session_corpus), "--model", str(exported),
                                      "--json", "--errors", str(out)])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["errors"]["counts"]
    assert counts["correct"] == sum(len([t for t in tags if t.startswith("B-")]) for tags in TAGS) == 6
    assert sum(counts.values()) == 6 and out.read_text(encoding="utf-8") == ""
