"""Does constrained decoding help? Test F1 of one model's word scores decoded two ways.

    python scripts/decoding.py --data ../shared/data runs/bert_uk_s1/best_bert.onnx

- argmax: each word's best label alone; an `I-X` that does not continue an `X` entity starts
  one (conlleval's reading, the kindest to invalid sequences);
- viterbi: the best IOB2-valid sequence (what `tagger tag` and `evaluate` do).
"""

from __future__ import annotations

import argparse
from pathlib import Path

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
    args = parser.parse_args()
    for path in args.models:
        tagger = Tagger(load_artifact(path, "cpu"))
        labels = tagger.labels
        gold = load_split(tagger.artifact.language, args.split, args.data)
        emissions = tagger.emit([s.words for s in gold])
        argmax = [[labels[i] for i in e.argmax(axis=1)] for e in emissions]
        viterbi = [[labels[i] for i in path] for path in decode_all(tagger.decoder, emissions)]
        types = entity_types(labels)
        f1 = {name: score([s.tags for s in gold], pred, types=types).micro.f1
              for name, pred in (("argmax", argmax), ("viterbi", viterbi))}
        invalid = sum(a != v for a, v in zip(argmax, viterbi))
        print(f"{path}: {args.split} micro F1 argmax {f1['argmax']:.4f}, constrained viterbi {f1['viterbi']:.4f}"
              f" ({100 * (f1['viterbi'] - f1['argmax']):+.2f} points; {invalid} of {len(gold)} sentences decoded differently)")


if __name__ == "__main__":
    main()
