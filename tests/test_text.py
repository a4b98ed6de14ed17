"""Tests of tagger.text: invariants on arbitrary Unicode, corpus conventions, speed, agreement."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagger.text import LANGS, Token, split_sentences, tokenize

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TAGGER_SHARED_DATA", REPO / ".." / "shared" / "data"))
NER_UK = SHARED / "ner-uk"


def check_tokens(text: str, tokens: list[Token]) -> None:
    """Offsets index `text`, tokens are ordered, disjoint, space-free and cover all non-space."""
    pos = 0
    for tok in tokens:
        assert isinstance(tok, Token)
        assert tok.text and text[tok.start : tok.end] == tok.text
        assert pos <= tok.start < tok.end
        assert text[pos : tok.start].isspace() or pos == tok.start  # nothing dropped in between
        assert not any(ch.isspace() for ch in tok.text)
        pos = tok.end
    assert text[pos:].isspace() or pos == len(text)


def check_sentences(text: str, lang: str) -> None:
    """split_sentences gives non-empty sentences whose tokens are exactly tokenize's."""
    tokens = tokenize(text, lang)
    check_tokens(text, tokens)
    sentences = split_sentences(text, lang)
    assert all(sentences)
    assert [t for s in sentences for t in s] == tokens


# Characters that exercise the special rules, mixed with whitespace of every kind.
TRICKY = list(" \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u2028\u3000.,;:!?…-–—'’ʼ`\"«»()@#&/_+%") + [
    "http://",
    "www.",
    "a@b.ua",
    "т.д.",
    "1,5",
    "2014-го",
    "Т. ",
    "don't",
    "it's",
    "😂",
    "👍🏽",
    "\u200d",
    "\u0301",
    "\ufeff",
    "\u200b",
    "\x00",
    "\u05d0\u05b8",
    "\u0627\u0644",
    "🇺🇦",
    "ab",
    "Яз",
    "9",
]
texts = st.text() | st.lists(st.sampled_from(TRICKY) | st.characters(), max_size=60).map("".join)


@settings(max_examples=400, deadline=None)
@given(texts, st.sampled_from(LANGS))
def test_invariants_on_any_text(text: str, lang: str) -> None:
    check_sentences(text, lang)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "\ufeffПривіт",
        "a\r\nb\rc",
        "\x00\x00",
        "👨\u200d👩\u200d👧 x",
        "\u0301a",
        "a" * 1000,
    ],
)
def test_invariants_on_edge_cases(text: str, lang: str) -> None:
    check_sentences(text, lang)


def test_written_out_marks_are_what_unicodedata_says() -> None:
    # The mark class is written out for start-up speed; under another Unicode it is computed instead.
    import unicodedata

    from tagger import text

    if unicodedata.unidata_version != text._MARKS_UNICODE:
        assert text._M == text._mark_class()
        return
    assert text._MARKS == text._mark_class()
    assert text._M == text._MARKS


def test_unknown_lang() -> None:
    with pytest.raises(ValueError, match=r"uk.*en"):
        tokenize("text", "de")
    with pytest.raises(ValueError, match=r"uk.*en"):
        split_sentences("text", "")


def words(text: str, lang: str) -> list[str]:
    """Token texts of `text`."""
    return [t.text for t in tokenize(text, lang)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("м'ясо з’явився пам\u02bcять", ["м'ясо", "з’явився", "пам\u02bcять"]),
        ("по-справжньому будь-який", ["по-справжньому", "будь-який"]),
        ("і т.д. та ін.", ["і", "т", ".", "д", ".", "та", "ін", "."]),
        ("вул. Шевченка", ["вул", ".", "Шевченка"]),
        ("Т. Г. Шевченко", ["Т", ".", "Г", ".", "Шевченко"]),
        ("1,5 кг у 2014-го 10-15 хв", ["1,5", "кг", "у", "2014-го", "10-15", "хв"]),
        ("1920-30-ті, 1993–1994", ["1920-30", "-", "ті", ",", "1993", "–", "1994"]),
        ("«1+1» +23,7 °С", ["«", "1", "+1", "»", "+23,7", "°", "С"]),
        ("«Океан Ельзи» — гурт...", ["«", "Океан", "Ельзи", "»", "—", "гурт", "..."]),
        ("Що?! Так?.. Ні…", ["Що", "?!", "Так", "?..", "Ні", "…"]),
        ("пишіть на grslovnyk@i.ua", ["пишіть", "на", "grslovnyk@i.ua"]),
        ("див. https://lang.org.ua/uk/.", ["див", ".", "https://lang.org.ua/uk/", "."]),
        ("ranok.ictv.ua", ["ranok", ".", "ictv", ".", "ua"]),
        ("о́круг", ["о́круг"]),
    ],
)
def test_ukrainian_tokens(text: str, expected: list[str]) -> None:
    assert words(text, "uk") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@user_1 loves #NYC!!", ["@user_1", "loves", "#NYC", "!!"]),
        ("see https://t.co/AbC12, ok", ["see", "https://t.co/AbC12", ",", "ok"]),
        ("RT https://t.co/x…", ["RT", "https://t.co/x…"]),
        ("fire🔥🔥 👍🏽", ["fire", "🔥", "🔥", "👍🏽"]),
        ("I don't know, I'm sure", ["I", "don't", "know", ",", "I'm", "sure"]),
        ("it's Trump's", ["it", "'s", "Trump", "'s"]),
        ("lol :) &amp; U.S. at 7:30pm", ["lol", ":)", "&amp;", "U.S.", "at", "7:30", "pm"]),
        ("1st w/ 30,000", ["1st", "w/", "30,000"]),
    ],
)
def test_english_tokens(text: str, expected: list[str]) -> None:
    assert words(text, "en") == expected


def sentences(text: str, lang: str) -> list[str]:
    """Sentences of `text` as space-joined token texts."""
    return [" ".join(t.text for t in s) for s in split_sentences(text, lang)]


def test_ukrainian_sentences() -> None:
    text = "Т. Шевченко народився 1814 року. Він поет!\nНовий рядок «Що?» сказав він. — Так."
    assert sentences(text, "uk") == [
        "Т . Шевченко народився 1814 року .",
        "Він поет !",
        "Новий рядок « Що ? » сказав він . — Так .",  # the corpus keeps dialogue dashes in
    ]
    assert sentences("Ціна 5 тис. Гривень мало.", "uk") == ["Ціна 5 тис . Гривень мало ."]


def test_english_sentences() -> None:
    assert sentences("Hello there. 2 days left… @bob lol", "en") == [
        "Hello there .",
        "2 days left …",
        "@bob lol",
    ]


def test_long_line_is_fast() -> None:
    line = " ".join(["слово", "word", "x2y", "довге-слово"] * 80_000)[:2_000_000]
    start = time.perf_counter()
    tokens = tokenize(line, "uk")
    assert len(split_sentences(line, "uk")) == 1
    assert time.perf_counter() - start < 5  # about 1 s; a quadratic path would take hours
    assert len(tokens) == len(line.split())


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("unit", ["ab", "a.", "1-", "a@", "😂", ":)"])
def test_runs_without_spaces_are_linear(lang: str, unit: str) -> None:
    blob = unit * 50_000
    start = time.perf_counter()
    check_tokens(blob, tokenize(blob, lang))
    assert time.perf_counter() - start < 2


def corpus_documents(split: str, count: int) -> list[tuple[str, list[list[str]]]]:
    """The `count` smallest documents of `split` with raw text: (raw text, corpus sentences)."""
    conll: list[list[str]] = [[]]
    for line in (NER_UK / f"{split}.conll").read_text(encoding="utf-8").splitlines():
        if line.strip():
            conll[-1].append(line.split("\t")[0])
        elif conll[-1]:
            conll.append([])
    docs, i = [], 0
    with open(NER_UK / "documents.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["split"] == split:
                n = int(row["sentences"])
                raw = NER_UK / "raw" / split / f"{row['document']}.txt"
                if raw.exists():
                    docs.append((raw.read_text(encoding="utf-8"), conll[i : i + n]))
                i += n
    return sorted(docs, key=lambda d: len(d[0]))[:count]


@pytest.mark.skipif(
    not (NER_UK / "raw" / "test").is_dir(), reason=f"ner-uk raw data not found in {NER_UK}"
)
def test_agreement_with_corpus() -> None:
    gold: set[tuple[int, int]] = set()
    gold_starts: set[int] = set()
    pred: set[tuple[int, int]] = set()
    pred_starts: set[int] = set()
    for offset, (raw, doc) in enumerate(corpus_documents("test", 3)):
        base = offset * 10_000_000  # keep spans of different documents apart
        pos = 0
        for sentence in doc:
            for k, tok in enumerate(sentence):
                start = raw.index(tok, pos)  # corpus tokens are the raw text minus whitespace
                assert raw[pos:start].isspace() or pos == start
                pos = start
                gold.add((base + pos, base + pos + len(tok)))
                if k == 0:
                    gold_starts.add(base + pos)
                pos += len(tok)
        for s in split_sentences(raw, "uk"):
            pred_starts.add(base + s[0].start)
            pred.update((base + t.start, base + t.end) for t in s)
    assert len(gold) > 300
    assert len(gold & pred) / len(gold) >= 0.99 and len(gold & pred) / len(pred) >= 0.99
    assert len(gold_starts & pred_starts) / len(gold_starts) >= 0.95
    assert len(gold_starts & pred_starts) / len(pred_starts) >= 0.95


# English news and social media, as a newcomer pastes them: each item is the sentences it must give.
EN_NEWS = [
    ["Sen. Elizabeth Warren spoke on Tuesday.", "Gov. Newsom did not."],
    ["The vote is set for Jan. 5 in Washington."],
    ["Lt. Gen. Mark Smith and Sgt. Ann Lee arrived.", "Reporters waited."],
    ["Rep. Ocasio-Cortez tweeted about it.", "Pres. Biden replied."],
    ["She moved to Springfield, Ill. last year."],
    ["We met in Jan.", "The weather was cold."],
    ["Dr. Who airs on Sat. at 7pm."],
    ["He sat.", "Then he left."],
    ["Look at the sun.", "It is bright."],
    ["The company, Acme Inc., said profits rose.", "Shares fell."],
    ["J. K. Rowling signed books at Barnes & Noble in N.Y. on Oct. 3."],
    ["Capt. Phillips is a film.", "Tom Hanks stars."],
    ["lol cant believe it.", "@john you there?", "#fail"],
    ["The U.S. Supreme Court ruled on Mon. Dec. 1.", "Justices split."],
]


@pytest.mark.parametrize("sentences", EN_NEWS, ids=[s[0][:24] for s in EN_NEWS])
def test_english_titles_months_and_states_do_not_end_a_sentence(sentences: list[str]) -> None:
    text = " ".join(sentences)
    got = [text[s[0].start : s[-1].end] for s in split_sentences(text, "en")]
    assert got == sentences
