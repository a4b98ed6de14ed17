"""Input documents (tagger.documents): files, stdin, lines, JSONL, encodings, long lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tagger.documents as documents_module
from conftest import shared_corpus
from tagger.documents import Document, decoded_lines, documents
from tagger.errors import DataFormatError, InputError

TEXT = "Тарас Шевченко народився в Моринцях.\nПрезидент підписав Закон про освіту.\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa" + bytes(64)
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00>\x00\x01\x00\x00\x00" + bytes(40)


def text_of(document: Document) -> str:
    return "".join(document.segments)


def read_all(paths: list[Path], stdin: bytes = b"", lines: bool = False, errors: str = "strict") -> list[tuple[str, str]]:
    """(source, text) of every document."""
    return [(d.source, text_of(d)) for d in documents(paths, io.BytesIO(stdin), lines, errors)]


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_each_file_is_one_document(tmp_path: Path) -> None:
    a = write(tmp_path, "a.txt", TEXT)
    b = write(tmp_path, "b.txt", "Київ")  # no final newline
    c = write(tmp_path, "c.txt", "")
    assert read_all([a, b, c]) == [(str(a), TEXT), (str(b), "Київ"), (str(c), "")]


def test_stdin_is_one_document_when_no_files() -> None:
    assert read_all([], TEXT.encode()) == [("<stdin>", TEXT)]
    assert read_all([], b"") == [("<stdin>", "")]


def test_lines_makes_every_line_a_document(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "перший\n\nтретій\r\nчетвертий")
    assert read_all([path], lines=True) == [
        (f"{path}:1", "перший\n"), (f"{path}:2", "\n"), (f"{path}:3", "третій\r\n"), (f"{path}:4", "четвертий"),
    ]
    assert read_all([], b"one\ntwo\n", lines=True) == [("<stdin>:1", "one\n"), ("<stdin>:2", "two\n")]


def test_jsonl_holds_one_document_per_line(tmp_path: Path) -> None:
    records = [{"id": "doc-7", "text": "Київ"}, {"text": "Львів\nі Одеса", "other": 1}]
    path = write(tmp_path, "in.jsonl", "\ufeff" + "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n")
    assert read_all([path]) == [("doc-7", "Київ"), (f"{path}:2", "Львів\nі Одеса")]
    # --lines does not split a .jsonl file any further.
    assert read_all([path], lines=True) == read_all([path])


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"text": "Київ"', "not valid JSON"),
        ('{"txt": "Київ"}', 'string "text" field'),
        ('{"text": 42}', 'string "text" field'),
        ('["Київ"]', 'string "text" field'),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path: Path, line: str, match: str) -> None:
    path = write(tmp_path, "in.jsonl", '{"text": "ok"}\n\n' + line + "\n")
    with pytest.raises(DataFormatError, match=match) as err:
        read_all([path])
    assert str(err.value).startswith(f"{path}:3: ")


def test_bom_is_dropped_and_crlf_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "\ufeffрядок один\r\nрядок два\r\n")
    assert read_all([path]) == [(str(path), "рядок один\r\nрядок два\r\n")]
    assert read_all([], "\ufeffa\r\n".encode()) == [("<stdin>", "a\r\n")]


def test_only_a_leading_bom_is_dropped(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "a\ufeffb\n\ufeffc")
    assert read_all([path]) == [(str(path), "a\ufeffb\n\ufeffc")]


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_invalid_utf8_names_the_byte_offset(tmp_path: Path, bom: bytes) -> None:
    head = bom + "Київ\nЛьвів ".encode()
    path = write(tmp_path, "bad.txt", head + b"\xc3\x28 tail\n")
    with pytest.raises(InputError, match=f"byte offset {len(head)}.*--encoding-errors replace"):
        read_all([path])


def test_truncated_utf8_at_the_end_names_its_offset() -> None:
    data = "Київ".encode() + "ї".encode()[:1]
    with pytest.raises(InputError, match=f"<stdin>: not valid UTF-8 at byte offset {len(data) - 1}"):
        read_all([], data)


def test_encoding_errors_replace_gives_replacement_characters(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.txt", b"ab\xffcd\n" + "ї".encode()[:1])
    assert read_all([path], errors="replace") == [(str(path), "ab\ufffdcd\n\ufffd")]


def test_unknown_encoding_errors_value() -> None:
    with pytest.raises(InputError, match="strict, replace"):
        read_all([], b"x", errors="ignore")


def test_binary_file_with_nul_in_its_first_line_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "a.out", ELF)
    for errors in ("strict", "replace"):
        with pytest.raises(InputError, match="looks like a binary file"):
            read_all([path], errors=errors)


@pytest.mark.parametrize("errors", ["strict", "replace"])
def test_png_is_refused_as_binary(tmp_path: Path, errors: str) -> None:
    path = write(tmp_path, "image.png", PNG)
    with pytest.raises(InputError, match="looks like a binary file"):
        read_all([path], errors=errors)


def test_text_with_a_stray_nul_is_still_text() -> None:
    """One NUL in otherwise plain text is not 'binary' (the heuristic wants many control bytes)."""
    data = ("слово " * 50).encode() + b"\x00" + b" end\n"
    assert read_all([], data)[0][1] == data.decode()


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_all([tmp_path / "absent.txt"])
    with pytest.raises(InputError, match="is a directory"):
        read_all([tmp_path])
    with pytest.raises(InputError, match="no such file"):
        read_all([tmp_path / "absent.jsonl"])
    with pytest.raises(InputError, match="no such file"):
        read_all([tmp_path / "absent.txt"], lines=True)


# --- long lines ---------------------------------------------------------------------------------


def test_long_line_is_split_only_at_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(documents_module, "SEGMENT_BYTES", 64)
    words = [f"слово{i}" for i in range(300)]
    text = " ".join(words) + "\nкороткий рядок\n" + "\t".join(words[:50])
    segments = list(decoded_lines(io.BytesIO(text.encode()), "x"))
    assert "".join(segments) == text
    assert len(segments) > 20
    assert all(segments)
    for segment in segments[:-1]:
        assert segment[-1].isspace(), segment  # never inside a word
    assert {w for s in segments for w in s.split()} == set(words) | {"короткий", "рядок"}


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(st.sampled_from("abcїєґ€😀"), min_size=1, max_size=6), st.sampled_from([" ", "\t", "\n", "  ", "\r\n"])),
        max_size=60,
    ),
    st.integers(32, 128),
    st.booleans(),
)
def test_segments_concatenate_back_to_the_text(pieces: list[tuple[str, str]], segment_bytes: int, bom: bool) -> None:
    text = "".join(w + sep for w, sep in pieces)
    data = ("\ufeff" if bom else "").encode() + text.encode()
    original = documents_module.SEGMENT_BYTES
    documents_module.SEGMENT_BYTES = segment_bytes
    try:
        segments = list(decoded_lines(io.BytesIO(data), "x"))
    finally:
        documents_module.SEGMENT_BYTES = original
    assert "".join(segments) == text
    for segment in segments[:-1]:
        assert segment[-1].isspace(), (segment, segments)


@settings(max_examples=80, deadline=None)
@given(st.text(st.sampled_from("ab ї😀\n"), max_size=120), st.integers(32, 96))
def test_invalid_byte_offset_is_exact_in_long_lines(prefix: str, segment_bytes: int) -> None:
    data = prefix.encode() + b"\xff" + b"tail"
    original = documents_module.SEGMENT_BYTES
    documents_module.SEGMENT_BYTES = segment_bytes
    try:
        with pytest.raises(InputError, match=f"byte offset {len(prefix.encode())};"):
            list(decoded_lines(io.BytesIO(data), "x"))
    finally:
        documents_module.SEGMENT_BYTES = original


def test_real_raw_documents_read_unchanged() -> None:
    folder = shared_corpus("ner-uk") / "raw" / "test"
    paths = sorted(folder.glob("*.txt"))[:3]
    if not paths:
        pytest.skip(f"no raw documents in {folder}")
    for (source, text), path in zip(read_all(paths), paths):
        assert source == str(path)
        assert text == path.read_bytes().decode("utf-8").removeprefix("\ufeff")
