"""What training reads: a corpus's splits as sentences, and the train splits of further corpora."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tagger.conll import Sentence
from tagger.corpus import (SPLITS, Corpus, corpus_at, corpus_for, document_ids, hub_corpus, hub_named, hub_names,
                            local_folder, named_documents, read_labels, read_local_split)
from tagger.errors import TaggerError


@dataclass(frozen=True)
class Splits:
    """The label list, the train/validation/test sentences, and every corpus the train split came from."""

    labels: list[str]
    train: list[Sentence]
    validation: list[Sentence]
    test: list[Sentence]
    corpora: list[dict[str, Any]]  # per training corpus: corpus, source, license, sentences, documents

    @property
    def names(self) -> str:
        """The training corpora's names, for the console and the curves' title."""
        return " + ".join(c["corpus"] for c in self.corpora)


@dataclass(frozen=True)
class Loaded:
    """One corpus as read: where from, its labels, its splits and its documents by split."""

    corpus: Corpus
    source: str  # a folder, or hf:<Hub name>
    labels: list[str]
    splits: dict[str, list[Sentence]]
    documents: dict[str, list[str]]  # split -> each sentence's document name (documents.tsv); empty without one
    only: str = ""  # the prefix of the documents kept (--extra-documents); "": all

    def record(self) -> dict[str, Any]:
        """What a checkpoint keeps of a training corpus."""
        train = set(self.documents.get("train", ()))
        kept = {"documents_named": f"{self.only}*"} if self.only else {}
        return {"corpus": self.corpus.hub_name or self.corpus.folder, "source": self.source,
                "license": self.corpus.license, "sentences": len(self.splits["train"]),
                "documents": len(train) if train else None, **kept}


def load_splits(lang: str, data: str | Path | None = None, extra_train: Sequence[str] = (),
                extra_documents: str = "", documents: str = "") -> Splits:
    """train/validation/test of `lang`'s corpus (local folder `data`, $TAGGER_DATA, or the Hub), with the
    train splits of `extra_train` corpora added (only their documents named `extra_documents`..., if
    given); validation and test stay the first corpus's. `documents`: keep only the main corpus's train
    and validation documents named so (test stays whole: it is what the model is scored on)."""
    main = load_corpus(lang, data)
    if documents:
        main = only_documents(main, documents, ("train", "validation"), "--documents")
    extras = [load_extra(lang, spec, main, extra_documents) for spec in extra_train]
    train = [s for loaded in (main, *extras) for s in loaded.splits["train"]]
    return Splits(main.labels, train, main.splits["validation"], main.splits["test"],
                  [loaded.record() for loaded in (main, *extras)])


def load_corpus(lang: str, data: str | Path | None, splits: Sequence[str] = SPLITS) -> Loaded:
    """One corpus: a local folder (or a folder holding it), else the corpus `data` names by its Hub
    name, or `lang`'s, from the Hub."""
    folder = local_folder(lang, data)
    if folder is None:
        return from_hub(corpus_for(lang, data), splits)
    read = {split: read_local_split(folder, lang, split) for split in splits}
    return Loaded(corpus_at(folder, lang), str(folder), read_labels(folder, lang), read, documents_of(folder, read))


def from_hub(corpus: Corpus, splits: Sequence[str]) -> Loaded:
    """A corpus's splits from the Hugging Face Hub (which holds no document names)."""
    labels, loaded = hub_corpus(corpus, splits)
    return Loaded(corpus, f"hf:{corpus.hub_name}", labels, loaded, {})


def load_extra(lang: str, spec: str, main: Loaded, prefix: str = "") -> Loaded:
    """The train split of a further corpus: a corpus folder, or a known corpus's Hub name; checked
    against the main corpus: its labels must be the main's, and no document it trains on may be one
    of the main corpus's validation or test documents. `prefix`: keep only its documents whose name
    starts with it."""
    if (Path(spec) / "train.conll").is_file():
        extra = load_corpus(lang, spec, ("train",))
        if prefix:
            extra = only_documents(extra, prefix, ("train",), "--extra-documents")
    elif prefix:
        raise TaggerError(f"--extra-documents {prefix}: {spec} is not a local corpus folder; documents are named"
                          " only in a folder's documents.tsv (the Hub holds no document names)")
    else:
        corpus = hub_named(spec)
        if corpus is None:
            raise TaggerError(f"--extra-train {spec}: neither a corpus folder (with train.conll) nor a known Hub"
                              f" corpus ({hub_names()})")
        extra = from_hub(corpus, ("train",))
    foreign = sorted({t for s in extra.splits["train"] for t in s.tags} - set(main.labels))
    if foreign:
        raise TaggerError(f"--extra-train {spec}: its tags {', '.join(foreign[:6])} are not in {main.source}'s"
                          f" label set; add a corpus in the same scheme (e.g. ner-uk-2.0-4types for ner-uk)")
    scored = {d for split in SPLITS[1:] for d in main.documents.get(split, ())}
    seen = sorted(scored.intersection(extra.documents.get("train", ())))
    if seen:
        raise TaggerError(f"--extra-train {spec}: its train split holds {len(seen)} document(s) of {main.source}'s"
                          f" validation or test split ({seen[0]}, ...); never train on a split you score on")
    return extra


def only_documents(loaded: Loaded, prefix: str, splits: Sequence[str], option: str) -> Loaded:
    """`loaded` with only the documents whose name starts with `prefix` in `splits` (the others as read)."""
    if "train" not in loaded.documents:
        where = "the Hub holds no document names" if loaded.source.startswith("hf:") else \
            f"{Path(loaded.source) / 'documents.tsv'}: no such file"
        raise TaggerError(f"{option} {prefix}: {where}; it picks documents by the names a corpus folder's"
                          " documents.tsv lists (pass --data with a local folder)")
    read, named = dict(loaded.splits), dict(loaded.documents)
    for split in splits:
        ids = loaded.documents[split]
        keep = named_documents(ids, prefix, option, split, loaded.source)
        read[split], named[split] = [loaded.splits[split][i] for i in keep], [ids[i] for i in keep]
    return replace(loaded, splits=read, documents=named, only=prefix)


def documents_of(folder: Path, splits: dict[str, list[Sentence]]) -> dict[str, list[str]]:
    """Each read split's sentences' document names, from the folder's documents.tsv (checked against the
    split, as `tagger evaluate --by-document` checks it); none without one."""
    if not (folder / "documents.tsv").is_file():
        return {}
    return {split: document_ids(folder, split, sentences) for split, sentences in splits.items()}
