"""Errors that users see: each says what went wrong, where, and how to fix it."""

from __future__ import annotations


class TaggerError(Exception):
    """Base class of the errors the CLI shows as one line (exit code 1)."""


class DataFormatError(TaggerError):
    """A data file (CoNLL, predictions, JSONL) is malformed at a known line."""

    def __init__(self, path: str, line_no: int, problem: str, line: str | None = None) -> None:
        self.path, self.line_no, self.problem, self.line = path, line_no, problem, line
        shown = "" if line is None else f": {line[:120]!r}"
        super().__init__(f"{path}:{line_no}: {problem}{shown}")


class ArtifactError(TaggerError):
    """A model file is missing, unreadable or not a tagger model."""


class InputError(TaggerError):
    """An input document cannot be read (missing, binary, bad encoding)."""


class OutputError(TaggerError):
    """Results cannot be written (disk full, I/O error); a closed pipe is not one of these."""
