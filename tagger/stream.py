"""Filters over the event stream of `annotate`: a score threshold, a script check, signs of life."""

from __future__ import annotations

import dataclasses
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator

from tagger.annotate import DocEnd, Event, TaggedSentence
from tagger.scheme import spans_to_tags, tags_to_spans

SCRIPTS = {"uk": "CYRILLIC", "en": "LATIN"}  # the script each language's models were trained on
SCRIPT_SAMPLE = 200  # letters read before judging a text's script


def above(events: Iterable[Event], threshold: float) -> Iterator[Event]:
    """Drop entities scoring below `threshold`; their words' tags become O, so every format agrees."""
    for event in events:
        if isinstance(event, TaggedSentence) and threshold > 0:
            kept = [(span, e) for span, e in zip(tags_to_spans(event.tags), event.entities)
                    if e.score is None or e.score >= threshold]
            event = dataclasses.replace(event, entities=[e for _, e in kept],
                                        tags=spans_to_tags([span for span, _ in kept], len(event.tags)))
        yield event


def script_of(text: str) -> str | None:
    """The script most of the letters of `text` are written in ('CYRILLIC', 'LATIN', ...), or None
    while fewer than a handful of letters say so."""
    counts: dict[str, int] = {}
    for char in text:
        if char.isalpha():
            script = unicodedata.name(char, "").split(" ")[0]
            counts[script] = counts.get(script, 0) + 1
    if sum(counts.values()) < 20:
        return None
    return max(counts, key=counts.__getitem__)


def script_check(events: Iterable[Event], lang: str, warn: Callable[[str], None]) -> Iterator[Event]:
    """Warn once when the text's script does not fit the model's language (English under a uk model).

    Judged on the first SCRIPT_SAMPLE letters (or all of a shorter input, at each document's end).
    """
    sample, decided = "", lang not in SCRIPTS
    for event in events:
        if not decided and isinstance(event, TaggedSentence):
            sample += " " + (event.text or " ".join(t.text for t in event.tokens))
        if not decided and (isinstance(event, DocEnd) or sum(c.isalpha() for c in sample) >= SCRIPT_SAMPLE):
            script = script_of(sample)
            decided = script is not None
            if decided and script != SCRIPTS[lang]:
                other = next((code for code, s in SCRIPTS.items() if s == script), None)
                warn(f"the text is mostly in {str(script).title()} script but the model is {lang!r}"
                     + (f"; pass --lang {other} for {other!r} text" if other else "")
                     + " (tags of text in another language are mostly wrong)")
        yield event


def progress(events: Iterable[Event], console: object) -> Iterator[Event]:
    """A live line on `console` (stderr): documents and words tagged, words/s, time; gone at the end."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("tagging: {task.fields[docs]:,} documents, {task.fields[words]:,} words,"
                                           " {task.fields[rate]:,.0f} words/s"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:  # type: ignore[arg-type]
        task = bar.add_task("tag", docs=0, words=0, rate=0.0)
        start, docs, words = time.perf_counter(), 0, 0
        for event in events:
            if isinstance(event, TaggedSentence):
                words += len(event.tokens)
            elif isinstance(event, DocEnd):
                docs += 1
                bar.update(task, docs=docs, words=words, rate=words / max(time.perf_counter() - start, 1e-9))
            yield event
