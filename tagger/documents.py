"""Input documents (files, stdin, lines, JSONL), read as streams of text segments."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tagger.errors import DataFormatError, InputError

SEGMENT_BYTES = 1 << 20  # a line longer than this is cut at its last whitespace
ENCODING_ERRORS = ("strict", "replace")


@dataclass(frozen=True)
class Document:
    """A document to tag: a name for the output and its text as consecutive segments.

    The document's text is the concatenation of its segments; entity offsets index it.
    """

    source: str
    segments: Iterable[str]


def looks_binary(head: bytes) -> bool:
    """True for data that is not text: NUL bytes together with other control bytes or bad UTF-8."""
    if b"\x00" not in head:
        return False
    controls = sum(b < 9 or 13 < b < 32 for b in head)
    return controls > len(head) // 10


def decoded_lines(stream: BinaryIO, name: str, errors: str = "strict") -> Iterator[str]:
    """Text of a byte stream in pieces (lines, or long lines cut at whitespace), UTF-8, BOM dropped.

    Memory stays flat however large the stream. Raises InputError naming the byte offset of
    invalid UTF-8, with the flag that accepts it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors=errors)
    offset = 0  # bytes consumed before the current chunk
    carry = ""
    first = True
    while True:
        chunk = stream.readline(SEGMENT_BYTES)
        if first:
            if looks_binary(chunk[:8192]):
                raise InputError(f"{name}: looks like a binary file, not text; pass a UTF-8 text file")
            if chunk.startswith(codecs.BOM_UTF8):
                chunk, offset = chunk[3:], 3
            first = False
        pending = len(decoder.getstate()[0])
        try:
            text = carry + decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as err:
            raise InputError(
                f"{name}: not valid UTF-8 at byte offset {offset - pending + err.start};"
                " convert it to UTF-8, or pass --encoding-errors replace to read bad bytes as U+FFFD"
            ) from None
        offset += len(chunk)
        if not chunk:
            if text:
                yield text
            return
        if text.endswith("\n") or len(text) < SEGMENT_BYTES // 4:
            carry = "" if text.endswith("\n") else text
            if not carry:
                yield text
            continue
        # A very long line: hand over what ends at the last whitespace, keep the rest.
        cut = max(text.rfind(" "), text.rfind("\t"))
        if cut <= 0:
            carry = ""
            yield text
        else:
            carry = text[cut + 1 :]
            yield text[: cut + 1]


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading, with an InputError saying why it can't be."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; pass files, or use a shell glob like {path}/*.txt")
    try:
        return path.open("rb")
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror})") from None


def file_document(path: Path, errors: str) -> Document:
    """A whole file as one document, read lazily."""

    def segments() -> Iterator[str]:
        with open_binary(path) as stream:
            yield from decoded_lines(stream, str(path), errors)

    return Document(str(path), segments())


def line_documents(stream: BinaryIO, name: str, errors: str) -> Iterator[Document]:
    """Each line of a stream as its own document, named `name:line`."""
    number = 0
    line = ""
    for piece in decoded_lines(stream, name, errors):
        line += piece
        if line.endswith("\n"):
            number += 1
            yield Document(f"{name}:{number}", [line])
            line = ""
    if line:
        yield Document(f"{name}:{number + 1}", [line])


def jsonl_documents(path: Path, errors: str) -> Iterator[Document]:
    """Each line of a .jsonl file holding {"text": ...} as a document (named by "id" if given)."""
    with open_binary(path) as stream:
        number = 0
        line = ""
        for piece in decoded_lines(stream, str(path), errors):
            line += piece
            if not line.endswith("\n"):
                continue
            number += 1
            if line.strip():
                yield parse_jsonl_line(path, number, line)
            line = ""
        if line.strip():
            yield parse_jsonl_line(path, number + 1, line)


def parse_jsonl_line(path: Path, number: int, line: str) -> Document:
    """One JSONL record as a document."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataFormatError(str(path), number, f"not valid JSON ({err.msg})", line.rstrip("\r\n")) from None
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        raise DataFormatError(str(path), number, 'expected an object with a string "text" field', line.rstrip("\r\n"))
    source = record.get("id")
    return Document(str(source) if source is not None else f"{path}:{number}", [record["text"]])


def documents(paths: list[Path], stdin: BinaryIO, lines: bool, errors: str = "strict") -> Iterator[Document]:
    """Documents of the command line: each file (a .jsonl holds one per line), else stdin.

    With `lines`, every line of every input is its own document.
    """
    if errors not in ENCODING_ERRORS:
        raise InputError(f"unknown --encoding-errors {errors!r}; choose one of: {', '.join(ENCODING_ERRORS)}")
    if not paths:
        if lines:
            yield from line_documents(stdin, "<stdin>", errors)
        else:
            yield Document("<stdin>", decoded_lines(stdin, "<stdin>", errors))
        return
    for path in paths:
        if path.suffix == ".jsonl":
            yield from jsonl_documents(path, errors)
        elif lines:
            with open_binary(path) as stream:
                yield from line_documents(stream, str(path), errors)
        else:
            yield file_document(path, errors)
