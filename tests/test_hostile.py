"""Hostile input: bad files, odd text, broken models and checkpoints, pipes, signals, full disks, scale.

Every failure must be one `Error: ...` line (what, where, how to fix) and a non-zero exit, never a
traceback. Most cases run the real `tagger` console script in a subprocess; the tiny model is
trained and exported once, here, so these tests do not depend on other modules' fixtures.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Before anything imports `datasets`: never write its cache into the home folder.
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="tagger-hostile-hf-"))
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import quiet_export
import tagger.annotate as annotate_module
from tagger.annotate import DocStart, Entity, TaggedSentence, annotate
from tagger.documents import Document

TAGGER = Path(sys.executable).with_name("tagger")  # the installed console script
LABELS = ["O", "B-PERS", "I-PERS", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL = (
    "Тарас\tB-PERS\nШевченко\tI-PERS\nнародився\tO\nв\tO\nМоринцях\tB-LOC\n.\tO\n\n"
    "Київський\tB-ORG\nуніверситет\tI-ORG\nрозташований\tO\nу\tO\nКиєві\tB-LOC\n.\tO\n\n"
    "Президент\tO\nВолодимир\tB-PERS\nЗеленський\tI-PERS\nпідписав\tO\nЗакон\tB-MISC\nпро\tI-MISC\nосвіту\tI-MISC\n.\tO\n"
)
WORDS = ["Тарас", "Шевченко", "народився", "в", "Києві", ".", "Володимир", "Зеленський", "підписав", "Закон", "про", "освіту"]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa" + bytes(200)
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00>\x00\x01\x00\x00\x00" + bytes(200)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# --- the tiny model and helpers --------------------------------------------------------------------


@dataclass(frozen=True)
class Tiny:
    """The tiny model of this module: its corpus, checkpoint, ONNX file and a loaded Tagger."""

    corpus: Path
    checkpoint: Path
    onnx: Path
    hf_cache: Path


def write_corpus(folder: Path, conll: str = CONLL) -> Path:
    """A corpus folder: train = validation = test = `conll`, plus labels.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        (folder / f"{split}.conll").write_text(conll, encoding="utf-8")
    (folder / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    """Train (20 short epochs, a few thousand parameters) and export a tiny Ukrainian BiLSTM once.

    Three epochs leave it tagging every word O, which would make every entity check vacuous;
    twenty at a high learning rate make it find entities in its own words (under a second).
    """
    import torch
    from rich.console import Console

    from tagger.train.config import TrainConfig
    from tagger.train.loop import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hostile")
    corpus = write_corpus(root / "corpus")
    out = root / "model"
    config = TrainConfig(lang="uk", data=str(corpus), out=str(out), hidden=8, layers=1, word_dim=8,
                         char_dim=8, char_filters=8, epochs=20, patience=20, lr=0.05, dropout=0.0,
                         word_dropout=0.0, device="cpu")
    train(config, Console(file=io.StringIO()))
    report = quiet_export(out / "best_lstm.pth")
    hf_cache = root / "hf"
    hf_cache.mkdir()
    return Tiny(corpus, out / "best_lstm.pth", Path(report.path), hf_cache)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def runner_tagger(tiny: Tiny) -> object:
    """The tiny model loaded in this process, for the property tests."""
    from tagger.artifact import load_artifact
    from tagger.predict import Tagger

    return Tagger(load_artifact(tiny.onnx, "cpu"))


def env_of(tiny: Tiny) -> dict[str, str]:
    """The environment of a `tagger` subprocess: one thread, offline, a private cache, 80 columns."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_CACHE": str(tiny.hf_cache), "COLUMNS": "80"}


def run(tiny: Tiny, *args: object, stdin: bytes | None = None, timeout: float = 60, **kwargs: object
        ) -> subprocess.CompletedProcess[bytes]:
    """Run the real `tagger` console script."""
    return subprocess.run([str(TAGGER), *map(str, args)], input=stdin, capture_output=True, timeout=timeout, check=False,
                          env=env_of(tiny), **kwargs)  # type: ignore[call-overload]


def tag(tiny: Tiny, *args: object, stdin: bytes | None = None, model: Path | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    """`tagger tag --model TINY ...` (or another model)."""
    return run(tiny, "tag", "--model", model or tiny.onnx, *args, stdin=b"" if stdin is None else stdin)


def assert_no_noise(stderr: str) -> None:
    """No traceback, no interpreter shutdown complaint, no click 'Aborted!'."""
    for noise in ("Traceback", "Exception ignored", "Aborted!", "BrokenPipeError"):
        assert noise not in stderr, stderr


def one_line_error(proc: subprocess.CompletedProcess[bytes], code: int = 1) -> str:
    """The failed command's message: exit `code`, one `Error: ...` line, last on stderr, no traceback."""
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == code, (proc.returncode, stderr)
    assert_no_noise(stderr)
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip("\n").splitlines()[-1] == errors[0], stderr
    return errors[0]


def ok(proc: subprocess.CompletedProcess[bytes]) -> str:
    """stdout of a command that must succeed quietly (one informational line at most on stderr)."""
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, stderr
    assert_no_noise(stderr)
    return proc.stdout.decode("utf-8")


def conll_words(stdout: str) -> dict[str, list[str]]:
    """The words of `--format conll` output, per document source; checks every tag is IOB2."""
    docs: dict[str, list[str]] = {}
    current = None
    for line in stdout.split("\n"):
        if line.startswith("# source = ") and "\t" not in line:
            current = line.removeprefix("# source = ")
            docs[current] = []
        elif line:
            word, tag_ = line.split("\t")
            assert tag_ in LABELS, line
            assert current is not None
            docs[current].append(word)
    return docs


def assert_round_trip(tiny: Tiny, path: Path, text: str) -> None:
    """Tag `path` (whose text as read is `text`): words cover every non-space character in order,
    and every entity slices back out of the text."""
    words = conll_words(ok(tag(tiny, "--format", "conll", path)))
    assert list(words) == [str(path)]
    assert "".join(words[str(path)]) == "".join(c for c in text if not c.isspace())
    lines = ok(tag(tiny, "--format", "jsonl", path)).splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["source"] == str(path)
    for entity in record["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"], entity
        assert entity["text"] and not entity["text"][0].isspace() and not entity["text"][-1].isspace()


# --- files ---------------------------------------------------------------------------------------------


def test_missing_input_file_fails_before_the_model_loads(tiny: Tiny, tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Київ", encoding="utf-8")
    proc = tag(tiny, good, tmp_path / "absent.txt")
    error = one_line_error(proc)
    assert f"{tmp_path / 'absent.txt'}: no such file" in error and "check the path" in error
    assert proc.stdout == b""  # the good file before it was not tagged either: checked up front
    assert b" on CPU" not in proc.stderr and b" on CUDA" not in proc.stderr


def test_directory_input(tiny: Tiny, tmp_path: Path) -> None:
    error = one_line_error(tag(tiny, tmp_path))
    assert f"{tmp_path}: is a directory" in error and "*.txt" in error


@pytest.mark.skipif(IS_ROOT, reason="runs as root: chmod 000 does not stop root from reading")
def test_unreadable_input(tiny: Tiny, tmp_path: Path) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("Київ", encoding="utf-8")
    path.chmod(0)
    try:
        error = one_line_error(tag(tiny, path))
    finally:
        path.chmod(0o600)
    assert f"{path}: cannot be read" in error and "permission" in error


@pytest.mark.parametrize(("name", "data"), [("image.png", PNG), ("a.out", ELF)])
@pytest.mark.parametrize("errors", ["strict", "replace"])
def test_binary_input(tiny: Tiny, tmp_path: Path, name: str, data: bytes, errors: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    error = one_line_error(tag(tiny, "--encoding-errors", errors, path))
    assert f"{path}: looks like a binary file" in error


def test_utf16_input_is_named_as_such(tiny: Tiny, tmp_path: Path) -> None:
    path = tmp_path / "utf16.txt"
    path.write_bytes("Тарас Шевченко\n".encode("utf-16"))
    error = one_line_error(tag(tiny, path))
    assert f"{path}: UTF-16" in error and "convert it to UTF-8" in error


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("lines", [[], ["--lines"]])
def test_invalid_utf8_names_file_and_byte_offset(tiny: Tiny, tmp_path: Path, bom: bytes, lines: list[str]) -> None:
    head = bom + "Тарас Шевченко\nнародився в ".encode()
    path = tmp_path / "bad.txt"
    path.write_bytes(head + b"\xc3\x28 " + "Києві\n".encode())
    error = one_line_error(tag(tiny, *lines, path))
    assert f"{path}: not valid UTF-8 at byte offset {len(head)}" in error  # a file offset: BOM included
    assert "--encoding-errors replace" in error
    # The explicit opt-in reads the bad byte as U+FFFD, and nothing else changes.
    words = conll_words(ok(tag(tiny, *lines, "--encoding-errors", "replace", "--format", "conll", path)))
    assert "".join(w for ws in words.values() for w in ws) == "ТарасШевченконародивсяв\ufffd(Києві"


def test_invalid_utf8_on_stdin(tiny: Tiny) -> None:
    error = one_line_error(tag(tiny, stdin="Київ ".encode() + b"\xff"))
    assert f"<stdin>: not valid UTF-8 at byte offset {len('Київ '.encode())}" in error


def test_bom_and_crlf_are_accepted_and_offsets_index_the_text_as_read(tiny: Tiny, tmp_path: Path) -> None:
    text = "Тарас Шевченко народився в Києві.\r\nВолодимир Зеленський підписав Закон.\r\n\r\nЛьвів\r\n"
    path = tmp_path / "windows.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert_round_trip(tiny, path, text)  # text as read: BOM dropped, CRLF kept
    record = json.loads(ok(tag(tiny, "--format", "jsonl", path)))
    assert record["entities"], "the tiny model finds entities in its own training words"
    assert max(e["end"] for e in record["entities"]) > text.index("\r\n")  # offsets past a CRLF too
    # Each line as a document: offsets index that line, CRLF included.
    lines = [json.loads(line) for line in ok(tag(tiny, "--lines", "--format", "jsonl", path)).splitlines()]
    assert [r["source"] for r in lines] == [f"{path}:{i}" for i in range(1, 5)]
    for record, line in zip(lines, text.splitlines(keepends=True)):
        for entity in record["entities"]:
            assert line[entity["start"] : entity["end"]] == entity["text"]


# --- text ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  \n\t\r\n\u00a0\u2028\u3000 "])
@pytest.mark.parametrize("fmt", ["jsonl", "conll", "table"])
def test_empty_and_whitespace_only_input_is_an_empty_result(tiny: Tiny, tmp_path: Path, text: str, fmt: str) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(text, encoding="utf-8")
    for source, proc in ((str(path), tag(tiny, "--format", fmt, path)), ("<stdin>", tag(tiny, "--format", fmt, stdin=text.encode()))):
        out = ok(proc)
        if fmt == "jsonl":
            assert [json.loads(line) for line in out.splitlines()] == [{"source": source, "entities": []}]
        elif fmt == "conll":
            assert out == f"# source = {source}\n"
        else:
            assert "0 entities" in out


HOSTILE = {
    "nul": "Тарас\x00Шевченко \x00 народився\x00\x00 в Києві.\x00",
    "emoji": "Тарас 👩‍👩‍👧‍👦 Шевченко🇺🇦 народився 👍🏽 в Києві 😀. Київ🎉Львів ❤️ #️⃣",
    "combining": "Та\u0301рас Шевче\u0301нко йі\u0308 Z\u0351\u0352a\u0353l\u0354g\u0355o\u0301\u0302 \u0301 в Києві.",
    "rtl": "Тарас \u202eШевченко\u202c народився в \u05d9\u05e8\u05d5\u05e9\u05dc\u05d9\u05dd "
           "\u0627\u0644\u0642\u0627\u0647\u0631\u0629 \u200fКиєві\u200e. مرحبا 123 שלום",
    "mixed": "Тарас Shevchenko 塔拉斯·舍甫琴科 तारास Ταράς ტარას Київ-Kyiv м'ясо Ʉ ǅ ﬁ Ⅻ 𝔗𝔞𝔯𝔞𝔰.",
    "controls": "Тарас\x01\x02 Шевченко\x1b[31m червоний\x7f \ufeff Київ\u200b Львів\u2060. \x85 Одеса\u2029Крим\x0c",
    "lone_cr": "Тарас Шевченко\rнародився в Києві.\rВолодимир\r",
    "long_word": "Тарас " + "Ш" * 5000 + " Київ " + "ї" * 3000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_text_is_tagged_whole_and_slices_back(tiny: Tiny, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.txt"
    path.write_bytes(HOSTILE[name].encode("utf-8"))
    assert_round_trip(tiny, path, HOSTILE[name])


def test_hostile_text_on_stdin_with_lines(tiny: Tiny) -> None:
    text = "\n".join(HOSTILE[name] for name in sorted(HOSTILE)) + "\n"
    docs = conll_words(ok(tag(tiny, "--lines", "--format", "conll", stdin=text.encode())))
    lines = text.split("\n")[:-1]  # what --lines calls a line: up to each "\n"
    assert list(docs) == [f"<stdin>:{i}" for i in range(1, len(lines) + 1)]
    for words, line in zip(docs.values(), lines):
        assert "".join(words) == "".join(c for c in line if not c.isspace())


@pytest.mark.parametrize("kind", ["words", "no_whitespace"])
def test_ten_megabyte_line_without_punctuation(tiny: Tiny, tmp_path: Path, kind: str) -> None:
    rng = random.Random(7)
    if kind == "words":  # long words, single spaces, no punctuation, no newline
        alphabet = "абвгдеєжзиіїйклмнопрстуфхцчшщьюяabcdefghijklmnopqrstuvwxyz"
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(300, 1500))) for _ in range(40)]
        parts, size = [], 0
        while size < 10_000_000:
            word = rng.choice(words) if rng.random() < 0.9 else rng.choice(["Тарас", "Шевченко", "Київ"])
            parts.append(word)
            size += len(word.encode()) + 1
        text = " ".join(parts)
    else:  # not a single whitespace in 10 MB
        text = "Київ" + "ж" * 5_000_000
    path = tmp_path / "long.txt"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size >= 10_000_000
    assert_round_trip(tiny, path, text)


def test_line_longer_than_a_segment_with_lines(tiny: Tiny, tmp_path: Path) -> None:
    """--lines streams a line larger than the reader's pieces: later lines keep their numbers."""
    long_line = " ".join(["Тарас", "Шевченко", "ж" * 700_000, "Київ"] * 2) + "\n"  # about 2.8 MB
    text = "Київ\n" + long_line + "\n" + long_line.rstrip("\n")  # the last line has no newline
    path = tmp_path / "lines.txt"
    path.write_text(text, encoding="utf-8")
    docs = conll_words(ok(tag(tiny, "--lines", "--format", "conll", path)))
    lines = text.split("\n")
    assert list(docs) == [f"{path}:{i}" for i in range(1, len(lines) + 1)]
    for words, line in zip(docs.values(), lines):
        assert "".join(words) == "".join(c for c in line if not c.isspace())


def test_internal_errors_are_not_hidden(tiny: Tiny) -> None:
    """Only known failures become one-line errors: a bug keeps its exception (and traceback)."""
    import errno

    from click.testing import CliRunner

    from tagger.cli import cli

    for bug in (RuntimeError("boom"), OSError(errno.EBADF, "Bad file descriptor")):
        with mock.patch("tagger.predict.Tagger.tag_scored", side_effect=bug):
            result = CliRunner().invoke(cli, ["tag", "--model", str(tiny.onnx)], input="Київ")
        assert result.exception is bug and result.exit_code == 1


# --- property tests: words and entities slice back; batched equals one at a time ---------------------

SPECIALS = [
    "Тарас", "Шевченко", "Київ", "Києві", "Зеленський", " ", "  ", "\n", "\r\n", "\r", "\t", ".", "!", "?", "…",
    "\x00", "\u00a0", "\u2028", "\u200b", "\u200d", "\ufeff", "\u0301", "\u0308", "\u202e", "\u200f",
    "👩‍👩‍👧", "🇺🇦", "👍🏽", "😀", "ש", "ل", "中", "é", "'", "’", "-", "@", "#", "https://x.ua/a?b=1.",
    "a@b.ua", "1,5", "2014-го", "т.д.", "Т.", "ǅ", "ﬁ", "𝔗",
]
TEXTS = st.lists(st.one_of(st.sampled_from(SPECIALS), st.text(max_size=4)), max_size=25).map("".join)


def segmented(text: str, cuts: list[int]) -> list[str]:
    """`text` cut at the given positions (a document's segments)."""
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)]) if b > a] or [""]


def events_of(tagger: object, docs: list[tuple[str, list[str]]]) -> list[object]:
    """All events of annotating the documents together."""
    return list(annotate([Document(source, list(segments)) for source, segments in docs], tagger, "uk"))  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, st.lists(st.integers(0, 10_000), max_size=4))
def test_words_and_entities_slice_back_to_the_text(runner_tagger: object, text: str, cuts: list[int]) -> None:
    events = events_of(runner_tagger, [("doc", segmented(text, cuts))])
    assert isinstance(events[0], DocStart) and len(events) >= 2
    tokens = [t for e in events if isinstance(e, TaggedSentence) for t in e.tokens]
    entities: list[Entity] = [x for e in events if isinstance(e, TaggedSentence) for x in e.entities]
    for token in tokens:
        assert text[token.start : token.end] == token.text and token.text
    assert all(a.end <= b.start for a, b in itertools.pairwise(tokens))  # in order, never overlapping
    assert "".join(t.text for t in tokens) == "".join(c for c in text if not c.isspace())
    starts, ends = {t.start for t in tokens}, {t.end for t in tokens}
    for entity in entities:
        assert text[entity.start : entity.end] == entity.text
        assert entity.start in starts and entity.end in ends  # whole words only


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXTS, min_size=1, max_size=6), st.integers(1, 40))
def test_batched_results_equal_one_at_a_time(runner_tagger: object, texts: list[str], block: int) -> None:
    docs = [(f"d{i}", [text]) for i, text in enumerate(texts)]
    alone = [event for doc in docs for event in events_of(runner_tagger, [doc])]
    assert events_of(runner_tagger, docs) == alone
    with mock.patch.object(annotate_module, "BLOCK_WORDS", block):  # flushes between and inside documents
        assert events_of(runner_tagger, docs) == alone


# --- data files -------------------------------------------------------------------------------------


def bad_corpus(tmp_path: Path, split: str, conll: str) -> Path:
    """The tiny corpus with one split replaced."""
    folder = write_corpus(tmp_path / "corpus")
    (folder / f"{split}.conll").write_text(conll, encoding="utf-8")
    return folder


WRONG_COLUMNS = CONLL.replace("народився\tO\n", "народився\tO\tзайве\n")  # line 3
UNKNOWN_LABEL = CONLL.replace("народився\tO\n", "народився\tB-FOO\n")  # line 3
MISSING_TAG = CONLL.replace("народився\tO\n", "народився\n")  # line 3


@pytest.mark.parametrize(("conll", "problem", "shown"), [
    (WRONG_COLUMNS, "expected 2 columns (token, tag), found 3", "'народився\\tO\\tзайве'"),
    (MISSING_TAG, "expected 2 columns (token, tag), found 1", "'народився'"),
    (UNKNOWN_LABEL, "unknown label 'B-FOO'; known: O, B-PERS", "'народився\\tB-FOO'"),
])
def test_bad_predictions_file(tiny: Tiny, tmp_path: Path, conll: str, problem: str, shown: str) -> None:
    predictions = tmp_path / "pred.conll"
    predictions.write_text(conll, encoding="utf-8")
    error = one_line_error(run(tiny, "evaluate", "--data", tiny.corpus, "--predictions", predictions))
    assert f"{predictions}:3: {problem}" in error and shown in error


@pytest.mark.parametrize(("conll", "problem", "shown"), [
    (WRONG_COLUMNS, "expected 2 columns (token, tag), found 3", "'народився\\tO\\tзайве'"),
    (UNKNOWN_LABEL, "unknown label 'B-FOO'", "'народився\\tB-FOO'"),
])
def test_bad_gold_split_in_evaluate(tiny: Tiny, tmp_path: Path, conll: str, problem: str, shown: str) -> None:
    folder = bad_corpus(tmp_path, "test", conll)
    error = one_line_error(run(tiny, "evaluate", "--data", folder, "--model", tiny.onnx))
    assert f"{folder / 'test.conll'}:3: {problem}" in error and shown in error


def test_predictions_length_mismatch_names_file_and_line(tiny: Tiny, tmp_path: Path) -> None:
    predictions = tmp_path / "pred.conll"
    predictions.write_text(CONLL.replace("Київський\tB-ORG\n", ""), encoding="utf-8")  # sentence 2, line 8
    error = one_line_error(run(tiny, "evaluate", "--data", tiny.corpus, "--predictions", predictions))
    assert f"{predictions}:8: sentence 2 has 5 tokens but the gold sentence has 6" in error


def test_predictions_length_mismatch_shows_the_offending_line(tiny: Tiny, tmp_path: Path) -> None:
    predictions = tmp_path / "pred.conll"
    predictions.write_text(CONLL.replace("Київський\tB-ORG\n", ""), encoding="utf-8")
    error = one_line_error(run(tiny, "evaluate", "--data", tiny.corpus, "--predictions", predictions))
    assert "'університет розташований у Києві .'" in error


@pytest.mark.parametrize("content", ["", "\n\n \n"])
def test_empty_split_in_evaluate(tiny: Tiny, tmp_path: Path, content: str) -> None:
    folder = bad_corpus(tmp_path, "test", content)
    error = one_line_error(run(tiny, "evaluate", "--data", folder, "--model", tiny.onnx))
    assert f"{folder / 'test.conll'}:1: no sentences found" in error
    predictions = tmp_path / "empty.conll"
    predictions.write_text(content, encoding="utf-8")
    error = one_line_error(run(tiny, "evaluate", "--data", tiny.corpus, "--predictions", predictions))
    assert f"{predictions}:1: no sentences found" in error


def invoke(args: list[str]) -> tuple[int, str, BaseException | None]:
    """Run a torch-side command (train/export) in this process, where torch is already imported."""
    import torch
    from click.testing import CliRunner

    from tagger.cli import cli

    with warnings.catch_warnings():  # torch ignores its TracerWarnings outside pytest's "error" filter
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.")
        result = CliRunner().invoke(cli, args)
    return result.exit_code, result.output, result.exception


def assert_invoked_error(result: tuple[int, str, BaseException | None]) -> str:
    """The CliRunner twin of one_line_error."""
    code, output, exception = result
    assert code == 1 and isinstance(exception, SystemExit), (code, output, exception)
    assert "Traceback" not in output
    assert output.rstrip("\n").splitlines()[-1].startswith("Error: "), output
    return output.rstrip("\n").splitlines()[-1]


TINY_TRAIN = ["--epochs", "1", "--hidden", "8", "--layers", "1", "--word-dim", "8", "--char-dim", "8",
              "--char-filters", "8", "--device", "cpu"]


@pytest.mark.parametrize(("split", "conll", "line", "problem"), [
    ("train", WRONG_COLUMNS, 3, "expected 2 columns (token, tag), found 3: 'народився\\tO\\tзайве'"),
    ("train", UNKNOWN_LABEL, 3, "unknown label 'B-FOO'"),
    ("validation", "", 1, "no sentences found"),
])
def test_bad_data_in_train(tiny: Tiny, tmp_path: Path, split: str, conll: str, line: int, problem: str) -> None:
    folder = bad_corpus(tmp_path, split, conll)
    error = assert_invoked_error(invoke(["train", "--data", str(folder), "--out", str(tmp_path / "out"), *TINY_TRAIN]))
    assert f"{folder / f'{split}.conll'}:{line}: {problem}" in error
    assert not list((tmp_path / "out").glob("*.pth"))


# --- models -----------------------------------------------------------------------------------------


def tagger_header(path: Path) -> dict[str, object]:
    """The JSON header of an exported model."""
    import onnx

    return json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["tagger"])


def rewrite(source: Path, target: Path, header: dict[str, object] | None) -> Path:
    """A copy of `source` with another tagger header (None: no tagger metadata at all)."""
    import onnx

    graph = onnx.load(str(source))
    del graph.metadata_props[:]
    if header is not None:
        onnx.helper.set_model_props(graph, {"tagger": json.dumps(header)})
    onnx.save(graph, str(target))
    return target


BAD_MODELS = [
    ("missing", "no such file; pass a .onnx file made by `tagger export`"),
    ("truncated", "not a loadable ONNX model"),
    ("not_onnx", "not a loadable ONNX model"),
    ("empty", "not a loadable ONNX model"),
    ("plain_onnx", "an ONNX model but not a tagger model (no 'tagger' metadata); make one with `tagger export"),
    ("newer", "model format 99 is newer than this tagger reads (2); upgrade"),
    ("labels_mismatch", "the graph scores 9 labels but the header lists 7"),
    ("header_lacks_labels", "tagger header lacks labels; re-export"),
    ("header_not_json", "tagger metadata is not valid JSON"),
]
EVALUATE_TOO = ("missing", "truncated", "plain_onnx", "labels_mismatch")  # evaluate loads models as tag does


@pytest.mark.parametrize(("case", "expected", "command"), [(*c, "tag") for c in BAD_MODELS]
                         + [(*c, "evaluate") for c in BAD_MODELS if c[0] in EVALUATE_TOO])
def test_bad_model_file(tiny: Tiny, tmp_path: Path, case: str, expected: str, command: str) -> None:
    path = tmp_path / f"{case}.onnx"
    header = tagger_header(tiny.onnx)
    if case == "truncated":
        path.write_bytes(tiny.onnx.read_bytes()[: tiny.onnx.stat().st_size // 3])
    elif case == "not_onnx":
        path.write_text("Тарас Шевченко\n", encoding="utf-8")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "plain_onnx":
        rewrite(tiny.onnx, path, None)
    elif case == "newer":
        rewrite(tiny.onnx, path, {**header, "format_version": 99})
    elif case == "labels_mismatch":
        rewrite(tiny.onnx, path, {**header, "labels": LABELS[:7]})
    elif case == "header_lacks_labels":
        rewrite(tiny.onnx, path, {k: v for k, v in header.items() if k != "labels"})
    elif case == "header_not_json":
        import onnx

        graph = onnx.load(str(tiny.onnx))
        del graph.metadata_props[:]
        onnx.helper.set_model_props(graph, {"tagger": "{not json"})
        onnx.save(graph, str(path))
    if command == "tag":
        proc = tag(tiny, stdin="Київ".encode(), model=path)
    else:
        proc = run(tiny, "evaluate", "--data", tiny.corpus, "--model", path)
    error = one_line_error(proc)
    assert f"{path}: " in error and expected in error
    assert proc.stdout == b""


@pytest.mark.parametrize(("args", "expected"), [
    (["--lang", "en", "--arch", "bert"], "no shipped bert model for language 'en'"),
    (["--lang", "en"], "no shipped lstm or bert+lstm or bert model for language 'en'"),
    ([], "no shipped bert+lstm or bert or lstm model for language 'uk'"),
])
def test_lang_without_a_default_model(args: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import tagger.shipped as shipped_module
    from tagger.cli import cli

    # An install whose assets hold no model (the shipped ones are looked up in this folder).
    monkeypatch.setattr(shipped_module, "assets_folder", lambda: tmp_path)
    result = CliRunner().invoke(cli, ["tag", *args], input="Kyiv")
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert expected in line and "pass --model FILE.onnx" in line


# --- checkpoints ---------------------------------------------------------------------------------------


class Payload:
    """Pickles as a call to os.mkdir: loading it without weights_only would create `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (os.mkdir, (str(self.marker),))


def evil_checkpoint(tiny: Tiny, tmp_path: Path) -> tuple[Path, Path]:
    """A real checkpoint with a pickle payload added; and the marker the payload would create."""
    import torch

    marker = tmp_path / "payload-ran"
    checkpoint = torch.load(tiny.checkpoint, weights_only=True)
    path = tmp_path / "evil.pth"
    torch.save({**checkpoint, "extra": Payload(marker)}, path)
    return path, marker


def test_pickle_payload_in_a_checkpoint_is_refused_and_never_runs(tiny: Tiny, tmp_path: Path) -> None:
    import torch

    path, marker = evil_checkpoint(tiny, tmp_path)
    proc = run(tiny, "export", path)
    error = one_line_error(proc)
    assert f"{path}: refused" in error
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "evil.onnx").exists()
    # The payload is live: loading the file the unsafe way runs it (this is what was refused).
    torch.load(path, weights_only=False)
    assert marker.is_dir()


def test_pickle_payload_refusal_names_the_forbidden_global(tiny: Tiny, tmp_path: Path) -> None:
    path, _ = evil_checkpoint(tiny, tmp_path)
    error = assert_invoked_error(invoke(["export", str(path)]))
    assert "posix.mkdir" in error and "Re-running" not in error and "weights_only" not in error


# --- devices -------------------------------------------------------------------------------------------


def cuda_runs() -> bool:
    """Whether this machine could run the CUDA provider at all."""
    import onnxruntime as ort

    from tagger.runtime import CUDA, has_cuda_driver

    return CUDA in ort.get_available_providers() and has_cuda_driver()


def test_device_cuda_without_a_gpu(tiny: Tiny) -> None:
    if cuda_runs():
        pytest.skip("an NVIDIA driver is present: --device cuda may work here")
    proc = tag(tiny, "--device", "cuda", stdin="Київ".encode())
    error = one_line_error(proc)
    assert "--device cuda" in error and "--device cpu" in error
    assert proc.stdout == b""


def test_device_auto_falls_back_quietly_and_names_the_provider_once(tiny: Tiny) -> None:
    proc = tag(tiny, "--device", "auto", stdin="Тарас Шевченко народився в Києві.".encode())
    ok(proc)
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines  # no ONNX Runtime log lines
    expected = "CUDA" if cuda_runs() else "CPU"
    assert lines[0].startswith("tagger: ") and lines[0].endswith(f" on {expected}"), lines


# --- pipes, signals, unwritable outputs ----------------------------------------------------------------


@pytest.fixture(scope="session")
def big_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 3 MB of sentences, one a line (a few seconds of tagging)."""
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("big") / "big.txt"
    with path.open("w", encoding="utf-8") as f:
        for _ in range(25_000):
            f.write(" ".join(rng.choice(WORDS) for _ in range(12)) + "\n")
    return path


@pytest.mark.parametrize("args", [["--format", "jsonl", "--lines"], ["--format", "conll"],
                                  ["--format", "table", "--lines"]])
def test_broken_pipe_ends_quietly(tiny: Tiny, big_text: Path, tmp_path: Path, args: list[str]) -> None:
    command = " ".join([str(TAGGER), "tag", "--model", str(tiny.onnx), *args, str(big_text)])
    script = f'{command} 2> "{tmp_path}/err" | head -1 > "{tmp_path}/out"; echo "${{PIPESTATUS[0]}}" > "{tmp_path}/rc"'
    started = time.monotonic()
    subprocess.run(["bash", "-c", script], check=True, timeout=60, env=env_of(tiny))
    assert time.monotonic() - started < 30  # it stopped early: the whole file takes longer
    stderr = (tmp_path / "err").read_text()
    assert_no_noise(stderr)
    assert stderr.splitlines() == [f"tagger: {tiny.onnx.name} (lstm, uk) on CPU"] or cuda_runs()
    assert (tmp_path / "out").read_text().count("\n") == 1
    assert (tmp_path / "rc").read_text().strip() == "1"


@pytest.mark.parametrize("args", [["--format", "jsonl"], ["--format", "conll"], ["--format", "table"]])
def test_full_stdout_is_a_one_line_error(tiny: Tiny, args: list[str]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([str(TAGGER), "tag", "--model", str(tiny.onnx), *args], input=b"Kyiv",
                              stdout=full, stderr=subprocess.PIPE, timeout=60, env=env_of(tiny), check=False)
    error = one_line_error(proc)  # exit 1, not 120 from a failed flush at interpreter exit
    assert "<stdout>: cannot write the results (No space left on device)" in error


def test_full_stdout_in_evaluate(tiny: Tiny) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        proc = subprocess.run([str(TAGGER), "evaluate", "--json", "--data", str(tiny.corpus), "--predictions",
                               str(tiny.corpus / "test.conll")], stdout=full, stderr=subprocess.PIPE,
                              timeout=60, env=env_of(tiny), check=False)
    assert "<stdout>: cannot write the results (No space left on device)" in one_line_error(proc)


# The console script's own code, with an exit handler that says whether Python's teardown ran.
EXIT_PROBE = ("import atexit, sys\n{before}"
              "atexit.register(lambda: print('teardown ran', file=sys.stderr))\n"
              "from tagger.cli import main\nsys.argv = ['tagger', *sys.argv[1:]]\nmain()")


@pytest.mark.parametrize("before", ["", "import multiprocessing\n"])
def test_a_finished_command_skips_the_teardown_unless_a_module_needs_it(tiny: Tiny, before: str) -> None:
    text = "Тарас Шевченко народився в Києві.\n" * 300
    proc = subprocess.run([sys.executable, "-c", EXIT_PROBE.format(before=before), "tag", "--model", str(tiny.onnx),
                           "--lines", "--format", "jsonl"], input=text.encode(), capture_output=True, timeout=60,
                          env=env_of(tiny), check=False)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.decode().splitlines()) == 300  # everything written before the process ended
    assert ("teardown ran" in proc.stderr.decode()) == bool(before)  # multiprocessing must reap its workers


@pytest.mark.parametrize(("code", "status", "message"), [(None, 0, ""), (3, 3, ""), ("a message", 1, "a message")])
def test_exit_now_ends_as_sys_exit_would(code: object, status: int, message: str) -> None:
    script = f"import sys; from tagger.cli import exit_now; sys.stdout.write('written'); exit_now({code!r})"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr.decode().strip()) == (status, b"written", message)


def test_exit_now_reports_output_it_could_not_flush() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    script = "import sys; from tagger.cli import exit_now; sys.stdout.write('lost'); exit_now(0)"
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # 'lost' waits for the flush
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-c", script], stdout=full, stderr=subprocess.PIPE, timeout=60,
                              env=buffered, check=False)
    assert "<stdout>: cannot write the results (No space left on device)" in one_line_error(proc)


def popen_interruptible(args: list[str], tiny: Tiny, stdout: Path, stderr: Path) -> subprocess.Popen[bytes]:
    """Start a command that handles SIGINT as Python does (even if this process ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # exec turns it into SIG_DFL
    try:
        with stdout.open("wb") as out, stderr.open("wb") as err:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env_of(tiny))
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_for(condition: object, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Poll until `condition()` holds; fail if the process ends first."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert process.poll() is None, "the command ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_ctrl_c_during_tag(tiny: Tiny, big_text: Path, tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    process = popen_interruptible([str(TAGGER), "tag", "--model", str(tiny.onnx), "--lines", str(big_text)],
                                  tiny, out, err)
    wait_for(lambda: out.stat().st_size > 0, process)  # mid-way: the first results are out
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 130
    stderr = err.read_text()
    assert_no_noise(stderr)
    assert stderr.splitlines()[-1] == "Interrupted: tagger tag stopped by Ctrl-C"
    assert len(stderr.splitlines()) == 2  # the model line and the one-line message


def interrupted_training(tiny: Tiny, tmp_path: Path) -> tuple[int, str, Path]:
    """Train for 'ever', interrupt once the first best checkpoint exists: (exit code, stderr, out)."""
    out = tmp_path / "out"
    log, err = tmp_path / "log", tmp_path / "err"
    process = popen_interruptible(
        [str(TAGGER), "train", "--data", str(tiny.corpus), "--out", str(out), "--epochs", "100000",
         "--patience", "100000", *TINY_TRAIN[2:]], tiny, log, err)
    wait_for(lambda: (out / "best_lstm.pth").exists(), process)
    time.sleep(0.5)  # a few more epochs (and maybe saves) before the interrupt
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    return code, err.read_text(), out


@pytest.fixture(scope="session")
def interrupted(tiny: Tiny, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """One interrupted training run, shared by the tests that look at it."""
    return interrupted_training(tiny, tmp_path_factory.mktemp("interrupted"))


def test_ctrl_c_during_train_keeps_the_best_checkpoint(interrupted: tuple[int, str, Path]) -> None:
    from tagger.train.checkpoint import load_checkpoint

    code, stderr, out = interrupted
    assert code == 130, stderr
    assert_no_noise(stderr)
    checkpoint = out / "best_lstm.pth"
    assert f"the best checkpoint is intact: {checkpoint}" in stderr.replace("\n", "")  # rich may wrap it
    assert load_checkpoint(checkpoint)["state_dict"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_ctrl_c_during_train_message_is_one_line(interrupted: tuple[int, str, Path]) -> None:
    _, stderr, out = interrupted
    assert any(f"the best checkpoint is intact: {out / 'best_lstm.pth'}" in line for line in stderr.splitlines())


@pytest.mark.parametrize("case", ["a_file", "under_a_file", "read_only_dir"])
def test_train_out_that_cannot_be_written_fails_before_work(tiny: Tiny, tmp_path: Path, case: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    out = {"a_file": blocker, "under_a_file": blocker / "out", "read_only_dir": tmp_path / "ro"}[case]
    if case == "read_only_dir":
        if IS_ROOT:
            pytest.skip("runs as root: a read-only mode does not stop root from writing")
        out.mkdir(mode=0o555)
    error = assert_invoked_error(invoke(["train", "--data", str(tiny.corpus), "--out", str(out), *TINY_TRAIN]))
    assert f"{out}: cannot write the checkpoint there" in error and "--out DIR" in error


def test_export_into_a_missing_folder(tiny: Tiny, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "model.onnx"
    error = assert_invoked_error(invoke(["export", str(tiny.checkpoint), "-o", str(target)]))
    assert f"{target.parent}: no such folder" in error
    assert not target.parent.exists()


def test_export_into_an_unwritable_folder_names_the_target(tiny: Tiny, tmp_path: Path) -> None:
    if IS_ROOT:
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc to stand for an unwritable folder")
        target = Path("/proc/model.onnx")  # even root cannot create files there
    else:
        folder = tmp_path / "ro"
        folder.mkdir(mode=0o555)
        target = folder / "model.onnx"
    error = assert_invoked_error(invoke(["export", str(tiny.checkpoint), "-o", str(target)]))
    assert f"{target.parent}: cannot write" in error and ".tmp" not in error


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs: room for a few small files, not for a model (needs root and mount rights)."""
    folder = tmp_path / "full"
    folder.mkdir()
    if not IS_ROOT or shutil.which("mount") is None:
        pytest.skip("needs root to mount a tiny tmpfs")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, check=False)


def test_export_to_a_full_disk_leaves_nothing_behind(tiny: Tiny, full_disk: Path) -> None:
    target = full_disk / "model.onnx"
    error = assert_invoked_error(invoke(["export", str(tiny.checkpoint), "-o", str(target)]))
    assert "No space left on device" in error
    assert list(full_disk.iterdir()) == []  # neither the ONNX file nor its temporary file


def test_export_to_a_full_disk_names_the_file(tiny: Tiny, full_disk: Path) -> None:
    target = full_disk / "model.onnx"
    error = assert_invoked_error(invoke(["export", str(tiny.checkpoint), "-o", str(target)]))
    assert f"{target}: cannot write the ONNX file (No space left on device)" in error


def test_train_to_a_full_disk_leaves_nothing_behind(tiny: Tiny, full_disk: Path) -> None:
    out = full_disk / "out"
    result = invoke(["train", "--data", str(tiny.corpus), "--out", str(out), *TINY_TRAIN])
    assert [p.name for p in out.iterdir()] == []  # no half-written checkpoint, no temporary file
    error = assert_invoked_error(result)
    assert f"{out / 'best_lstm.pth'}" in error and "No space left on device" in error


# --- scale -------------------------------------------------------------------------------------------

RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:]).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
PAD = " " * 2000  # cheap to tag, expensive to hold: memory must not grow with the input


def stream_line(i: int) -> str:
    """Line i (from 1) of the generated stream."""
    return f"Тарас Шевченко {i}{PAD}Київ.\n"


def tag_stream(tiny: Tiny, lines: int, args: list[str], out: Path) -> tuple[int, int]:
    """Pipe `lines` generated lines through `tagger tag`: (peak RSS of tagger in KiB, bytes sent)."""
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-c", RSS_WRAPPER, str(TAGGER), "tag", "--model", str(tiny.onnx), *args],
            stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE, env=env_of(tiny))
    sent = [0]

    def feed() -> None:
        assert process.stdin is not None
        batch: list[str] = []
        for i in range(1, lines + 1):
            batch.append(stream_line(i))
            if len(batch) == 500 or i == lines:
                data = "".join(batch).encode()
                process.stdin.write(data)
                sent[0] += len(data)
                batch = []
        process.stdin.close()

    writer = threading.Thread(target=feed)
    writer.start()
    assert process.stderr is not None
    with process.stderr:
        stderr = process.stderr.read().decode()  # the writer thread owns stdin
    writer.join()
    process.wait(timeout=60)
    assert process.returncode == 0, stderr
    assert_no_noise(stderr)
    return int(stderr.splitlines()[-1]), sent[0]


def test_large_stdin_streams_with_flat_memory_and_keeps_order(tiny: Tiny, tmp_path: Path) -> None:
    # 24 MB and 53 MB: each fills the tagger's buffers, and the first is past the allocator's warm-up
    # (the entity scores' numpy work settles ~2.5 MB higher after ~12 MB of input, then stays flat)
    small, large = 12_000, 26_000
    out = tmp_path / "out"
    # Every line its own document, in order, with every word.
    base, _ = tag_stream(tiny, small, ["--lines", "--format", "conll"], out)
    peak, sent = tag_stream(tiny, large, ["--lines", "--format", "conll"], out)
    assert sent > 50_000_000
    assert peak - base < 8 * 1024, f"tagger grew by {(peak - base) / 1024:.0f} MiB for {sent / 1e6:.0f} MB more input"
    docs = conll_words(out.read_text(encoding="utf-8"))
    assert list(docs) == [f"<stdin>:{i}" for i in range(1, large + 1)]
    for i, words in enumerate(docs.values(), start=1):
        assert words == ["Тарас", "Шевченко", str(i), "Київ", "."]
    # The whole stream as one document: entities stream out in order and slice back.
    base, _ = tag_stream(tiny, small, ["--format", "jsonl"], out)
    peak, _ = tag_stream(tiny, large, ["--format", "jsonl"], out)
    assert peak - base < 8 * 1024, f"tagger grew by {(peak - base) / 1024:.0f} MiB as one document"
    (record,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert record["source"] == "<stdin>"
    text = "".join(stream_line(i) for i in range(1, large + 1))
    starts = [e["start"] for e in record["entities"]]
    assert starts == sorted(starts) and len(starts) > 1000
    for entity in record["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
