"""CoNLL files: one `token<TAB>tag` (or `token tag`) per line, a blank line between sentences."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tagger.errors import DataFormatError, InputError
from tagger.scheme import split_tag


@dataclass(frozen=True, slots=True)
class Sentence:
    """Words of a sentence with their IOB2 tags (one per word)."""

    words: list[str]
    tags: list[str]
    line_no: int = 0  # line of its first word in the file it was read from (0: not from a file)


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 text file, BOM and CRLF tolerated; errors name the byte offset."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    try:
        handle = path.open("rb")
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror})") from None
    offset = 0
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InputError(
                    f"{path}:{line_no}: not valid UTF-8 at byte offset {offset + err.start}; "
                    "convert the file to UTF-8 (e.g. with iconv)"
                ) from None
            if line_no == 1:
                line = line.removeprefix("\ufeff")
            if "\x00" in line:
                raise InputError(f"{path}:{line_no}: contains NUL bytes; is it a binary file?")
            offset += len(raw)
            yield line_no, line.rstrip("\r\n")


def read_conll(path: str | Path, labels: Sequence[str] | None = None) -> list[Sentence]:
    """Read sentences; tags must be valid IOB2 tags and, if `labels` is given, among them."""
    known = None if labels is None else set(labels)
    sentences: list[Sentence] = []
    words: list[str] = []
    tags: list[str] = []
    first_line = 0
    for line_no, line in read_lines(path):
        if not line.strip() or line.startswith("-DOCSTART-"):
            if words:
                sentences.append(Sentence(words, tags, first_line))
                words, tags = [], []
            continue
        if not words:
            first_line = line_no
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) != 2 or not fields[0]:
            raise DataFormatError(
                str(path), line_no, f"expected 2 columns (token, tag), found {len(fields)}", line
            )
        word, tag = fields[0], fields[1].strip()
        try:
            split_tag(tag)
        except ValueError:
            raise DataFormatError(str(path), line_no, f"{tag!r} is not an IOB2 tag", line) from None
        if known is not None and tag not in known:
            raise DataFormatError(
                str(path), line_no, f"unknown label {tag!r}; known: {', '.join(labels or [])}", line
            )
        words.append(word)
        tags.append(tag)
    if words:
        sentences.append(Sentence(words, tags, first_line))
    if not sentences:
        raise DataFormatError(str(path), 1, "no sentences found (the file is empty)")
    return sentences


def format_conll(sentences: Iterable[Sentence]) -> Iterator[str]:
    """Lines of a CoNLL file (with newlines) for the given sentences."""
    for sentence in sentences:
        for word, tag in zip(sentence.words, sentence.tags, strict=True):
            yield f"{word}\t{tag}\n"
        yield "\n"
