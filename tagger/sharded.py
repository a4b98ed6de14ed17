"""Many inputs to a directory of JSONL shards, one per input, each written whole or not at all.

`tagger tag INPUT... --output DIR` reads files, directories and glob patterns of .txt (one
document), .jsonl (a "text" field per line; "id", if present, is the record's source) and .parquet
(a `text` column, optional `id`), and writes DIR/<input file name>.jsonl with the records
`--format jsonl` prints. A shard appears only when complete (temporary file, then rename), so a
rerun skips the shards that exist and an interrupted run loses only the shard in progress.
Paths with a scheme (s3://, gs://, file://, ...) are read and written through pyarrow's file systems.
"""

from __future__ import annotations

import glob
import io
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from tagger.annotate import DocEnd, Event, TaggedSentence
from tagger.documents import Document, check_path, decoded_lines, jsonl_stream_documents
from tagger.errors import InputError, OutputError

SUFFIXES = (".txt", ".jsonl", ".parquet")


def is_remote(path: str) -> bool:
    """A URI that pyarrow resolves (s3://bucket/key, gs://..., file:///...), not a local path."""
    return "://" in path


def remote(path: str) -> tuple[Any, str]:
    """(pyarrow file system, path within it) of a URI, or an InputError naming the scheme."""
    try:
        from pyarrow import fs
    except ImportError:
        raise InputError(f"{path}: remote paths need pyarrow: pip install 'tagger[ray]'") from None
    try:
        return fs.FileSystem.from_uri(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for bad or unsupported URIs
        raise InputError(f"{path}: cannot open this location ({str(err).splitlines()[0][:160]})") from None


def expand(specs: Sequence[str]) -> list[str]:
    """The input files that files, directories and glob patterns name, in order, each once."""
    found: list[str] = []
    for spec in specs:
        if is_remote(spec):
            found += remote_files(spec)
        elif glob.has_magic(spec):
            matches = sorted(p for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not matches:
                raise InputError(f"{spec}: no file matches this pattern")
            found += matches
        elif Path(spec).is_dir():
            found += sorted(str(p) for p in Path(spec).rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            check_path(Path(spec))
            found.append(spec)
    for path in found:
        if os.path.splitext(path)[1] not in SUFFIXES:
            raise InputError(f"{path}: not a .txt, .jsonl or .parquet file; --output reads only those")
    names: dict[str, str] = {}
    for path in dict.fromkeys(found):
        other = names.setdefault(shard_name(path), path)
        if other != path:
            raise InputError(f"{other} and {path} would both write {shard_name(path)}; tag them into separate --output folders")
    if not names:
        raise InputError(f"{' '.join(specs)}: no .txt, .jsonl or .parquet file found")
    return list(names.values())


def remote_files(uri: str) -> list[str]:
    """The input files at a URI: the file itself, or the supported files under a folder."""
    from pyarrow import fs as pafs

    fs, path = remote(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"{uri}: no such file or folder")
    if info.type == pafs.FileType.File:
        return [uri]
    scheme = uri.split("://", 1)[0]
    entries = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    return sorted(f"{scheme}://{e.path}" for e in entries
                  if e.type == pafs.FileType.File and os.path.splitext(e.path)[1] in SUFFIXES)


def shard_name(path: str) -> str:
    """The shard's file name: the input's file name plus .jsonl."""
    return os.path.basename(path.rstrip("/")) + ".jsonl"


def open_input(path: str) -> BinaryIO:
    """A binary stream of a local file or a URI."""
    if not is_remote(path):
        check_path(Path(path))
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    fs, inner = remote(path)
    with fs.open_input_stream(inner) as stream:
        return io.BytesIO(stream.read())


def file_documents(path: str, errors: str = "strict") -> Iterator[Document]:
    """The documents of one input file, as the local engine and every Ray worker see them."""
    suffix = os.path.splitext(path)[1]
    if suffix == ".parquet":
        yield from parquet_documents(path)
        return
    with open_input(path) as stream:
        if suffix == ".jsonl":
            yield from jsonl_stream_documents(stream, path, errors)
        else:
            yield Document(path, list(decoded_lines(stream, path, errors)))


def parquet_documents(path: str) -> Iterator[Document]:
    """Each row of a Parquet file's `text` column as a document, named by its `id` if there is one."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install 'tagger[ray]'") from None
    try:
        with open_input(path) as stream:
            table = pq.read_table(stream)
    except OSError as err:
        raise InputError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0][:160]})") from None
    if "text" not in table.column_names:
        raise InputError(f"{path}: no 'text' column (columns: {', '.join(table.column_names)}); name the text column 'text'")
    ids = table.column("id").to_pylist() if "id" in table.column_names else None
    for row, text in enumerate(table.column("text").to_pylist(), start=1):
        if not isinstance(text, str):
            raise InputError(f"{path}: row {row}: 'text' is {type(text).__name__}, not a string")
        yield Document(str(ids[row - 1]) if ids and ids[row - 1] is not None else f"{path}:{row}", [text])


@dataclass
class Summary:
    """What a run did, for the line printed at its end."""

    documents: int = 0
    words: int = 0
    entities: int = 0
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def counted(self, events: Iterable[Event]) -> Iterator[Event]:
        """Pass the events through, counting documents, words and entities."""
        for event in events:
            if isinstance(event, TaggedSentence):
                self.words += len(event.tokens)
                self.entities += len(event.entities)
            elif isinstance(event, DocEnd):
                self.documents += 1
            yield event

    def line(self) -> str:
        seconds = time.perf_counter() - self.started
        return (f"{len(self.written)} shards written, {len(self.skipped)} already complete; {self.documents:,} documents,"
                f" {self.words:,} words, {self.entities:,} entities in {seconds:.1f} s"
                f" ({self.words / max(seconds, 1e-9):,.0f} words/s)")


def shard_exists(target: str) -> bool:
    """Whether a complete shard is there (shards only ever appear whole)."""
    if not is_remote(target):
        return Path(target).is_file()
    from pyarrow import fs as pafs

    fs, inner = remote(target)
    return bool(fs.get_file_info(inner).type == pafs.FileType.File)


def write_shard(target: str, lines: Iterable[str]) -> None:
    """Write `lines` to `target` whole or not at all (a temporary name beside it, then a rename)."""
    from tagger.atomic import atomic_path

    try:
        if not is_remote(target):
            with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as handle:
                handle.writelines(lines)
            return
        from pyarrow import fs as pafs

        fs, inner = remote(target)
        parent, name = inner.rsplit("/", 1) if "/" in inner else ("", inner)
        staged = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp" if parent else f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            with fs.open_output_stream(staged) as out:
                for line in lines:
                    out.write(line.encode("utf-8"))
            fs.move(staged, inner)
        finally:
            if fs.get_file_info(staged).type != pafs.FileType.NotFound:  # a failed write leaves nothing behind
                fs.delete_file(staged)
    except OSError as err:
        raise OutputError(f"{target}: cannot write the shard ({err.strerror or err}); check the folder and its free space") from None


def output_folder(out: str) -> None:
    """Create the output folder (local), or check that it is not a file."""
    if is_remote(out):
        fs, inner = remote(out)
        fs.create_dir(inner, recursive=True)
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; --output takes a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot create the folder ({err.strerror})") from None


def target_of(out: str, path: str) -> str:
    """Where the shard of input `path` goes under `out`."""
    return f"{out.rstrip('/')}/{shard_name(path)}"


def tag_to_folder(nlp: Any, inputs: Sequence[str], out: str, errors: str = "strict") -> Summary:
    """The local engine: each input's shard in turn, skipping the complete ones."""
    from tagger.annotate import annotate
    from tagger.output import jsonl_lines

    output_folder(out)
    summary = Summary()
    for path in inputs:
        target = target_of(out, path)
        if shard_exists(target):
            summary.skipped.append(target)
            continue
        events = summary.counted(annotate(file_documents(path, errors), nlp.model, nlp.lang))
        write_shard(target, jsonl_lines(events))
        summary.written.append(target)
    return summary
