"""How far is one model from what its recipe can reach? F1 of an ensemble that averages word scores.

    python scripts/ensemble.py --data ../shared/data runs/bert_uk_crfdoc_s{1,2,3}/best_bert.onnx

Prints each model's micro F1, then that of their average: the word scores (emissions) of all
models averaged, and decoded by constrained Viterbi with their averaged CRF transitions. Models
must share labels and language, and either all have a CRF or none. An ensemble is not shipped
(N models cost N times the size and time); it bounds what better training of one such model
could gain, on validation and test alike (`--split validation --split test`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tagger.artifact import load_artifact
from tagger.corpus import load_split
from tagger.decode import Decoder
from tagger.metrics import score
from tagger.predict import Tagger, tag_with
from tagger.scheme import entity_types

CRF_KEYS = ("transitions", "start", "end")


def averaged_decoder(taggers: list[Tagger]) -> Decoder:
    """Viterbi with the mean of the models' CRF scores (none: plain constrained decoding)."""
    crfs = [t.artifact.header.get("crf") or {} for t in taggers]
    if not crfs[0]:
        return Decoder(taggers[0].labels)
    return Decoder(taggers[0].labels, *(np.mean([np.asarray(c[k], np.float32) for c in crfs], axis=0) for k in CRF_KEYS))


def main() -> None:
    """Print each model's F1 and the ensemble's, per split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", default=None)
    parser.add_argument("--split", action="append", help="repeat for several [default: test]")
    args = parser.parse_args()
    taggers = [Tagger(load_artifact(path, "cpu")) for path in args.models]
    first = taggers[0]
    for path, tagger in zip(args.models, taggers):
        if (tagger.labels, tagger.artifact.language, bool(tagger.artifact.header.get("crf"))) != \
                (first.labels, first.artifact.language, bool(first.artifact.header.get("crf"))):
            sys.exit(f"error: {path} differs from {args.models[0]} in labels, language or CRF; "
                     "ensemble models of one recipe")
    labels, types = first.labels, entity_types(first.labels)
    for split in args.split or ["test"]:
        gold = load_split(first.artifact.language, split, args.data)
        words, tags = [s.words for s in gold], [s.tags for s in gold]
        emissions = [t.emit(words, None) for t in taggers]  # one text per split, as `evaluate` reads it
        for path, tagger, own in zip(args.models, taggers, emissions):
            pred = tag_with(lambda _: own, tagger.decoder, labels, words)
            print(f"{split} {path}: micro F1 {score(tags, pred, types=types).micro.f1:.4f}")
        mean = [np.mean([e[k] for e in emissions], axis=0) for k in range(len(words))]
        pred = tag_with(lambda _: mean, averaged_decoder(taggers), labels, words)
        micro = score(tags, pred, types=types).micro
        print(f"{split} ensemble of {len(taggers)}: P {micro.precision:.4f} R {micro.recall:.4f} micro F1 {micro.f1:.4f}")


if __name__ == "__main__":
    main()
