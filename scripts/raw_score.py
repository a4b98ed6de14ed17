"""Raw-text score: entity character spans that `tagger tag` finds in ner-uk's raw/<split> texts
against the gold `.jsonl` spans (exact start, end and label).

    python scripts/raw_score.py --model assets/uk_lstm.onnx --raw ../shared/data/ner-uk/raw/test
    python scripts/raw_score.py --model assets/uk_bert.onnx --model assets/uk_lstm.onnx --weights 0.6,0.4  # averaged

This measures the whole user path: sentence splitting, tokenisation, tagging, offsets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import tagger
from tagger.documents import file_document
from tagger.ensemble import parse_weights
from tagger.metrics import Score, prf
from tagger.text import tokenize


def raw_score(nlp: tagger.Pipeline, raw: Path) -> tuple[dict[str, Score], Score, int, float]:
    """Per-type and micro scores of the pipeline's character spans on the texts of `raw`.

    Returns:
        (per-type scores, micro scores, words tagged, seconds spent tagging incl. tokenisation)
    """
    texts = sorted(raw.glob("*.txt"))
    if not texts:
        sys.exit(f"no .txt files in {raw}")
    gold: set[tuple[str, int, int, str]] = set()
    for path in texts:
        for line in path.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                e = json.loads(line)
                gold.add((str(path), e["start"], e["end"], e["label"]))
    pred: set[tuple[str, int, int, str]] = set()
    started = time.perf_counter()
    documents = ["".join(file_document(p, "strict").segments) for p in texts]  # as `tagger tag FILE` reads it
    words = sum(len(tokenize(d, nlp.lang)) for d in documents)
    for path, entities in zip(texts, nlp.pipe(documents)):
        pred.update((str(path), e.start, e.end, e.label) for e in entities)
    seconds = time.perf_counter() - started
    correct = gold & pred
    per_type = {
        label: prf(sum(e[3] == label for e in correct), sum(e[3] == label for e in pred), sum(e[3] == label for e in gold))
        for label in sorted({e[3] for e in gold | pred})
    }
    return per_type, prf(len(correct), len(pred), len(gold)), words, seconds


def main() -> None:
    """Print micro and per-type P/R/F1 over all documents of the folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", help="ONNX model; repeat to average several"
                        " [default: the shipped uk default]")
    parser.add_argument("--raw", type=Path, default=Path(__file__).parents[1] / "../shared/data/ner-uk/raw/test")
    parser.add_argument("--weights", default=None,
                        help="weights of several --model, comma-separated [default: equal]")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    try:
        nlp = tagger.load("uk", model=args.model, device=args.device,
                          weights=parse_weights(args.weights) if args.weights is not None else None)
        per_type, s, words, seconds = raw_score(nlp, args.raw)
    except tagger.TaggerError as err:
        sys.exit(f"error: {err}")
    print(f"model {nlp.name}: {len(sorted(args.raw.glob('*.txt')))} documents of {args.raw}, {words} words"
          f" in {seconds:.2f} s ({words / seconds:,.0f} words/s incl. tokenisation)")
    for label, t in per_type.items():
        print(f"  {label:6s} P {t.precision:.4f}  R {t.recall:.4f}  F1 {t.f1:.4f}  support {t.support}")
    print(f"raw-text entity micro: P {s.precision:.4f}  R {s.recall:.4f}  F1 {s.f1:.4f}  (gold {s.support}, predicted {s.predicted})")


if __name__ == "__main__":
    main()
