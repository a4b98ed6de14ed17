"""Golden-file tests of the rendered rich tables and the batch summary line.

Each rendering is built from small fixed inputs, printed by a plain 100-column Console (no colour,
no terminal) and compared with `tests/golden/<name>.txt`; a change to a table's layout, wording or
number format then shows as a unified diff instead of passing unseen. After an intended change (or
a rich upgrade that moves a border), rewrite the files and review them in `git diff`:

    TAGGER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden.py

The inputs hold nothing machine-dependent (no real paths, CPUs, versions or timings), so the files
are the same on every machine. Trailing spaces are stripped from each line, so an editor that trims
them cannot break a file.
"""

from __future__ import annotations

import difflib
import io
import os
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

from tagger import sharded
from tagger.annotate import Entity
from tagger.metrics import EvalReport, score
from tagger.render import (
    confusion_table,
    entities_table,
    error_counts_table,
    info_table,
    models_table,
    scores_table,
    summary_table,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("TAGGER_UPDATE_GOLDEN") == "1"

TYPES = ("PERS", "LOC", "ORG", "MISC")  # MISC occurs nowhere: a listed type with no entities
# Five sentences whose errors reach every analysis category once or more.
GOLD = [
    ["B-PERS", "I-PERS", "O", "O", "B-LOC", "O"],  # Тарас Шевченко жив у Києві .
    ["B-LOC", "O", "O", "B-LOC"],  # Львів лежить біля Польщі
    ["O", "B-ORG", "I-ORG", "O", "B-PERS"],  # The United Nations met Olena
    ["B-ORG", "I-ORG", "I-ORG", "O"],  # Київська міська рада заявила
    ["O", "O", "O", "O"],  # nothing to find here
]
PRED = [
    ["B-PERS", "I-PERS", "O", "O", "B-LOC", "O"],  # both correct
    ["B-ORG", "O", "O", "O"],  # LOC as ORG (type); Польщі missed
    ["B-ORG", "I-ORG", "I-ORG", "O", "O"],  # ORG one word too long (boundary); Olena missed
    ["B-LOC", "O", "O", "O"],  # LOC inside the gold ORG (boundary_type)
    ["O", "O", "B-PERS", "O"],  # spurious PERS
]


def report(gold: list[list[str]] = GOLD, pred: list[list[str]] = PRED) -> EvalReport:
    """The report `tagger evaluate` renders, from the inline sentences."""
    return score(gold, pred, types=TYPES, model="tiny.onnx")


DOCUMENT = "Тарас Шевченко жив у Києві. Київська\nміська рада заявила."


def entity(text: str, label: str, probability: float | None) -> Entity:
    """An entity of DOCUMENT at its first occurrence, as the tagger would report it."""
    start = DOCUMENT.index(text)
    return Entity(start, start + len(text), label, text, probability)


ENTITIES = [
    entity("Тарас Шевченко", "PERS", 0.9871),
    entity("Києві", "LOC", None),  # scored beside unscored: an empty score cell
    entity("Київська\nміська рада", "ORG", 0.4),  # a line break inside: shown as ⏎
]

INFO_FLOAT32: dict[str, Any] = {  # the shape of tagger.info.describe
    "file": "models/uk_lstm.onnx",
    "size_bytes": 12_345_678,
    "language": "uk",
    "arch": "lstm",
    "labels": ["LOC", "MISC", "ORG", "PERS"],
    "crf": True,
    "training_data": {"corpus": "benjamin/ner-uk",
                      "sentences": {"train": 10833, "validation": 1307, "test": 668},
                      "validation_held_out": True},
    "license": "CC BY-NC-SA 4.0",
    "scores": {"validation_f1": 0.8612, "test_f1_float32": 0.8523, "test_f1_file": 0.8523, "measured_on": None},
    "quantization": None,
    "trained_at": "2025-01-02T03:04:05Z",
    "exported_at": "2025-01-02T04:05:06Z",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "providers_here": ["CPU"],
}
# Quantised, validation trained on, measured on a named machine: fixed, made-up values, not this one's.
INFO_INT8: dict[str, Any] = {
    **INFO_FLOAT32,
    "file": "models/uk_bert.onnx",
    "size_bytes": 120_000_000,
    "arch": "bert",
    "crf": False,
    "training_data": {**INFO_FLOAT32["training_data"], "validation_held_out": False},
    "scores": {"validation_f1": 0.9501, "test_f1_float32": None, "test_f1_file": 0.9012,
               "measured_on": {"cpu": "Example CPU", "flags": ["AVX2", "AVX-512"], "onnxruntime": "0.0.0"}},
    "quantization": {"method": "dynamic int8, per channel", "test_f1_float32": 0.9034, "test_f1_int8": 0.9012,
                     "float32_bytes": 470_000_000},
    "providers_here": ["CPU", "CUDA"],
}

MODELS: list[dict[str, Any]] = [  # the shape of tagger.info.catalogue
    {"name": "uk", "lang": "uk", "arch": "bert+lstm", "default": True, "labels": ["LOC", "MISC", "ORG", "PERS"],
     "files": [{"file": "uk_bert.onnx", "bytes": 120_000_000}, {"file": "uk_lstm.onnx", "bytes": 12_345_678}],
     "weights": [0.6, 0.4], "test_f1": None, "license": "CC BY-NC-SA 4.0 (ner-uk)"},
    {"name": "uk_bert+lstm", "lang": "uk", "arch": "bert+lstm", "default": False, "labels": ["LOC", "MISC", "ORG", "PERS"],
     "files": [{"file": "uk_bert.onnx", "bytes": 120_000_000}, {"file": "uk_lstm.onnx", "bytes": 12_345_678}],
     "weights": [0.6, 0.4], "test_f1": None, "license": "CC BY-NC-SA 4.0 (ner-uk)"},  # the default's row
    {"name": "uk_bert", "lang": "uk", "arch": "bert", "default": False, "labels": ["LOC", "MISC", "ORG", "PERS"],
     "files": [{"file": "uk_bert.onnx", "bytes": 120_000_000}], "weights": [1.0], "test_f1": 0.9012,
     "license": "CC BY-NC-SA 4.0 (ner-uk)"},
    {"name": "en", "lang": "en", "arch": "lstm", "default": True,
     "labels": ["corporation", "creative-work", "group", "location", "person", "product"],
     "files": [{"file": "en_lstm.onnx", "bytes": 8_000_000}], "weights": [1.0], "test_f1": 0.4321,
     "license": "CC BY 4.0"},
]


def rendered(*renderables: RenderableType) -> str:
    """What a plain 100-column console prints, trailing spaces trimmed."""
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None, force_terminal=False, record=False)
    for renderable in renderables:
        console.print(renderable)
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def summary_line(monkeypatch: pytest.MonkeyPatch) -> str:
    """`Summary.line()` of a fixed run, with a clock that always says 2.5 s after the start."""
    monkeypatch.setattr(sharded, "time", types.SimpleNamespace(perf_counter=lambda: 2.5))
    summary = sharded.Summary(documents=3, words=12_345, entities=678, written=["a.jsonl", "b.jsonl"],
                              skipped=["c.jsonl"], started=0.0)
    return summary.line() + "\n"


RENDERINGS: dict[str, Callable[[], str]] = {
    "entities_scored": lambda: rendered(entities_table("news.txt", ENTITIES)),
    "entities_unscored": lambda: rendered(entities_table("stdin", [Entity(e.start, e.end, e.label, e.text)
                                                                    for e in ENTITIES[:2]])),
    "entities_empty": lambda: rendered(entities_table("empty.txt", [])),
    "scores": lambda: rendered(scores_table(report(), "test split: entity-level scores (exact span and type)")),
    "summary": lambda: rendered(summary_table(report())),
    "error_counts": lambda: rendered(error_counts_table(report())),
    "confusion": lambda: rendered(confusion_table(report())),
    "info_float32": lambda: rendered(info_table(INFO_FLOAT32)),
    "info_int8": lambda: rendered(info_table(INFO_INT8)),
    "models": lambda: rendered(models_table(MODELS)),
}


def difference(name: str, text: str) -> str:
    """A unified diff of the golden file against `text`; empty when they agree."""
    path = GOLDEN / f"{name}.txt"
    golden = path.read_text(encoding="utf-8") if path.is_file() else ""
    return "".join(difflib.unified_diff(golden.splitlines(keepends=True), text.splitlines(keepends=True),
                                        f"tests/golden/{name}.txt", f"{name} (rendered now)"))


def check(name: str, text: str) -> None:
    """Compare with the golden file, failing with a diff; TAGGER_UPDATE_GOLDEN=1 rewrites it instead."""
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        return
    if not path.is_file():
        pytest.fail(f"{path.name} is missing: run with TAGGER_UPDATE_GOLDEN=1 to write it, then review it")
    if diff := difference(name, text):
        pytest.fail(f"{name} differs from its golden file (TAGGER_UPDATE_GOLDEN=1 rewrites it):\n{diff}",
                    pytrace=False)


@pytest.mark.parametrize("name", list(RENDERINGS))
def test_table_matches_its_golden_file(name: str) -> None:
    check(name, RENDERINGS[name]())


def test_summary_line_matches_its_golden_file(monkeypatch: pytest.MonkeyPatch) -> None:
    check("summary_line", summary_line(monkeypatch))


def test_every_golden_file_is_checked() -> None:
    """A golden file no test renders would go stale unseen."""
    names = {p.stem for p in GOLDEN.glob("*.txt")}
    assert names == {*RENDERINGS, "summary_line"}


def test_the_inputs_reach_every_error_category() -> None:
    """The tables are only as thorough as their input: each category occurs, and one type is empty."""
    analysis = report().analysis
    assert analysis is not None and all(analysis.counts().values())
    assert report().per_type["MISC"].support == report().per_type["MISC"].predicted == 0


@pytest.mark.skipif(UPDATE, reason="the golden files are being rewritten")
def test_a_changed_input_fails_the_comparison() -> None:
    """The comparison can fail: one more correct entity changes the scores and the counts."""
    pred = [list(s) for s in PRED]
    pred[1][3] = "B-LOC"  # Польщі found
    text = rendered(scores_table(report(pred=pred), "test split: entity-level scores (exact span and type)"))
    diff = difference("scores", text)
    assert diff.startswith("--- tests/golden/scores.txt")
    with pytest.raises(pytest.fail.Exception, match="scores differs from its golden file"):
        check("scores", text)
