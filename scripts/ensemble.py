"""How far is one model from what its recipe can reach? F1 of an ensemble that averages word scores.

    python scripts/ensemble.py --data ../shared/data runs/bert_uk_crfdoc_s{1,2,3}/best_bert.onnx

Prints each model's micro F1, then that of their average: the word scores (emissions) of all
models averaged, and decoded by constrained Viterbi with their averaged CRF transitions. Models
must share kind, labels and language, and either all have a CRF or none. An ensemble is not
shipped (N models cost N times the size and time); what averaging out seed noise gains is a rough
guide to what better training of one such model could gain, on validation and test alike
(`--split validation --split test`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tagger.artifact import load_artifact
from tagger.corpus import load_split
from tagger.decode import Decoder
from tagger.errors import TaggerError
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


def recipe_of(tagger: Tagger) -> tuple[object, ...]:
    """What models must share to be averaged: kind, labels, language, CRF or not."""
    artifact = tagger.artifact
    return artifact.kind, tuple(artifact.labels), artifact.language, bool(artifact.header.get("crf"))


def averaged(taggers: list[Tagger], words: list[list[str]]) -> tuple[list[list[np.ndarray]], list[np.ndarray], Decoder]:
    """Each model's word scores, their mean per sentence, and the decoder of the mean."""
    emissions = [t.emit(words, None) for t in taggers]  # one text per split, as `evaluate` reads it
    return emissions, [np.mean([e[k] for e in emissions], axis=0) for k in range(len(words))], averaged_decoder(taggers)


def main() -> None:
    """Print each model's F1 and the ensemble's, per split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", default=None)
    parser.add_argument("--split", action="append", help="repeat for several [default: test]")
    args = parser.parse_args()
    try:
        taggers = [Tagger(load_artifact(path, "cpu")) for path in args.models]
        for path, tagger in zip(args.models, taggers):
            if recipe_of(tagger) != recipe_of(taggers[0]):
                raise TaggerError(f"{path} differs from {args.models[0]} in kind, labels, language or CRF;"
                                  " ensemble models of one recipe")
        labels, types = taggers[0].labels, entity_types(taggers[0].labels)
        for split in args.split or ["test"]:
            gold = load_split(taggers[0].artifact.language, split, args.data)
            words, tags = [s.words for s in gold], [s.tags for s in gold]
            each, mean, decoder = averaged(taggers, words)
            for path, tagger, own in zip(args.models, taggers, each):
                pred = tag_with(lambda _: own, tagger.decoder, labels, words)
                print(f"{split} {path}: micro F1 {score(tags, pred, types=types).micro.f1:.4f}")
            micro = score(tags, tag_with(lambda _: mean, decoder, labels, words), types=types).micro
            print(f"{split} ensemble of {len(taggers)}: P {micro.precision:.4f} R {micro.recall:.4f} micro F1 {micro.f1:.4f}")
    except TaggerError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
