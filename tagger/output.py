"""Writers of tagging events: JSONL, CoNLL and rich tables, each document as soon as it is done."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from rich.console import Console

from tagger.annotate import DocEnd, DocStart, Entity, Event, TaggedSentence
from tagger.render import entities_table

FORMATS = ("table", "jsonl", "conll")
STREAM_AFTER = 10_000  # entities of one document held before its JSON object is streamed out


def write_jsonl(events: Iterable[Event], out: TextIO) -> None:
    """One `{"source", "entities"}` object per line; a huge document streams its entities."""
    buffered: list[Entity] = []
    source = ""
    streaming = False
    for event in events:
        if isinstance(event, DocStart):
            source, buffered, streaming = event.source, [], False
        elif isinstance(event, TaggedSentence):
            buffered.extend(event.entities)
            if len(buffered) >= STREAM_AFTER:
                out.write(("" if streaming else f'{{"source": {json.dumps(source, ensure_ascii=False)}, "entities": [')
                          + (", " if streaming else "") + ", ".join(_json(e) for e in buffered))
                buffered, streaming = [], True
        elif isinstance(event, DocEnd):
            if streaming:
                out.write("".join(", " + _json(e) for e in buffered) + "]}\n")
            else:
                out.write(json.dumps({"source": source, "entities": [e.to_json() for e in buffered]},
                                     ensure_ascii=False) + "\n")
            out.flush()


def _json(entity: Entity) -> str:
    """An entity as compact-but-readable JSON."""
    return json.dumps(entity.to_json(), ensure_ascii=False)


def write_conll(events: Iterable[Event], out: TextIO) -> None:
    """`word<TAB>tag` lines, a blank line after each sentence, `# source = ...` before each document."""
    for event in events:
        if isinstance(event, DocStart):
            out.write(f"# source = {event.source}\n")
        elif isinstance(event, TaggedSentence):
            out.write("".join(f"{t.text}\t{tag}\n" for t, tag in zip(event.tokens, event.tags)) + "\n")
        else:
            out.flush()


def write_tables(events: Iterable[Event], console: Console) -> None:
    """A rich table of entities per document."""
    entities: list[Entity] = []
    for event in events:
        if isinstance(event, DocStart):
            entities = []
        elif isinstance(event, TaggedSentence):
            entities.extend(event.entities)
        else:
            console.print(entities_table(event.source, entities))
