"""Documents in, entities out: tokenise, batch across documents, tag, map spans to characters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tagger.documents import Document
from tagger.predict import SentenceTagger
from tagger.scheme import tags_to_spans
from tagger.text import Token, split_sentences

BLOCK_WORDS = 20_000  # words buffered before tagging: big enough to batch well, small for memory


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity in a document: `text == document[start:end]` (Python string indices)."""

    start: int
    end: int
    label: str
    text: str
    score: float | None = None  # the model's probability of this exact span and label (see SentenceTagger.tag_scored)

    def to_json(self) -> dict[str, object]:
        """The JSONL shape: {"start", "end", "label", "text", "score"} (no "score" where none was computed)."""
        out: dict[str, object] = {"start": self.start, "end": self.end, "label": self.label, "text": self.text}
        if self.score is not None:
            out["score"] = round(self.score, 4)
        return out


@dataclass(frozen=True, slots=True)
class DocStart:
    """A document begins."""

    source: str


@dataclass(frozen=True, slots=True)
class DocEnd:
    """A document ends (all its sentences came before)."""

    source: str
    after: str = ""  # the document's text after its last sentence, so writers can rebuild the whole text


@dataclass(frozen=True, slots=True)
class TaggedSentence:
    """A sentence of the current document: its words (document offsets), tags and entities."""

    tokens: list[Token]
    tags: list[str]
    entities: list[Entity]
    text: str = ""  # document[tokens[0].start : tokens[-1].end]
    before: str = ""  # the document's text between the previous sentence (or its start) and this one


Event = DocStart | TaggedSentence | DocEnd


def annotate(documents: Iterable[Document], tagger: SentenceTagger, lang: str) -> Iterator[Event]:
    """Events for each document in input order: DocStart, its TaggedSentences, DocEnd.

    Sentences of many documents are tagged together in length-sorted batches; memory holds
    about BLOCK_WORDS words whatever the input size.
    """
    pending: list[DocStart | DocEnd | tuple[list[Token], str, str]] = []
    words = 0
    for document in documents:
        pending.append(DocStart(document.source))
        offset = 0
        gap = ""  # the document's text since the last sentence's end
        for segment in document.segments:
            position = 0  # where the last sentence of this segment ended
            for sentence in split_sentences(segment, lang):
                start, end = sentence[0].start, sentence[-1].end
                tokens = [Token(t.text, t.start + offset, t.end + offset) for t in sentence]
                pending.append((tokens, segment[start:end], gap + segment[position:start]))
                gap, position = "", end
                words += len(tokens)
            gap += segment[position:]
            offset += len(segment)
            if words >= BLOCK_WORDS:
                yield from flush(pending, tagger)
                pending, words = [], 0
        pending.append(DocEnd(document.source, gap))
    yield from flush(pending, tagger)


def flush(pending: list[DocStart | DocEnd | tuple[list[Token], str, str]], tagger: SentenceTagger) -> Iterator[Event]:
    """Tag the buffered sentences in one go and replay the buffer as events."""
    sentences = [item for item in pending if isinstance(item, tuple)]
    documents, runs = 0, []  # each sentence's document, for models that read document context
    for item in pending:
        documents += isinstance(item, DocStart)
        if isinstance(item, tuple):
            runs.append(documents)
    all_tags, all_scores = tagger.tag_scored([[t.text for t in tokens] for tokens, _, _ in sentences], runs)
    tags, scores = iter(all_tags), iter(all_scores)
    for item in pending:
        if not isinstance(item, tuple):
            yield item
            continue
        tokens, text, before = item
        sentence_tags = next(tags)
        base = tokens[0].start
        entities = [
            Entity(tokens[s.start].start, tokens[s.end - 1].end, s.label,
                   text[tokens[s.start].start - base : tokens[s.end - 1].end - base], score)
            for s, score in zip(tags_to_spans(sentence_tags), next(scores), strict=True)
        ]
        yield TaggedSentence(tokens, sentence_tags, entities, text, before)
