"""The HTML entity view: one self-contained page (inline CSS, no scripts) of documents with entities marked."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from html import escape
from typing import TextIO

from tagger.annotate import DocEnd, DocStart, Entity, Event, TaggedSentence
from tagger.output import writing

# displaCy's palette where the type is the same; other types get a stable pastel from their name.
COLOURS = {
    "PERS": "#aa9cfc", "PER": "#aa9cfc", "PERSON": "#aa9cfc", "person": "#aa9cfc",
    "ORG": "#7aecec", "corporation": "#7aecec", "group": "#c887fb",
    "LOC": "#feca74", "GPE": "#feca74", "location": "#feca74",
    "MISC": "#e4e7d2", "creative-work": "#f0d0ff", "product": "#bfeeb7",
}

STYLE = """\
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: #222;
       max-width: 60rem; margin: 1.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.2rem; margin: 0 0 0.5rem; }
h2 { font-size: 0.95rem; color: #555; border-bottom: 1px solid #ddd; margin: 1.5rem 0 0.5rem; }
.legend { margin-bottom: 1rem; }
.key { display: inline-block; padding: 0.2em 0.6em; margin: 0 0.4em 0.4em 0; border-radius: 0.35em;
       font-size: 0.75rem; font-weight: bold; }
.doc { white-space: pre-wrap; line-height: 2.5; font-size: 1.05rem; }
mark.entity { padding: 0.25em 0.4em; margin: 0 0.1em; border-radius: 0.35em; line-height: 1;
              box-decoration-break: clone; -webkit-box-decoration-break: clone; }
mark.entity::after { content: attr(data-label); font-size: 0.6em; font-weight: bold; line-height: 1;
                     vertical-align: middle; margin-left: 0.5em; }
"""


def label_colour(label: str) -> str:
    """The background of a type: fixed for the common types, else derived from the name (stable across runs)."""
    if label in COLOURS:
        return COLOURS[label]
    return f"hsl({zlib.crc32(label.encode('utf-8')) % 360}, 70%, 82%)"


def page_head(labels: Sequence[str]) -> str:
    """The page up to the first document: style and the legend of the model's types."""
    keys = "".join(f'<span class="key" style="background: {label_colour(label)}">{escape(label)}</span>'
                   for label in labels)
    return ('<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>tagger: entities</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
            f'<h1>Entities</h1>\n<div class="legend">{keys}</div>\n')


def mark(entity: Entity, text: str) -> str:
    """One highlighted entity; its type shows after the text, type and score on hover."""
    score = getattr(entity, "score", None)  # Entity gains an optional score; older ones have none
    hover = entity.label if score is None else f"{entity.label} {score:.2f}"
    score_attr = "" if score is None else f' data-score="{score:.4f}"'
    return (f'<mark class="entity" data-label="{escape(entity.label)}"{score_attr}'
            f' style="background: {label_colour(entity.label)}" title="{escape(hover)}">{escape(text)}</mark>')


def sentence_html(event: TaggedSentence) -> str:
    """The text before a sentence and the sentence, escaped, with its entities marked."""
    if not event.tokens:
        return escape(event.before + event.text)
    base = event.tokens[0].start  # the sentence's offset in the document
    parts, position = [escape(event.before)], 0
    for entity in sorted(event.entities, key=lambda e: e.start):
        start, end = entity.start - base, entity.end - base
        parts += [escape(event.text[position:start]), mark(entity, event.text[start:end])]
        position = end
    parts.append(escape(event.text[position:]))
    return "".join(parts)


def write_html(events: Iterable[Event], out: TextIO, labels: Sequence[str]) -> None:
    """The page, written as the documents come: each document's source as a heading, then its text.

    `labels`: the entity types of the legend (the model's types); no external asset, no script.
    """
    with writing(out):
        out.write(page_head(labels))
    for event in events:
        with writing(out):
            if isinstance(event, DocStart):
                out.write(f'<article>\n<h2>{escape(event.source)}</h2>\n<div class="doc">')
            elif isinstance(event, TaggedSentence):
                out.write(sentence_html(event))
            elif isinstance(event, DocEnd):
                out.write(f"{escape(event.after)}</div>\n</article>\n")
                out.flush()
    with writing(out):
        out.write("</body>\n</html>\n")
        out.flush()
