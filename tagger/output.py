"""Writers of tagging events: JSONL, spaCy JSONL, CoNLL and rich tables, each document as soon as it is done."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from tagger.annotate import DocEnd, DocStart, Entity, Event, TaggedSentence
from tagger.errors import OutputError

if TYPE_CHECKING:  # rich loads only for tables: start-up stays short
    from rich.console import Console

FORMATS = ("table", "jsonl", "conll", "spacy", "html")  # html: tagger.html.write_html
STREAM_AFTER = 10_000  # entities of one document held before its JSON object (or table) is streamed out


@contextmanager
def writing(out: object) -> Iterator[None]:
    """Turn a failed write (disk full, I/O error) into OutputError; a closed pipe stays BrokenPipeError."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as err:
        name = getattr(out, "name", None) or "the output"
        raise OutputError(
            f"{name}: cannot write the results ({err.strerror or err}); free some space or write them elsewhere"
        ) from None


def write_jsonl(events: Iterable[Event], out: TextIO) -> None:
    """One `{"source", "entities"}` object per line; a huge document streams its entities."""
    for chunk in jsonl_lines(events):
        with writing(out):
            out.write(chunk)
            if chunk.endswith("\n"):
                out.flush()


def jsonl_lines(events: Iterable[Event]) -> Iterator[str]:
    """The text of `write_jsonl`: one line per document, in pieces for a document of more than
    STREAM_AFTER entities (so memory stays flat), each document's last piece ending in a newline."""
    buffered: list[Entity] = []
    source = ""
    streaming = False
    for event in events:
        if isinstance(event, DocStart):
            source, buffered, streaming = event.source, [], False
        elif isinstance(event, TaggedSentence):
            buffered.extend(event.entities)
            if len(buffered) >= STREAM_AFTER:
                yield (("" if streaming else f'{{"source": {json.dumps(source, ensure_ascii=False)}, "entities": [')
                       + (", " if streaming else "") + ", ".join(_json(e) for e in buffered))
                buffered, streaming = [], True
        elif isinstance(event, DocEnd):
            if streaming:
                yield "".join(", " + _json(e) for e in buffered) + "]}\n"
            else:
                yield json.dumps({"source": source, "entities": [e.to_json() for e in buffered]}, ensure_ascii=False) + "\n"


def _json(entity: Entity) -> str:
    """An entity as compact-but-readable JSON."""
    return json.dumps(entity.to_json(), ensure_ascii=False)


def write_spacy(events: Iterable[Event], out: TextIO) -> None:
    """displaCy's "manual" records, `{"text", "ents": [{"start", "end", "label"}], "title"}` one per line.

    The text is the whole document (between sentences too), streamed as it comes, so the
    character offsets index it exactly as spaCy's `Doc.char_span` and displaCy read them.
    """
    ents: list[dict[str, object]] = []
    title = ""
    for event in events:
        with writing(out):
            if isinstance(event, DocStart):
                ents, title = [], event.source
                out.write('{"text": "')
            elif isinstance(event, TaggedSentence):
                out.write(_json_chars(event.before + event.text))
                ents.extend({"start": e.start, "end": e.end, "label": e.label} for e in event.entities)
            elif isinstance(event, DocEnd):
                out.write(f'{_json_chars(event.after)}", "ents": {json.dumps(ents, ensure_ascii=False)},'
                          f' "title": {json.dumps(title, ensure_ascii=False)}}}\n')
                out.flush()


def _json_chars(text: str) -> str:
    """`text` as the inside of a JSON string: pieces written one after another make one valid string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def write_conll(events: Iterable[Event], out: TextIO) -> None:
    """`word<TAB>tag` lines, a blank line after each sentence, `# source = ...` before each document."""
    for event in events:
        with writing(out):
            if isinstance(event, DocStart):
                out.write(f"# source = {event.source}\n")
            elif isinstance(event, TaggedSentence):
                out.write("".join(f"{t.text}\t{tag}\n" for t, tag in zip(event.tokens, event.tags)) + "\n")
            else:
                out.flush()


def write_tables(events: Iterable[Event], console: Console) -> None:
    """A rich table of entities per document (a huge document: one table per STREAM_AFTER entities)."""
    from tagger.render import entities_table

    entities: list[Entity] = []
    source = ""
    part = 0  # tables of the current document printed so far
    for event in events:
        if isinstance(event, DocStart):
            source, entities, part = event.source, [], 0
        elif isinstance(event, TaggedSentence):
            entities.extend(event.entities)
            if len(entities) >= STREAM_AFTER:
                part += 1
                with writing(console.file):
                    console.print(entities_table(f"{source} (part {part})", entities))
                entities = []
        else:
            with writing(console.file):
                console.print(entities_table(f"{source} (part {part + 1}, last)" if part else source, entities))
