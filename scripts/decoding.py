"""Does constrained decoding help? Test F1 of one model's word scores decoded two ways.

    python scripts/decoding.py --data ../shared/data runs/bert_uk_s1/best_bert.onnx

- argmax: each word's best label alone; an `I-X` that does not continue an `X` entity starts
  one (conlleval's reading, the kindest to invalid sequences);
- viterbi: the best IOB2-valid sequence (what `tagger tag` and `evaluate` do).

`--o-bias 0 1 2 ...` also decodes with each amount subtracted from the `O` score of every word
before Viterbi (trading precision for recall), and prints P/R/F1 for each:

    python scripts/decoding.py MODEL.onnx --data ../shared/data --split validation --o-bias 0 0.5 1 2 4
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tagger.artifact import load_artifact
from tagger.corpus import load_split
from tagger.metrics import score
from tagger.predict import Tagger, decode_all
from tagger.scheme import entity_types


def main() -> None:
    """Print test micro F1 for both decodings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", default=None)
    parser.add_argument("--split", default="test")
    parser.add_argument("--o-bias", type=float, nargs="*", default=[], help="amounts to subtract from the O scores")
    args = parser.parse_args()
    for path in args.models:
        tagger = Tagger(load_artifact(path, "cpu"))
        labels = tagger.labels
        gold = load_split(tagger.artifact.language, args.split, args.data)
        emissions = tagger.scores(tagger.emit([s.words for s in gold], None))  # several heads: their mean
        argmax = [[labels[i] for i in e.argmax(axis=1)] for e in emissions]
        viterbi = [[labels[i] for i in path] for path in decode_all(tagger.decoder, emissions)]
        types = entity_types(labels)
        f1 = {name: score([s.tags for s in gold], pred, types=types).micro.f1
              for name, pred in (("argmax", argmax), ("viterbi", viterbi))}
        invalid = sum(a != v for a, v in zip(argmax, viterbi))
        print(f"{path}: {args.split} micro F1 argmax {f1['argmax']:.4f}, constrained viterbi {f1['viterbi']:.4f}"
              f" ({100 * (f1['viterbi'] - f1['argmax']):+.2f} points; {invalid} of {len(gold)} sentences decoded differently)")
        o = labels.index("O")
        for bias in args.o_bias:
            lowered = [e - bias * (np.arange(len(labels)) == o) for e in emissions]
            pred = [[labels[i] for i in path] for path in decode_all(tagger.decoder, lowered)]
            micro = score([s.tags for s in gold], pred, types=types).micro
            print(f"  O bias {bias:g}: {args.split} P {micro.precision:.3f} R {micro.recall:.3f} F1 {micro.f1:.4f}")


if __name__ == "__main__":
    main()
