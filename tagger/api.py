"""The Python API: load a tagger once, then tag strings; what the CLI runs, importable without torch.

    import tagger
    nlp = tagger.load("uk")
    for e in nlp("Президент України Володимир Зеленський відвідав Львів."):
        print(e.start, e.end, e.label, e.text, e.score)
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.annotate import DocEnd, DocStart, Entity, TaggedSentence, annotate
from tagger.artifact import Artifact
from tagger.conll import Sentence
from tagger.documents import Document
from tagger.errors import TaggerError
from tagger.notices import license_notice
from tagger.predict import SentenceTagger
from tagger.runtime import active_provider
from tagger.scheme import entity_types

if TYPE_CHECKING:  # evaluation's modules load when it runs, not with every `tagger tag`
    from tagger.metrics import EvalReport

BATCH_SIZE = 64  # texts tagged together by `pipe` (their sentences are batched across texts)
_LINES = re.compile(r"[^\n]*\n|[^\n]+")  # lines with their ends, as the CLI reads a file's text


class Pipeline:
    """A loaded model, or several averaged, with the tokeniser of its language."""

    def __init__(self, model: SentenceTagger) -> None:
        self.model = model

    @property
    def lang(self) -> str:
        """Language code of the model ('uk', 'en')."""
        return self.model.language

    @property
    def labels(self) -> list[str]:
        """Entity types the model tags, in its label order (as `tagger models` lists them), e.g.
        ['PERS', 'ORG', 'LOC', 'MISC']."""
        return entity_types(self.model.labels)

    @property
    def name(self) -> str:
        """The model file(s), as `tag` reports them on stderr."""
        return self.model.name

    @property
    def artifacts(self) -> list[Artifact]:
        """The loaded model files (their headers hold labels, training data, license, scores)."""
        return self.model.artifacts

    @property
    def providers(self) -> list[str]:
        """Where the models run: 'CPU' or 'CUDA'."""
        return sorted({active_provider(a.session) for a in self.artifacts})

    def __repr__(self) -> str:
        return f"tagger.Pipeline({self.name}, lang={self.lang!r}, on {', '.join(self.providers)})"

    def __call__(self, text: str) -> list[Entity]:
        """The entities of one text; `e.text == text[e.start:e.end]` for each."""
        return next(self.pipe([text]))

    def pipe(self, texts: Iterable[str], batch_size: int = BATCH_SIZE) -> Iterator[list[Entity]]:
        """The entities of each text, in input order, read lazily `batch_size` texts at a time."""
        if isinstance(texts, str):
            raise TaggerError("pipe() takes an iterable of texts, not one str; call nlp(text) for one text")
        if batch_size < 1:
            raise TaggerError(f"batch_size {batch_size}: give a positive number of texts")
        numbered = enumerate(texts)
        while chunk := list(itertools.islice(numbered, batch_size)):
            found: list[Entity] = []
            for event in annotate([text_document(k, text) for k, text in chunk], self.model, self.lang):
                if isinstance(event, DocStart):
                    found = []
                elif isinstance(event, TaggedSentence):
                    found += event.entities
                elif isinstance(event, DocEnd):
                    yield found


def text_document(index: int, text: str) -> Document:
    """A str as a Document whose segments are its lines (sentences never cross a line break)."""
    if not isinstance(text, str):
        raise TaggerError(f"text {index}: expected a str, got {type(text).__name__}"
                          + ("; decode bytes first, e.g. data.decode('utf-8')" if isinstance(text, bytes) else ""))
    return Document(f"<text {index}>", _LINES.findall(text))


def load(lang: str | None = None, *, model: str | Path | Sequence[str | Path] | None = None,
         arch: str | None = None, device: str = "auto", weights: Sequence[float] | None = None,
         threads: int | None = None) -> Pipeline:
    """A tagger: the default choice of `lang`, one shipped choice (`arch`), or your own file(s).

    Args:
        lang: 'uk' or 'en' (default 'uk', or the language of `model`).
        model: an ONNX file made by `tagger export`, or several to average.
        arch: 'bert+uk13' or 'bert+uk13+lstm' (uk), 'bert+lstm', 'bert' or 'lstm': which shipped model(s) of `lang`.
        device: 'auto' (CUDA if it really runs, else CPU), 'cpu' or 'cuda'.
        weights: one per averaged model [default: equal; a shipped average's own, e.g. 0.6 / 0.4].
        threads: ONNX Runtime's intra-op threads per model [default: one per core].

    Raises:
        TaggerError: what is wrong and how to fix it, in one line.
    """
    from tagger.ensemble import load_tagger
    from tagger.shipped import ARCH_CHOICES, shipped_models

    if model is not None and arch is not None:
        raise TaggerError(f"arch={arch!r} picks a shipped model, model= a file of yours; pass one of them")
    if arch is not None and arch not in ARCH_CHOICES:
        raise TaggerError(f"unknown arch {arch!r}; choose one of: {', '.join(ARCH_CHOICES)}")
    if model is not None:
        from tagger.info import resolve_models

        # Files, or names `tagger models` lists (a shipped average's name brings its weights).
        paths, weights = resolve_models([model] if isinstance(model, (str, Path)) else list(model), weights)
        tagger = load_tagger(paths, device, weights, threads)
    else:
        paths, shipped_weights = shipped_models(lang or "uk", arch)
        tagger = load_tagger(paths, device, weights if weights is not None else shipped_weights, threads)
    if lang and tagger.language != lang:
        raise TaggerError(f"{tagger.name} is a {tagger.language!r} model but lang is {lang!r}; drop one of them")
    license_notice(tagger.artifacts, lambda line: print(f"tagger: {line}", file=sys.stderr))
    return Pipeline(tagger)


def evaluate(nlp: Pipeline, split: str = "test", data: str | Path | None = None,
             by_document: bool = False, documents: str = "") -> EvalReport:
    """Entity-level scores of `nlp` on a corpus split, the report `tagger evaluate` prints.

    Args:
        data: a local corpus folder, or one holding the model's (ner-uk/, wnut17/, ner-uk-2.0/ for uk13),
            or that corpus's Hub name (e.g. "Goader/ner-uk-2.0"); None: $TAGGER_DATA, else the Hub.
        by_document: read each document alone, as `tag` reads its inputs (needs the folder's documents.tsv).
        documents: score only the documents whose name starts with this prefix (e.g. "bruk/"; needs it too).
    """
    gold, names, _ = gold_split(nlp, split, data, documents, with_names=by_document)
    return evaluate_gold(nlp, gold, names if by_document else None, documents)


def evaluate_gold(nlp: Pipeline, gold: Sequence[Sentence], names: Sequence[str] | None = None,
                  documents: str = "") -> EvalReport:
    """`evaluate`'s report on gold sentences already read (`gold_split`'s): each document alone
    where `names` gives each sentence's, else as one text; `documents`, the prefix they were kept by."""
    from tagger.evaluation import evaluate as run

    label = nlp.name + (", by document" if names is not None else "") + (f", documents {documents}*" if documents else "")
    return run(nlp.model, gold, model=label, documents=names)


def gold_split(nlp: Pipeline, split: str, data: str | Path | None = None, documents: str = "",
               with_names: bool = False) -> tuple[list[Sentence], list[str] | None, list[int]]:
    """The gold sentences `evaluate` scores `nlp` on (its own corpus's split, only the documents named
    `documents`... if given), each one's document name when asked for (else None), and each one's
    position in the split."""
    from tagger.corpus import (document_ids, known_corpus, load_split, local_folder, named_documents, read_labels,
                               read_local_split)

    # The corpus the model was trained on, as its header names it: a 13-type model is scored on ner-uk-2.0.
    corpus = known_corpus(nlp.artifacts[0].header.get("provenance", {}).get("data", {}).get("corpus"), nlp.lang)
    folder = local_folder(nlp.lang, data, corpus)
    scheme = entity_types(read_labels(folder, nlp.lang) if folder else corpus.labels)
    if set(scheme) != set(nlp.labels):  # scores across two schemes would mean nothing
        raise TaggerError(f"{nlp.name} tags {', '.join(nlp.labels)} but the {split} split of"
                          f" {folder or corpus.hub_name} is annotated with {', '.join(scheme)}; score it on a corpus"
                          f" in its own scheme (--data: the {corpus.folder} folder, or one holding it)")
    gold = read_local_split(folder, nlp.lang, split) if folder else load_split(nlp.lang, split, None, corpus)
    if not (with_names or documents):
        return gold, None, list(range(len(gold)))
    if folder is None:
        raise TaggerError("by-document scoring and --documents need a local corpus folder (--data DIR or"
                          " $TAGGER_DATA) with a documents.tsv; the Hub splits have no document boundaries")
    names = document_ids(folder, split, gold)
    keep = named_documents(names, documents, "--documents", split, folder) if documents else list(range(len(gold)))
    return [gold[i] for i in keep], [names[i] for i in keep], keep
