"""Input documents (files, stdin, lines, JSONL), read as streams of text segments."""

from __future__ import annotations

import codecs
import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tagger.errors import DataFormatError, InputError

SEGMENT_BYTES = 1 << 20  # a line longer than this is cut at its last whitespace
HEAD_BYTES = 8192  # bytes sniffed for binary data before reading on
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
    if controls > len(head) // 10:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start < len(head) - 3  # not merely a character cut at the end of the head
    return False


def check_text(head: bytes, name: str) -> None:
    """Raise InputError if the first bytes of a stream show it is not UTF-8 text."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{name}: UTF-16/32 text (it starts with a byte-order mark); convert it to UTF-8,"
                         f" e.g. iconv -f UTF-16 -t UTF-8 {name}")
    if looks_binary(head):
        raise InputError(f"{name}: looks like a binary file, not text; pass a UTF-8 text file")


def byte_lines(stream: BinaryIO, name: str) -> Iterator[bytes]:
    """Lines of a byte stream, a long line in pieces of at most SEGMENT_BYTES.

    The first HEAD_BYTES are checked for binary data before anything is handed over; read
    failures become InputError.
    """
    try:
        head = stream.read(HEAD_BYTES)
    except OSError as err:
        raise InputError(f"{name}: cannot be read ({err.strerror})") from None
    check_text(head, name)
    buffered = io.BytesIO(head)
    while True:
        try:
            chunk = buffered.readline(SEGMENT_BYTES) or stream.readline(SEGMENT_BYTES)
        except OSError as err:
            raise InputError(f"{name}: cannot be read ({err.strerror})") from None
        if not chunk:
            return
        yield chunk


def decoded_lines(stream: BinaryIO, name: str, errors: str = "strict") -> Iterator[str]:
    """Text of a byte stream in pieces (lines, or long lines cut at whitespace), UTF-8, BOM dropped.

    Memory stays flat however large the stream. Raises InputError naming the byte offset of
    invalid UTF-8, with the flag that accepts it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors=errors)
    offset = 0  # bytes consumed before the current chunk
    carry = ""
    first = True
    chunks = byte_lines(stream, name)
    while True:
        chunk = next(chunks, b"")
        if first:
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


def check_path(path: Path) -> None:
    """Raise InputError unless `path` is a file this process may read."""
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path (with no FILES, stdin is read)")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; pass files, or use a shell glob like {path}/*.txt")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: cannot be read (permission denied); check its permissions")


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading, with an InputError saying why it can't be."""
    check_path(path)
    try:
        return path.open("rb")
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror}); check the file and its permissions") from None


def file_document(path: Path, errors: str) -> Document:
    """A whole file as one document, read lazily."""

    def segments() -> Iterator[str]:
        with open_binary(path) as stream:
            yield from decoded_lines(stream, str(path), errors)

    return Document(str(path), segments())


def line_documents(stream: BinaryIO, name: str, errors: str) -> Iterator[Document]:
    """Each line of a stream as its own document, named `name:line`.

    A line that fits one piece (the usual case) is a list; a longer one is read lazily, so
    even a line larger than memory streams (read its segments before the next document).
    """
    pieces = decoded_lines(stream, name, errors)
    number = 0
    piece = next(pieces, None)
    while piece is not None:
        number += 1
        source = f"{name}:{number}"
        if piece.endswith("\n"):
            yield Document(source, [piece])
        else:
            following = next(pieces, None)
            if following is None:  # the last line, without a newline
                yield Document(source, [piece])
                return
            segments = line_pieces([piece, following], pieces)
            yield Document(source, segments)
            for _ in segments:  # whatever of the line the consumer left unread
                pass
        piece = next(pieces, None)


def line_pieces(head: list[str], pieces: Iterator[str]) -> Iterator[str]:
    """The pieces of one long line: `head`, then pieces up to the one that ends the line."""
    for piece in head:
        yield piece
        if piece.endswith("\n"):
            return
    for piece in pieces:
        yield piece
        if piece.endswith("\n"):
            return


def jsonl_documents(path: Path, errors: str) -> Iterator[Document]:
    """Each line of a .jsonl file holding {"text": ...} as a document (named by "id" if given)."""
    with open_binary(path) as stream:
        yield from jsonl_stream_documents(stream, str(path), errors)


def jsonl_stream_documents(stream: BinaryIO, name: str, errors: str) -> Iterator[Document]:
    """Each line of a JSONL byte stream holding {"text": ...} as a document (named by "id" if given)."""
    number = 0
    line = ""
    for piece in decoded_lines(stream, name, errors):
        line += piece
        if not line.endswith("\n"):
            continue
        number += 1
        if line.strip():
            yield parse_jsonl_line(name, number, line)
        line = ""
    if line.strip():
        yield parse_jsonl_line(name, number + 1, line)


def parse_jsonl_line(path: Path | str, number: int, line: str) -> Document:
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

    With `lines`, every line of every input is its own document. The paths are checked at
    once, before any document is read, so a missing file stops a run before work starts.
    """
    if errors not in ENCODING_ERRORS:
        raise InputError(f"unknown --encoding-errors {errors!r}; choose one of: {', '.join(ENCODING_ERRORS)}")
    for path in paths:
        check_path(path)
    return read_documents(paths, stdin, lines, errors)


def read_documents(paths: list[Path], stdin: BinaryIO, lines: bool, errors: str) -> Iterator[Document]:
    """The documents of `documents()`, read lazily in input order."""
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
