"""CoNLL files (tagger.conll): separators, line endings, and errors that name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CONLL, LABELS, SENTENCES, shared_corpus
from tagger.conll import Sentence, format_conll, read_conll
from tagger.corpus import read_labels
from tagger.errors import DataFormatError, InputError


def write(tmp_path: Path, data: str | bytes, name: str = "data.conll") -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def as_pairs(sentences: list[Sentence]) -> list[tuple[list[str], list[str]]]:
    return [(s.words, s.tags) for s in sentences]


def test_reads_the_inline_corpus(tmp_path: Path) -> None:
    sentences = read_conll(write(tmp_path, CONLL), LABELS)
    assert as_pairs(sentences) == SENTENCES
    assert [s.line_no for s in sentences] == [1, 8, 18]


def test_tab_and_space_separated_lines_mix(tmp_path: Path) -> None:
    text = "Тарас B-PERS\nШевченко\tI-PERS\n  в   O  \nКиєві\tB-LOC \n"
    assert as_pairs(read_conll(write(tmp_path, text), LABELS)) == [
        (["Тарас", "Шевченко", "в", "Києві"], ["B-PERS", "I-PERS", "O", "B-LOC"])
    ]


def test_a_tab_separated_token_may_hold_a_space(tmp_path: Path) -> None:
    (sentence,) = read_conll(write(tmp_path, "New York\tB-LOC\n"))
    assert sentence.words == ["New York"]


def test_crlf_bom_docstart_and_extra_blank_lines(tmp_path: Path) -> None:
    text = "\ufeff-DOCSTART-\tO\r\n\r\nТарас\tB-PERS\r\nШевченко\tI-PERS\r\n\r\n\r\n\r\n-DOCSTART- O\r\nКиїв\tB-LOC\r\n"
    sentences = read_conll(write(tmp_path, text), LABELS)
    assert as_pairs(sentences) == [(["Тарас", "Шевченко"], ["B-PERS", "I-PERS"]), (["Київ"], ["B-LOC"])]
    assert [s.line_no for s in sentences] == [3, 9]
    assert all("\r" not in t and "\ufeff" not in w for s in sentences for w, t in zip(s.words, s.tags))


def test_whitespace_only_lines_separate_sentences(tmp_path: Path) -> None:
    """As in WNUT-17's train file: a line holding a single tab ends a sentence."""
    text = "a\tO\n\t\nb\tB-LOC\n   \nc\tO"  # and no newline at the end
    assert as_pairs(read_conll(write(tmp_path, text))) == [(["a"], ["O"]), (["b"], ["B-LOC"]), (["c"], ["O"])]


def test_format_conll_round_trip(tmp_path: Path) -> None:
    sentences = read_conll(write(tmp_path, CONLL), LABELS)
    text = "".join(format_conll(sentences))
    assert text == CONLL + "\n"
    assert as_pairs(read_conll(write(tmp_path, text, "again.conll"), LABELS)) == SENTENCES


@pytest.mark.parametrize(
    ("text", "line_no", "match"),
    [
        ("a\tO\nКиїв\n", 2, "expected 2 columns.*found 1"),
        ("a\tO\n\nb O extra\n", 3, "expected 2 columns.*found 3"),
        ("a\tO\nb\tB-LOC\textra\n", 2, "found 3"),
        ("a\tO\n\tB-LOC\n", 2, "expected 2 columns"),  # an empty token
    ],
)
def test_wrong_column_count_names_file_and_line(tmp_path: Path, text: str, line_no: int, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match=match) as err:
        read_conll(path, LABELS)
    assert err.value.line_no == line_no
    assert str(err.value).startswith(f"{path}:{line_no}: ")


def test_unknown_label_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "Тарас\tB-PERS\nШевченко\tI-PERS\n\nКиїв\tB-GPE\n")
    with pytest.raises(DataFormatError, match="unknown label 'B-GPE'") as err:
        read_conll(path, LABELS)
    assert str(err.value).startswith(f"{path}:4: ")
    assert "B-LOC" in str(err.value) and "Київ" in str(err.value)  # the known labels, the line
    assert read_conll(path)[1].tags == ["B-GPE"]  # without a label list any IOB2 tag goes


@pytest.mark.parametrize("tag", ["B_PERS", "PERS", "b-PERS", "E-PERS", "B-", "0"])
def test_invalid_tag_names_file_and_line(tmp_path: Path, tag: str) -> None:
    path = write(tmp_path, f"a\tO\nb\t{tag}\n")
    with pytest.raises(DataFormatError, match="not an IOB2 tag") as err:
        read_conll(path)
    assert str(err.value).startswith(f"{path}:2: ")


@pytest.mark.parametrize("text", ["", "\n\n  \n", "\ufeff", "-DOCSTART- O\n\n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataFormatError, match="no sentences") as err:
        read_conll(path)
    assert str(err.value).startswith(f"{path}:1: ")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_invalid_utf8_names_line_and_byte_offset(tmp_path: Path, bom: bytes) -> None:
    head = bom + "Тарас\tB-PERS\n\n".encode()
    path = write(tmp_path, head + b"ab\xff\tO\n")
    with pytest.raises(InputError, match="not valid UTF-8") as err:
        read_conll(path)
    assert f"{path}:3:" in str(err.value)
    assert f"byte offset {len(head) + 2}" in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_conll(tmp_path / "absent.conll")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_conll(tmp_path)


def test_nul_bytes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="NUL"):
        read_conll(write(tmp_path, b"a\tO\nb\x00\tO\n"))


# --- the real corpora ---------------------------------------------------------------------------

COUNTS = {  # (sentences, tokens) from each corpus's README
    "ner-uk": {"train": (11755, 202073), "validation": (1390, 23306), "test": (717, 11948)},
    "wnut17": {"train": (3394, 62730), "validation": (1009, 15733), "test": (1287, 23394)},
}


@pytest.mark.parametrize(("corpus", "lang"), [("ner-uk", "uk"), ("wnut17", "en")])
def test_real_corpora_read_with_their_labels_and_documented_sizes(corpus: str, lang: str) -> None:
    folder = shared_corpus(corpus)
    labels = read_labels(folder, lang)
    assert labels[0] == "O" and len(labels) == (9 if lang == "uk" else 13)
    for split, (n_sentences, n_tokens) in COUNTS[corpus].items():
        sentences = read_conll(folder / f"{split}.conll", labels)
        assert len(sentences) == n_sentences, split
        assert sum(len(s.words) for s in sentences) == n_tokens, split
        assert all(len(s.words) == len(s.tags) and all(s.words) for s in sentences)
