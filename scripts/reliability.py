"""Reliability of entity scores: score bins against the share of predicted entities that are correct.

    python scripts/reliability.py --lang uk --data ../shared/data --split validation
    python scripts/reliability.py --lang uk --data ../shared/data --split test --arch bert

Each predicted entity's score (`Entity.score`: the model's probability of exactly that span and
label) falls into a bin; a bin is reliable when the share of its entities that are in the gold
split (exact span and type) is close to its mean score. Also prints the expected calibration
error (ECE: the entity-weighted mean |share correct - mean score| over the bins).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tagger  # noqa: E402
from tagger.corpus import load_split  # noqa: E402
from tagger.runtime import machine  # noqa: E402
from tagger.scheme import tags_to_spans  # noqa: E402

EDGES = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def reliability(nlp: tagger.Pipeline, split: str, data: str | None) -> list[dict[str, float]]:
    """One row per score bin: entities, mean score, share correct."""
    gold = load_split(nlp.lang, split, data)
    tags, scores = nlp.model.tag_scored([s.words for s in gold], None)
    bins: list[list[tuple[float, bool]]] = [[] for _ in EDGES[1:]]
    for sentence, predicted, probs in zip(gold, tags, scores):
        truth = set(tags_to_spans(sentence.tags))
        for span, p in zip(tags_to_spans(predicted), probs):
            k = next(i for i, top in enumerate(EDGES[1:]) if p <= top or i == len(EDGES) - 2)
            bins[k].append((p, span in truth))
    return [{"low": lo, "high": hi, "entities": len(b), "mean_score": sum(p for p, _ in b) / len(b) if b else 0.0,
             "correct": sum(c for _, c in b) / len(b) if b else 0.0} for lo, hi, b in zip(EDGES, EDGES[1:], bins)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lang", default="uk", choices=["uk", "en"])
    parser.add_argument("--arch", default=None, help="a shipped arch (bert, lstm) [default: the default choice]")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--data", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    nlp = tagger.load(args.lang, arch=args.arch, device="cpu")
    rows = reliability(nlp, args.split, args.data)
    total = sum(r["entities"] for r in rows)
    ece = sum(r["entities"] * abs(r["correct"] - r["mean_score"]) for r in rows) / max(total, 1)
    if args.json:
        print(json.dumps({"model": nlp.name, "split": args.split, "bins": rows, "ece": ece, "machine": machine()}))
        return
    print(f"{nlp.name}, {args.lang} {args.split} split, {total} predicted entities; machine: {json.dumps(machine())}")
    print("| score | entities | mean score | share correct |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['low']:.2f}-{r['high']:.2f} | {r['entities']} | {r['mean_score']:.3f} | {r['correct']:.3f} |")
    print(f"expected calibration error: {ece:.3f}")


if __name__ == "__main__":
    main()
