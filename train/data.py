"""Loading a corpus as a `datasets.DatasetDict` from a local folder or the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import datasets

from tagger.conll import Sentence
from tagger.corpus import DATA_ENV, SPLITS, check_hub, corpus_of, hub_label_names, local_folder, read_labels, read_local_split
from tagger.errors import TaggerError


def features(labels: list[str]) -> datasets.Features:
    """The schema of every split: words and their tags as ClassLabel ids."""
    return datasets.Features(
        {
            "tokens": datasets.List(datasets.Value("string")),
            "ner_tags": datasets.List(datasets.ClassLabel(names=labels)),
        }
    )


def load_corpus(lang: str, data: str | Path | None = None) -> datasets.DatasetDict:
    """train/validation/test of `lang`'s corpus: local folder (`data`, $TAGGER_DATA) or Hub name."""
    folder = local_folder(lang, data)
    if folder is None:
        return load_hub(lang)
    labels = read_labels(folder, lang)
    index = {tag: i for i, tag in enumerate(labels)}
    splits = {}
    for split in SPLITS:
        sentences = read_local_split(folder, lang, split)
        splits[split] = datasets.Dataset.from_dict(
            {
                "tokens": [s.words for s in sentences],
                "ner_tags": [[index[t] for t in s.tags] for s in sentences],
            },
            features=features(labels),
        )
    return datasets.DatasetDict(splits)


def load_hub(lang: str) -> datasets.DatasetDict:
    """The corpus from the Hugging Face Hub, for users who are online."""
    corpus = corpus_of(lang)
    hint = (f"point at a local copy with --data DIR or ${DATA_ENV}=DIR (a folder with"
            " train.conll, validation.conll, test.conll and labels.txt)")
    check_hub(corpus.hub_name, hint)
    try:
        loaded = datasets.load_dataset(corpus.hub_name)
    except Exception as err:  # noqa: BLE001 - offline, missing, or Hub errors: same advice
        raise TaggerError(
            f"could not load {corpus.hub_name} from the Hugging Face Hub ({type(err).__name__}); {hint}"
        ) from None
    missing = [s for s in SPLITS if s not in loaded]
    if missing:
        raise TaggerError(f"{corpus.hub_name} has no {', '.join(missing)} split")
    return loaded


def label_names(split: datasets.Dataset, lang: str) -> list[str]:
    """Label names of a split's ner_tags (ClassLabel names, else the corpus's known list)."""
    return hub_label_names(split.features["ner_tags"], corpus_of(lang))


def to_sentences(split: datasets.Dataset, labels: list[str]) -> list[Sentence]:
    """A split's rows as sentences with string tags; empty rows are dropped."""
    return [
        Sentence(list(row["tokens"]), [labels[i] for i in row["ner_tags"]])
        for row in split
        if row["tokens"]
    ]
