"""Choose the weights of two averaged models on validation: F1 of each weight pair, as one text and by document.

    python scripts/pair_weights.py --data ../shared/data/ner-uk uk_bert uk13 --weights 0.3,0.4,0.5,0.6,0.7

For each weight w of the first model (1 - w for the second) this prints the entity micro F1 of the
average, `tagger evaluate --model A --model B --weights w,1-w` exactly, on the validation and test
splits, read as one text and document by document, and the mean of the two validation figures (the
criterion: `tag` reads each file as a document, evaluation reads the split as one text). Each model
runs once per split and reading; only the averaging and Viterbi are repeated per weight. Choose on
validation, and only with models that never trained on it (`tagger info` says what each saw).
"""

from __future__ import annotations

import argparse
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from tagger.api import load
from tagger.corpus import document_ids, read_labels, read_local_split
from tagger.ensemble import Ensemble
from tagger.metrics import score
from tagger.predict import Tagger
from tagger.scheme import entity_types


def remembered(tagger: Tagger) -> Tagger:
    """`tagger` with its word scores kept per input, so a grid of weights runs each model once."""
    emit, seen = tagger.emit, {}

    def cached(sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None = None) -> list[np.ndarray]:
        key = (tuple(map(tuple, sentences)), None if runs is None else tuple(runs))
        if key not in seen:
            seen[key] = emit(sentences, runs)
        return seen[key]

    tagger.emit = cached  # type: ignore[assignment]
    return tagger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="model file or shipped name; its labels are the average's")
    parser.add_argument("second", help="model file or shipped name (of the same labels, or of a scheme read as them)")
    parser.add_argument("--data", type=Path, required=True, help="the corpus folder (with documents.tsv)")
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7", help="weights of the first model")
    args = parser.parse_args()
    members = [remembered(load(model=name).model) for name in (args.first, args.second)]  # type: ignore[arg-type]
    lang = members[0].language
    types = entity_types(read_labels(args.data, lang))
    rows = []
    for w in (float(x) for x in args.weights.split(",")):
        ensemble = Ensemble(members, [w, 1.0 - w])
        cells = []
        for split in ("validation", "test"):
            gold = read_local_split(args.data, lang, split)
            for documents in (None, document_ids(args.data, split, gold)):
                tags = ensemble.tag([s.words for s in gold], documents)
                cells.append(score([s.tags for s in gold], tags, types=types).micro.f1)
        rows.append((w, cells))
    print(f"| {args.first} : {args.second} | validation | by document | mean | test | by document |")
    print("|---|---:|---:|---:|---:|---:|")
    for w, (val, val_doc, test, test_doc) in rows:
        print(f"| {w:.2f} : {1 - w:.2f} | {val:.4f} | {val_doc:.4f} | {(val + val_doc) / 2:.4f} | {test:.4f} | {test_doc:.4f} |")


if __name__ == "__main__":
    main()
