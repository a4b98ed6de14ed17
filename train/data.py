"""A corpus's three splits as sentences, from a local folder or the Hugging Face Hub."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tagger.conll import Sentence
from tagger.corpus import SPLITS, hub_corpus, local_folder, read_labels, read_local_split


@dataclass(frozen=True)
class Splits:
    """What training reads: the label list and the train/validation/test sentences."""

    labels: list[str]
    train: list[Sentence]
    validation: list[Sentence]
    test: list[Sentence]


def load_splits(lang: str, data: str | Path | None = None) -> Splits:
    """train/validation/test of `lang`'s corpus: local folder (`data`, $TAGGER_DATA) or Hub name."""
    folder = local_folder(lang, data)
    if folder is None:
        labels, splits = hub_corpus(lang, SPLITS)
    else:
        labels = read_labels(folder, lang)
        splits = {split: read_local_split(folder, lang, split) for split in SPLITS}
    return Splits(labels, *([s for s in splits[split] if s.words] for split in SPLITS))
