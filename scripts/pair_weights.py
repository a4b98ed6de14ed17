"""Choose the weights of averaged models on validation: F1 of each weighting, as one text and by document.

    python scripts/pair_weights.py --data ../shared/data/ner-uk uk_bert uk13 --weights 0.3,0.4,0.5,0.6,0.7
    python scripts/pair_weights.py --data ../shared/data/ner-uk uk_bert uk13 F.onnx --weights 0.4:0.3:0.3,0.5:0.3:0.2 --splits validation

For each weighting (for two models a weight w of the first, 1 - w for the second; for more, the
models' weights joined by colons) this prints the entity micro F1 of the average, `tagger evaluate
--model A --model B ... --weights ...` exactly, on each of `--splits` (default validation and test),
read as one text and document by document, and the mean of the two validation figures (the
criterion: `tag` reads each file as a document, evaluation reads the split as one text). Each model
runs once per split and reading; only the averaging and Viterbi are repeated per weighting. Choose on
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


def weightings(text: str, count: int) -> list[list[float]]:
    """'0.4,0.6' (two models: the first's weight) or '0.4:0.3:0.3,...' -> one weight per model each."""
    out = []
    for item in text.split(","):
        parts = [float(x) for x in item.split(":")]
        if len(parts) == 1 and count == 2:
            parts.append(1.0 - parts[0])
        if len(parts) != count:
            raise SystemExit(f"weights {item!r}: give {count} weights joined by ':' (one per model)")
        out.append(parts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files or shipped names, two or more; the first's labels"
                        " are the average's (the others of the same labels, or of a scheme read as them)")
    parser.add_argument("--data", type=Path, required=True, help="the corpus folder (with documents.tsv)")
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7", help="weightings, comma-separated (see above)")
    parser.add_argument("--splits", default="validation,test", help="splits to score, comma-separated")
    args = parser.parse_args()
    if len(args.models) < 2:
        parser.error("give two or more models")
    splits = args.splits.split(",")
    members = [remembered(load(model=name).model) for name in args.models]  # type: ignore[arg-type]
    lang = members[0].language
    types = entity_types(read_labels(args.data, lang))
    golds = {split: read_local_split(args.data, lang, split) for split in splits}
    print(f"| {' : '.join(args.models)} | " + " | ".join(
        f"{split} | by document" + (" | mean" if split == "validation" else "") for split in splits) + " |")
    print("|---|" + "|".join("---:|---:|" + ("---:|" if split == "validation" else "") for split in splits))
    for weights in weightings(args.weights, len(members)):
        ensemble = Ensemble(members, weights)
        cells = []
        for split, gold in golds.items():
            f1 = [score([s.tags for s in gold], ensemble.tag([s.words for s in gold], documents), types=types).micro.f1
                  for documents in (None, document_ids(args.data, split, gold))]
            cells += [f"{f:.4f}" for f in f1] + ([f"{sum(f1) / 2:.4f}"] if split == "validation" else [])
        print(f"| {' : '.join(f'{w:.2f}' for w in weights)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
